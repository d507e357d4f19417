defmodule TandemWeb.LogLimitTest do
  # Not async: the filter is global to the VM.
  use ExUnit.Case, async: false
  import ExUnit.CaptureLog
  require Logger

  setup do
    TandemWeb.LogLimit.install(3)

    on_exit(fn ->
      TandemWeb.LogLimit.install(Application.fetch_env!(:tandem, :yaws_log_per_second))
    end)
  end

  defp suppressed, do: Tandem.Metrics.value(:errors, %{kind: "log_suppressed"})

  test "a flood of error_logger reports is cut to the budget and counted; Logger is untouched" do
    before = suppressed()
    # Start at a second boundary's beginning so the flood falls in one window.
    Process.sleep(1000 - rem(System.monotonic_time(:millisecond), 1000))

    log =
      capture_log(fn ->
        for i <- 1..40, do: :error_logger.error_msg(~c"Unmasked frame forbidden ~p~n", [i])
        for i <- 1..5, do: Logger.error("our own error #{i}")
      end)

    reports = Regex.scan(~r/Unmasked frame forbidden/, log) |> length()
    assert reports == 3
    assert suppressed() - before == 37
    assert length(Regex.scan(~r/our own error/, log)) == 5
  end

  test "the budget renews every second" do
    Process.sleep(1000 - rem(System.monotonic_time(:millisecond), 1000))

    first =
      capture_log(fn -> for _ <- 1..5, do: :error_logger.error_msg(~c"Payload too long~n") end)

    Process.sleep(1000)

    second =
      capture_log(fn -> for _ <- 1..5, do: :error_logger.error_msg(~c"Payload too long~n") end)

    assert length(Regex.scan(~r/Payload too long/, first)) == 3
    assert length(Regex.scan(~r/Payload too long/, second)) == 3
  end
end
