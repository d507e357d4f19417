# The test store lives in a directory of its own per VM (config/test.exs);
# it is scratch, so it goes when the suite ends.
data_dir = Application.fetch_env!(:tandem, :data_dir)
ExUnit.after_suite(fn _ -> File.rm_rf(data_dir) end)
# A loaded machine may take longer than ExUnit's default 100 ms to deliver
# what a test awaits; a passing test does not wait any longer for this.
ExUnit.start(assert_receive_timeout: 1_000)
