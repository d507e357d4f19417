defmodule Tandem.Room do
  @moduledoc """
  One process per open project: it owns the project's authoritative
  `tandem_core` room (through `Tandem.Native`), makes every accepted batch
  durable before anyone hears of it, and tells subscribers in seq order.

  The diff logic, sequence numbers, retry recognition and the catch-up log
  all live in Rust; this module owns what the BEAM is good at: lifecycle,
  durability and fan-out.

  * **Group commit.** A submitted batch is resolved at once, but its reply
    waits: the room sends itself a `:flush` message, which queues behind
    every submit already in the mailbox, and the flush journals them all in
    one store write, then broadcasts and replies in seq order. A retried
    batch's answer waits for the same flush, since its original might not
    be durable yet. Joins, syncs and verifies flush first, so nobody ever
    sees state a crash could take back.
  * **Snapshots** every `snapshot_every` batches, every
    `snapshot_interval_ms` while changed, when the room goes idle and on
    shutdown; each truncates the journal.
  * **Recovery** loads the last snapshot and replays the journal after it.
  * **Members** are the processes that joined (monitored). A room without
    members, and without submits, syncs or verifies, for `idle_timeout_ms`
    snapshots and stops. A crashed room is not restarted by its supervisor
    (`:temporary`): the next call starts it again from storage, and its
    members see it go down and make their clients rejoin. So no number of
    crashes in one room can spend a restart budget that other rooms share.
  """
  use GenServer, restart: :temporary
  require Logger

  alias Tandem.Native

  @type project_id :: String.t()
  @type json :: {:json, binary()}

  ## API (see ARCHITECTURE.md, "Contract: Tandem.Room")

  @doc """
  Joins the caller to the room: `{:ok, reply, room_pid}` where reply is
  `{"seq","checksum","batches"}` or `{"seq","checksum","snapshot"}`.
  Subscribe to the project's topic BEFORE joining, so nothing is missed.
  """
  @spec join(project_id(), %{client_id: String.t(), last_seq: non_neg_integer() | nil}) ::
          {:ok, json(), pid()} | {:error, json()}
  def join(project_id, %{last_seq: last_seq}) do
    with :ok <- validate_id(project_id) do
      Tandem.Rooms.call(project_id, {:join, last_seq})
    end
  end

  @doc """
  Submits a `"diffs"` payload as the client sent it (`{format, bytes}`).
  Answers `{:ok, ack}` once the batch is durable, or `{:error, reason}`.
  """
  @spec submit(
          project_id(),
          %{client_id: String.t(), user_id: String.t()},
          {:json | :msgpack, binary()}
        ) ::
          {:ok, json()} | {:error, json()}
  def submit(project_id, %{client_id: client_id, user_id: user_id}, {format, bytes})
      when format in [:json, :msgpack] and is_binary(bytes) do
    with :ok <- validate_id(project_id) do
      Tandem.Rooms.call(project_id, {:submit, client_id, user_id, format, bytes})
    end
  end

  @doc "The batches after `since`, or a snapshot: as `join/2`, without membership."
  @spec sync(project_id(), non_neg_integer() | nil) :: {:ok, json()} | {:error, json()}
  def sync(project_id, since) do
    with :ok <- validate_id(project_id), do: Tandem.Rooms.call(project_id, {:sync, since})
  end

  @doc "Compares a client's checksum at `seq` with the server's."
  @spec verify(project_id(), non_neg_integer(), String.t()) :: {:ok, json()} | {:error, json()}
  def verify(project_id, seq, checksum) do
    with :ok <- validate_id(project_id),
         do: Tandem.Rooms.call(project_id, {:verify, seq, checksum})
  end

  @doc "The caller stops being a member (dying does the same)."
  @spec leave(project_id()) :: :ok
  def leave(project_id) do
    case Tandem.Rooms.whereis(project_id) do
      nil -> :ok
      pid -> GenServer.cast(pid, {:leave, self()})
    end
  end

  @doc "`%{seq, checksum, objects, members}` of a running room (for tests and metrics)."
  def info(project_id), do: Tandem.Rooms.call(project_id, :info)

  @doc "Whether `id` may name a project: 1 to 128 bytes of letters, digits, `-`, `_`, `.`."
  @spec valid_id?(term()) :: boolean()
  def valid_id?(id) when is_binary(id) and byte_size(id) in 1..128,
    do: String.match?(id, ~r/\A[A-Za-z0-9._-]+\z/)

  def valid_id?(_), do: false

  defp validate_id(id) do
    if valid_id?(id), do: :ok, else: {:error, error_json("invalid_project", "bad project id")}
  end

  defp error_json(reason, message),
    do: {:json, ~s({"reason":"#{reason}","message":"#{message}"})}

  ## Server

  def start_link(project_id),
    do: GenServer.start_link(__MODULE__, project_id, name: Tandem.Rooms.via(project_id))

  @impl true
  def init(project_id) do
    Process.flag(:trap_exit, true)
    config = Application.fetch_env!(:tandem, :room) |> Map.new()

    state = %{
      id: project_id,
      room: nil,
      store: Tandem.Store.impl(),
      config: config,
      members: %{},
      # The group awaiting its flush: replies and broadcasts, newest first.
      group: [],
      entries: [],
      first_seq: nil,
      flush_scheduled: false,
      since_snapshot: 0,
      idle_timer: nil,
      # Monotonic ms of the last submit, sync or verify: a room busy with
      # callers that never joined (tools, scripts) is not idle either.
      last_used: now_ms()
    }

    {:ok, state, {:continue, :load}}
  end

  @impl true
  def handle_continue(:load, state) do
    %{max_log_batches: max_b, max_log_diffs: max_d} = state.config
    {time, result} = :timer.tc(fn -> recover(state.store, state.id, max_b, max_d) end)

    case result do
      {:ok, room, replayed} ->
        Logger.debug("room #{state.id} recovered #{replayed} entries in #{div(time, 1000)} ms")
        Tandem.Metrics.observe(:room_recovery_us, time)
        Process.send_after(self(), :snapshot_tick, state.config.snapshot_interval_ms)
        {:noreply, schedule_idle(%{state | room: room, since_snapshot: replayed})}

      {:error, reason} ->
        # A clean stop, logged once as what it is: an error of storage, not of
        # the room. Each later call tries again (and answers `unavailable`).
        Logger.error("room #{state.id} cannot recover from storage: #{inspect(reason)}")
        Tandem.Metrics.inc(:room_recovery_failures)
        {:stop, {:shutdown, {:recovery_failed, reason}}, state}
    end
  end

  defp recover(store, id, max_b, max_d) do
    with {:ok, snapshot, entries} <- store.load(id),
         {:ok, room} <- open(snapshot, max_b, max_d),
         :ok <- replay(room, entries) do
      {:ok, room, length(entries)}
    end
  end

  defp open(nil, max_b, max_d), do: {:ok, Native.room_new(max_b, max_d)}
  defp open(snapshot, max_b, max_d), do: Native.room_load(snapshot, max_b, max_d)

  defp replay(_room, []), do: :ok
  defp replay(room, entries), do: Native.room_replay(room, entries)

  @impl true
  def handle_call({:submit, client_id, user_id, format, bytes}, from, state) do
    state = %{state | last_used: now_ms()}

    case resolve(state, client_id, user_id, format, bytes) do
      {:ok, seq, ack, batch, entry} ->
        state = %{
          state
          | group: [{from, {:ok, {:json, ack}}, batch} | state.group],
            entries: [entry | state.entries],
            first_seq: state.first_seq || seq
        }

        {:noreply, schedule_flush(state)}

      {:duplicate, ack} when state.group == [] ->
        Tandem.Metrics.inc(:room_batches_duplicate)
        {:reply, {:ok, {:json, ack}}, state}

      {:duplicate, ack} ->
        Tandem.Metrics.inc(:room_batches_duplicate)

        {:noreply,
         schedule_flush(%{state | group: [{from, {:ok, {:json, ack}}, nil} | state.group]})}

      {:error, reason} ->
        Tandem.Metrics.inc(:room_batches_refused)
        {:reply, {:error, {:json, reason}}, state}
    end
  end

  def handle_call({:join, last_seq}, {pid, _}, state) do
    with_flush(state, fn state ->
      state = add_member(state, pid)
      {:reply, {:ok, {:json, Native.room_join(state.room, last_seq)}, self()}, state}
    end)
  end

  def handle_call({:sync, since}, _from, state) do
    with_flush(%{state | last_used: now_ms()}, fn state ->
      {:reply, {:ok, {:json, Native.room_join(state.room, since)}}, state}
    end)
  end

  def handle_call({:verify, seq, checksum}, _from, state) do
    with_flush(%{state | last_used: now_ms()}, fn state ->
      {:reply, {:ok, {:json, Native.room_verify(state.room, seq, checksum)}}, state}
    end)
  end

  def handle_call(:info, _from, state) do
    info = Map.put(Native.room_info(state.room), :members, map_size(state.members))
    {:reply, info, state}
  end

  # Large payloads go to a dirty scheduler (shared/nif-notes.md: keep normal calls < 1 ms).
  defp resolve(state, client_id, user_id, format, bytes) do
    if byte_size(bytes) > state.config.dirty_payload_bytes do
      Native.room_submit_dirty(state.room, client_id, user_id, format, bytes)
    else
      Native.room_submit(state.room, client_id, user_id, format, bytes)
    end
  end

  @impl true
  def handle_cast({:leave, pid}, state), do: {:noreply, remove_member(state, pid)}

  @impl true
  def handle_info(:flush, state) do
    case flush(%{state | flush_scheduled: false}) do
      {:ok, state} -> {:noreply, maybe_snapshot(state)}
      {:error, reason, state} -> {:stop, {:journal_failed, reason}, state}
    end
  end

  def handle_info({:DOWN, _ref, :process, pid, _reason}, state),
    do: {:noreply, remove_member(state, pid)}

  def handle_info(:idle, state) do
    unused_ms = now_ms() - state.last_used

    cond do
      map_size(state.members) > 0 ->
        {:noreply, %{state | idle_timer: nil}}

      unused_ms >= state.config.idle_timeout_ms ->
        {:stop, :normal, state}

      true ->
        wait = state.config.idle_timeout_ms - unused_ms
        {:noreply, %{state | idle_timer: Process.send_after(self(), :idle, wait)}}
    end
  end

  def handle_info(:snapshot_tick, state) do
    Process.send_after(self(), :snapshot_tick, state.config.snapshot_interval_ms)

    # Flush first: a snapshot must never hold a batch the journal does not.
    with_flush(state, fn state ->
      {:noreply, if(state.since_snapshot > 0, do: snapshot(state), else: state)}
    end)
  end

  def handle_info({:EXIT, _pid, reason}, state), do: {:stop, reason, state}

  @impl true
  def terminate(reason, %{room: room} = state) when room != nil do
    # Only a clean stop may make pending batches durable; after a crash they
    # must vanish, unacknowledged, so that storage stays the truth.
    if reason in [:normal, :shutdown] or match?({:shutdown, _}, reason) do
      # An unchanged room's snapshot is already stored.
      with {:ok, %{since_snapshot: changed} = state} when changed > 0 <- flush(state),
           do: snapshot(state)
    end

    :ok
  end

  def terminate(_reason, _state), do: :ok

  ## Group commit

  defp schedule_flush(%{flush_scheduled: true} = state), do: state

  defp schedule_flush(state) do
    send(self(), :flush)
    %{state | flush_scheduled: true}
  end

  defp with_flush(state, fun) do
    case flush(state) do
      {:ok, state} -> fun.(state)
      {:error, reason, state} -> {:stop, {:journal_failed, reason}, state}
    end
  end

  defp flush(%{group: []} = state), do: {:ok, state}

  defp flush(state) do
    group = Enum.reverse(state.group)
    entries = Enum.reverse(state.entries)
    first_seq = state.first_seq
    state = %{state | group: [], entries: [], first_seq: nil}

    {commit_us, result} = :timer.tc(fn -> journal(state.store, state.id, first_seq, entries) end)

    case result do
      :ok ->
        Tandem.Metrics.observe(:room_commit_us, commit_us)
        Tandem.Metrics.inc(:room_batches_durable, %{}, length(entries))

        topic = "project:" <> state.id

        for {from, reply, batch} <- group do
          if batch, do: Tandem.PubSub.broadcast(topic, "batch", {:json, batch})
          GenServer.reply(from, reply)
        end

        {:ok, %{state | since_snapshot: state.since_snapshot + length(entries)}}

      {:error, reason} ->
        unavailable = {:error, error_json("unavailable", "the journal write failed")}
        Enum.each(group, fn {from, _, _} -> GenServer.reply(from, unavailable) end)
        {:error, reason, state}
    end
  end

  defp journal(_store, _id, _first, []), do: :ok

  defp journal(store, id, first, entries) do
    store.append(id, first, first + length(entries) - 1, entries)
  catch
    :exit, reason -> {:error, reason}
  end

  ## Snapshots

  defp maybe_snapshot(state) do
    if state.since_snapshot >= state.config.snapshot_every, do: snapshot(state), else: state
  end

  defp snapshot(state) do
    %{seq: seq} = Native.room_info(state.room)

    case state.store.put_snapshot(state.id, seq, Native.room_snapshot(state.room)) do
      :ok ->
        %{state | since_snapshot: 0}

      {:error, reason} ->
        Logger.error("room #{state.id}: snapshot failed: #{inspect(reason)}")
        state
    end
  end

  ## Members

  defp add_member(state, pid) do
    state = cancel_idle(state)

    if Map.has_key?(state.members, pid) do
      state
    else
      %{state | members: Map.put(state.members, pid, Process.monitor(pid))}
    end
  end

  defp remove_member(state, pid) do
    case Map.pop(state.members, pid) do
      {nil, _} ->
        state

      {ref, members} ->
        Process.demonitor(ref, [:flush])
        schedule_idle(%{state | members: members})
    end
  end

  defp schedule_idle(%{members: members} = state) when map_size(members) > 0, do: state

  defp schedule_idle(state) do
    state = cancel_idle(state)
    %{state | idle_timer: Process.send_after(self(), :idle, state.config.idle_timeout_ms)}
  end

  defp now_ms, do: System.monotonic_time(:millisecond)

  defp cancel_idle(%{idle_timer: nil} = state), do: state

  defp cancel_idle(state) do
    Process.cancel_timer(state.idle_timer)
    %{state | idle_timer: nil}
  end
end
