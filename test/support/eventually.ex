defmodule Tandem.Eventually do
  @moduledoc """
  Waits for something that happens on a timer (a periodic snapshot, a
  process hibernating) without guessing how long a loaded machine takes:
  the test passes as soon as it happens and fails only after a generous
  deadline.
  """

  @doc """
  Calls `check` until it returns a truthy value (returned) or `timeout_ms`
  pass (returns `false`). `check` may do work of its own between looks,
  such as answering a ping; it should not block for long.
  """
  def eventually(check, timeout_ms \\ 5_000) do
    deadline = System.monotonic_time(:millisecond) + timeout_ms
    poll(check, deadline)
  end

  defp poll(check, deadline) do
    cond do
      result = check.() ->
        result

      System.monotonic_time(:millisecond) > deadline ->
        false

      true ->
        Process.sleep(10)
        poll(check, deadline)
    end
  end
end
