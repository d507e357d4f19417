defmodule Tandem.Store.SQLite do
  @moduledoc """
  The embedded default store: one SQLite file, `DATA_DIR/tandem.db`, through
  Debian's `erlang-p1-sqlite3` (a port driver behind one gen_server).

  Why this driver fits (measured here): its statements run on the VM's async
  thread pool (`driver_async`), so an fsync never blocks a scheduler; a
  statement costs ~50 µs, a row of a multi-row INSERT ~6 µs, and a commit's
  fsync ~0.3–0.5 ms dominates, which group commit amortises.

  Durability: WAL with `synchronous=FULL`, so a commit is on disk when
  `append/4` returns — an acknowledged batch survives a power cut, not just
  a killed VM (`NORMAL` would only survive a killed VM: in WAL mode it skips
  the fsync per commit). Each room's group commit is written as ONE row
  holding all its entries (length-prefixed), because the driver costs tens
  of microseconds per statement and a row per batch would cap a room's
  throughput.

  Group commit across rooms: appends that arrive while a commit is on its
  way to disk wait in this process's mailbox; the next commit writes all of
  them in one transaction (one fsync) and answers them together. So many
  busy rooms share fsyncs instead of queueing one fsync each. A room has at
  most one append outstanding (it waits for the answer), so reordering
  appends of different rooms is safe.

  All statements go through this module's own process, so a transaction's
  statements can never interleave with another caller's.
  """
  @behaviour Tandem.Store
  use GenServer

  @db :tandem_sqlite

  @impl Tandem.Store
  def child_spec(opts) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}, type: :worker}
  end

  @doc false
  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @impl Tandem.Store
  def append(room, first, last, entries), do: call({:append, room, first, last, entries})

  @impl Tandem.Store
  def load(room), do: call({:load, room})

  @impl Tandem.Store
  def put_snapshot(room, seq, body), do: call({:put_snapshot, room, seq, body})

  @impl Tandem.Store
  def delete(room), do: call({:delete, room})

  @impl Tandem.Store
  def list, do: call(:list)

  defp call(request), do: GenServer.call(__MODULE__, request, :infinity)

  @impl GenServer
  def init(opts) do
    dir = Keyword.get_lazy(opts, :data_dir, fn -> Application.fetch_env!(:tandem, :data_dir) end)
    File.mkdir_p!(dir)
    path = Path.join(dir, "tandem.db")

    with {:ok, _pid} <- :sqlite3.open(@db, file: String.to_charlist(path)),
         :ok <- setup() do
      {:ok, %{appends: [], commit_scheduled: false}}
    else
      error -> {:stop, {:sqlite_open_failed, path, error}}
    end
  end

  @impl GenServer
  def handle_call({:append, room, first, last, entries}, from, state) do
    state = %{state | appends: [{from, journal_row(room, first, last, entries)} | state.appends]}

    if state.commit_scheduled do
      {:noreply, state}
    else
      # Queues behind every append already in the mailbox: they join this commit.
      send(self(), :commit)
      {:noreply, %{state | commit_scheduled: true}}
    end
  end

  # Any other request first commits the appends that arrived before it, so
  # that it sees them: a room restarted after a crash must load the last
  # append its predecessor sent, even if that append was still waiting.
  def handle_call(request, from, %{appends: [_ | _]} = state),
    do: handle_call(request, from, commit(state))

  def handle_call({:load, room}, _from, state), do: {:reply, do_load(room), state}

  def handle_call({:put_snapshot, room, seq, body}, _from, state) do
    result =
      transaction([
        {"INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", [room, seq, {:blob, body}]},
        {"DELETE FROM journal WHERE room = ? AND last_seq <= ?", [room, seq]}
      ])

    {:reply, result, state}
  end

  def handle_call(:list, _from, state) do
    result =
      case :sqlite3.sql_exec(@db, "SELECT room FROM snapshots UNION SELECT room FROM journal") do
        [columns: _, rows: rows] -> {:ok, Enum.map(rows, fn {room} -> room end)}
        other -> {:error, other}
      end

    {:reply, result, state}
  end

  def handle_call({:delete, room}, _from, state) do
    result =
      transaction([
        {"DELETE FROM snapshots WHERE room = ?", [room]},
        {"DELETE FROM journal WHERE room = ?", [room]}
      ])

    {:reply, result, state}
  end

  @impl GenServer
  def handle_info(:commit, state), do: {:noreply, %{commit(state) | commit_scheduled: false}}

  defp commit(%{appends: []} = state), do: state

  defp commit(state) do
    appends = Enum.reverse(state.appends)

    case transaction(insert_journal(Enum.map(appends, &elem(&1, 1)))) do
      :ok ->
        Enum.each(appends, fn {from, _} -> GenServer.reply(from, :ok) end)

      _group_failed ->
        # Keep one room's bad row from failing the others: retry them alone.
        Enum.each(appends, fn {from, row} ->
          GenServer.reply(from, transaction(insert_journal([row])))
        end)
    end

    %{state | appends: []}
  end

  @impl GenServer
  def terminate(_reason, _state), do: :sqlite3.close(@db)

  defp setup do
    script = """
    PRAGMA journal_mode=WAL;
    PRAGMA synchronous=FULL;
    CREATE TABLE IF NOT EXISTS journal (
      room TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
      entries BLOB NOT NULL, PRIMARY KEY (room, first_seq));
    CREATE TABLE IF NOT EXISTS snapshots (
      room TEXT PRIMARY KEY, seq INTEGER NOT NULL, body BLOB NOT NULL);
    """

    case :sqlite3.sql_exec_script(@db, script) do
      results when is_list(results) -> first_error(results)
      other -> first_error([other])
    end
  end

  defp journal_row(room, first, last, entries) do
    blob = IO.iodata_to_binary(Enum.map(entries, &[<<byte_size(&1)::32>>, &1]))
    [room, first, last, {:blob, blob}]
  end

  # Multi-row INSERTs: the driver costs ~50 µs per statement but ~6 µs per
  # row of a multi-row one (measured here), which matters when many rooms
  # share a commit. 500 rows × 4 parameters stays under SQLite's limit.
  @rows_per_insert 500

  defp insert_journal(rows) do
    for chunk <- Enum.chunk_every(rows, @rows_per_insert) do
      values = Enum.map_join(chunk, ", ", fn _ -> "(?, ?, ?, ?)" end)
      {"INSERT INTO journal VALUES " <> values, Enum.concat(chunk)}
    end
  end

  defp do_load(room) do
    with [columns: _, rows: snap_rows] <-
           :sqlite3.sql_exec(@db, "SELECT seq, body FROM snapshots WHERE room = ?", [room]),
         {snap_seq, snapshot} <- snapshot_of(snap_rows),
         [columns: _, rows: rows] <-
           :sqlite3.sql_exec(
             @db,
             "SELECT first_seq, entries FROM journal WHERE room = ? AND last_seq > ? ORDER BY first_seq",
             [room, snap_seq]
           ) do
      entries =
        Enum.flat_map(rows, fn {first, {:blob, blob}} ->
          # A group may straddle the snapshot: skip what the snapshot holds.
          Enum.drop(split(blob), max(snap_seq - first + 1, 0))
        end)

      {:ok, snapshot, entries}
    else
      other -> {:error, other}
    end
  end

  defp snapshot_of([]), do: {0, nil}
  defp snapshot_of([{seq, {:blob, body}}]), do: {seq, body}

  defp split(<<>>), do: []
  defp split(<<size::32, entry::binary-size(size), rest::binary>>), do: [entry | split(rest)]

  defp transaction(statements) do
    with :ok <- ok_or_error(:sqlite3.sql_exec(@db, "BEGIN IMMEDIATE")) do
      result =
        Enum.reduce_while(statements, :ok, fn {sql, params}, :ok ->
          case ok_or_error(:sqlite3.sql_exec(@db, sql, params)) do
            :ok -> {:cont, :ok}
            error -> {:halt, error}
          end
        end)

      case result do
        :ok -> ok_or_error(:sqlite3.sql_exec(@db, "COMMIT"))
        error -> tap(error, fn _ -> :sqlite3.sql_exec(@db, "ROLLBACK") end)
      end
    end
  end

  defp ok_or_error(:ok), do: :ok
  defp ok_or_error({:rowid, _}), do: :ok
  defp ok_or_error(columns: _, rows: _), do: :ok
  defp ok_or_error(other), do: {:error, other}

  defp first_error(results) do
    Enum.find_value(results, :ok, fn r ->
      case ok_or_error(r) do
        :ok -> nil
        error -> error
      end
    end)
  end
end
