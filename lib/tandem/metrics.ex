defmodule Tandem.Metrics do
  @moduledoc """
  Counters and summaries for `GET /metrics`, kept in one public ETS table
  with atomic `update_counter`, so any process can count without a
  bottleneck process. Rendered in the Prometheus text format.

  Hand-written: Telemetry and the Prometheus libraries live on Hex.
  """
  use GenServer

  @table __MODULE__

  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @impl true
  def init(nil) do
    :ets.new(@table, [:named_table, :public, :set, write_concurrency: true])
    {:ok, nil}
  end

  @doc "Adds `by` to counter `name` with `labels`."
  @spec inc(atom(), map(), integer()) :: true
  def inc(name, labels \\ %{}, by \\ 1) do
    :ets.update_counter(@table, {name, labels}, by, {{name, labels}, 0})
  rescue
    ArgumentError -> true
  end

  @doc "Records one observation (in microseconds) of summary `name`."
  @spec observe(atom(), non_neg_integer()) :: true
  def observe(name, value) do
    inc(:"#{name}_count")
    inc(:"#{name}_sum", %{}, value)
  end

  @doc "The value of a counter (0 when never counted)."
  def value(name, labels \\ %{}) do
    case :ets.lookup(@table, {name, labels}) do
      [{_, v}] -> v
      [] -> 0
    end
  end

  @doc "Everything in Prometheus text format, with live gauges."
  @spec render() :: iodata()
  def render do
    gauges = [
      {{:rooms_open, %{}}, Tandem.Rooms.count()},
      {{:connections_open, %{}}, value(:connections_opened) - value(:connections_closed)},
      {{:vm_memory_bytes, %{}}, :erlang.memory(:total)},
      {{:vm_processes, %{}}, :erlang.system_info(:process_count)}
    ]

    rows = Enum.sort(:ets.tab2list(@table) ++ gauges)

    for {{name, labels}, value} <- rows do
      [
        "tandem_",
        Atom.to_string(name),
        render_labels(labels),
        " ",
        Integer.to_string(value),
        "\n"
      ]
    end
  end

  defp render_labels(labels) when map_size(labels) == 0, do: ""

  defp render_labels(labels) do
    inner = Enum.map_join(labels, ",", fn {k, v} -> "#{k}=\"#{v}\"" end)
    ["{", inner, "}"]
  end
end
