defmodule TandemWeb.LogLimit do
  @moduledoc """
  Yaws reports every client mistake it meets (an unmasked frame, an
  oversized payload, a bad upgrade header) through `error_logger` at error
  level, from the connection's process, so any client could flood the log.
  This primary `:logger` filter lets at most `per_second` `error_logger`
  events through each second and counts the rest into the `errors` metric
  (`kind="log_suppressed"`). Tandem's own code logs through `Logger`, which
  this filter never touches.

  Hand-written: OTP's logger has burst limiting per handler, which would
  also throttle Tandem's own messages.
  """

  @filter :tandem_error_logger_limit

  @doc "Installs the filter (replacing an earlier one) with its budget per second."
  @spec install(pos_integer()) :: :ok
  def install(per_second) do
    _ = :logger.remove_primary_filter(@filter)
    window = :atomics.new(2, signed: true)
    :ok = :logger.add_primary_filter(@filter, {&__MODULE__.filter/2, {window, per_second}})
  end

  @doc false
  def filter(%{meta: %{error_logger: _}} = event, {window, per_second}) do
    now = System.monotonic_time(:second)
    current = :atomics.get(window, 1)

    # The first event of a new second resets the count; a race between two
    # resets only lets a few more events through.
    if current != now and :atomics.compare_exchange(window, 1, current, now) == :ok do
      :atomics.put(window, 2, 0)
    end

    if :atomics.add_get(window, 2, 1) <= per_second do
      event
    else
      Tandem.Metrics.inc(:errors, %{kind: "log_suppressed"})
      :stop
    end
  end

  def filter(_event, _config), do: :ignore
end
