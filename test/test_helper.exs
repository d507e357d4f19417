# The test store lives in a directory of its own per VM (config/test.exs);
# it is scratch, so it goes when the suite ends.
data_dir = Application.fetch_env!(:tandem, :data_dir)
ExUnit.after_suite(fn _ -> File.rm_rf(data_dir) end)
ExUnit.start()
