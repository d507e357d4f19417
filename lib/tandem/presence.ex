defmodule Tandem.Presence do
  @moduledoc """
  Who is in a project, in the shape phoenix.js's `Presence` class consumes:
  `presence_state` is `%{key => %{"metas" => [meta, ...]}}` and
  `presence_diff` is `%{"joins" => state, "leaves" => state}`. Keys are user
  ids, so a user with two tabs appears once with two metas; each meta has a
  unique `phx_ref`.

  One process owns the table and monitors every tracked channel, so a client
  that vanishes without leaving is removed and announced as a leave.

  Diffs are coalesced per topic for `@coalesce_ms`: every join, update and
  leave in that window goes out as one `presence_diff` (joins first, then
  leaves, which is the order phoenix.js applies them in, so a meta that
  joined and left within a window nets out). Without it a crowd joining at
  once — a reconnect storm — costs one broadcast to every member per join:
  O(n²) frames per project.
  Hand-written: `Phoenix.Presence` (and its CRDT tracker) lives on Hex; this
  tracker is for one node (see ARCHITECTURE.md for the cluster plan).
  """
  use GenServer

  @table __MODULE__
  @coalesce_ms 20

  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: __MODULE__)

  @doc "Tracks `pid` under `key` on `topic` with `meta`; broadcasts the join."
  @spec track(pid(), String.t(), String.t(), map()) :: {:ok, String.t()}
  def track(pid, topic, key, meta),
    do: GenServer.call(__MODULE__, {:track, pid, topic, key, meta})

  @doc "Replaces fields of `pid`'s meta on `topic`; broadcasts leave+join of the meta."
  @spec update(pid(), String.t(), map()) :: :ok | {:error, :not_tracked}
  def update(pid, topic, changes), do: GenServer.call(__MODULE__, {:update, pid, topic, changes})

  @doc "Stops tracking `pid` on `topic`; broadcasts the leave."
  @spec untrack(pid(), String.t()) :: :ok
  def untrack(pid, topic), do: GenServer.call(__MODULE__, {:untrack, pid, topic})

  @doc "The presence state of `topic`."
  @spec list(String.t()) :: map()
  def list(topic) do
    :ets.match_object(@table, {{topic, :_}, :_, :_})
    |> Enum.reduce(%{}, fn {_, key, meta}, acc ->
      Map.update(acc, key, %{"metas" => [meta]}, &%{"metas" => [meta | &1["metas"]]})
    end)
  end

  @impl true
  def init(nil) do
    # ordered_set: `list/1` matches keys `{topic, _}`, a range scan here but a
    # scan of every topic's members in a plain set (quadratic as a crowd joins).
    :ets.new(@table, [:named_table, :protected, :ordered_set, read_concurrency: true])
    # tracked: pid => {monitor, topics}, so a death needs no table scan either.
    {:ok, %{tracked: %{}, pending: %{}}}
  end

  @impl true
  def handle_call({:track, pid, topic, key, meta}, _from, state) do
    ref = Base.url_encode64(:crypto.strong_rand_bytes(9))
    meta = Map.put(meta, "phx_ref", ref)
    :ets.insert(@table, {{topic, pid}, key, meta})
    state = state |> diff(topic, :joins, key, meta) |> track_pid(pid, topic)
    {:reply, {:ok, ref}, state}
  end

  def handle_call({:update, pid, topic, changes}, _from, state) do
    case :ets.lookup(@table, {topic, pid}) do
      [{_, key, old}] ->
        new =
          old
          |> Map.merge(changes)
          |> Map.put("phx_ref", Base.url_encode64(:crypto.strong_rand_bytes(9)))

        new = Map.put(new, "phx_ref_prev", old["phx_ref"])
        :ets.insert(@table, {{topic, pid}, key, new})
        state = state |> diff(topic, :joins, key, new) |> diff(topic, :leaves, key, old)
        {:reply, :ok, state}

      [] ->
        {:reply, {:error, :not_tracked}, state}
    end
  end

  def handle_call({:untrack, pid, topic}, _from, state) do
    {:reply, :ok, remove(state, topic, pid)}
  end

  @impl true
  def handle_info({:DOWN, _ref, :process, pid, _}, state) do
    {_, topics} = Map.get(state.tracked, pid, {nil, []})
    {:noreply, Enum.reduce(topics, state, &remove(&2, &1, pid))}
  end

  def handle_info({:flush, topic}, state) do
    {%{joins: joins, leaves: leaves}, pending} = Map.pop(state.pending, topic)
    wrap = fn metas -> Map.new(metas, fn {key, list} -> {key, %{"metas" => list}} end) end

    Tandem.PubSub.broadcast(topic, "presence_diff", %{
      "joins" => wrap.(joins),
      "leaves" => wrap.(leaves)
    })

    {:noreply, %{state | pending: pending}}
  end

  defp remove(state, topic, pid) do
    case :ets.take(@table, {topic, pid}) do
      [{_, key, meta}] -> state |> diff(topic, :leaves, key, meta) |> untrack_pid(pid, topic)
      [] -> state
    end
  end

  defp track_pid(state, pid, topic) do
    entry =
      case Map.fetch(state.tracked, pid) do
        {:ok, {ref, topics}} -> {ref, [topic | List.delete(topics, topic)]}
        :error -> {Process.monitor(pid), [topic]}
      end

    %{state | tracked: Map.put(state.tracked, pid, entry)}
  end

  defp untrack_pid(state, pid, topic) do
    case Map.fetch(state.tracked, pid) do
      {:ok, {ref, [^topic]}} ->
        Process.demonitor(ref, [:flush])
        %{state | tracked: Map.delete(state.tracked, pid)}

      {:ok, {ref, topics}} ->
        %{state | tracked: Map.put(state.tracked, pid, {ref, List.delete(topics, topic)})}

      :error ->
        state
    end
  end

  # Adds a join or leave of `meta` under `key` to the topic's pending diff,
  # scheduling its broadcast when it is the window's first.
  defp diff(state, topic, side, key, meta) do
    pending =
      Map.get_lazy(state.pending, topic, fn ->
        Process.send_after(self(), {:flush, topic}, @coalesce_ms)
        %{joins: %{}, leaves: %{}}
      end)

    pending = update_in(pending, [side, key], &[meta | &1 || []])
    %{state | pending: Map.put(state.pending, topic, pending)}
  end
end
