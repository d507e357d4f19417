# Rooms benchmark: `MIX_ENV=test mix run bench/rooms.exs` (or `make bench`).
# Prints: NIF call overhead; durable set-diff throughput through one room with
# 1, 10 and 100 concurrent writers, and through 100 rooms with one writer
# each (group commit across rooms); recovery time of a room with 100,000
# objects in its snapshot plus 10,000 journal entries. The store is the
# configured one (SQLite, fsync per commit) under the test DATA_DIR.
alias Tandem.Native

defmodule Bench do
  def time_us(fun), do: fun |> :timer.tc() |> elem(0)

  def batch(batch_id, diffs),
    do: IO.iodata_to_binary(:jiffy.encode(%{batch_id: batch_id, diffs: diffs}))

  def sets(n, round),
    do: for(i <- 1..n, do: %{op: "set", id: "o#{rem(i, 100)}", key: "x", value: round * 1000 + i})

  @sets_per_batch 10

  @doc "Each {project, client_id} submits `batches` batches of sets, all concurrently."
  def write(writers, batches) do
    commits = Tandem.Metrics.value(:room_commit_us_count)
    commit_us = Tandem.Metrics.value(:room_commit_us_sum)

    us =
      time_us(fn ->
        writers
        |> Enum.map(fn {project, client_id} ->
          Task.async(fn ->
            for b <- 1..batches do
              payload = {:json, batch(b, sets(@sets_per_batch, b))}

              {:ok, _} =
                Tandem.Room.submit(project, %{client_id: client_id, user_id: "u"}, payload)
            end
          end)
        end)
        |> Enum.each(&Task.await(&1, :infinity))
      end)

    %{
      seconds: us / 1_000_000,
      batches: length(writers) * batches,
      commits: Tandem.Metrics.value(:room_commit_us_count) - commits,
      commit_us: Tandem.Metrics.value(:room_commit_us_sum) - commit_us
    }
  end

  def report(label, r) do
    IO.puts(
      "durable through #{label}, #{@sets_per_batch} sets/batch: " <>
        "#{round(r.batches * @sets_per_batch / r.seconds)} diffs/s, " <>
        "#{round(r.batches / r.seconds)} batches/s; " <>
        "#{Float.round(r.batches / r.commits, 1)} batches per room commit, " <>
        "mean room commit (store call incl. fsync) #{round(r.commit_us / r.commits)} µs"
    )
  end
end

room = Native.room_new(0, 0)
n = 100_000
us = Bench.time_us(fn -> for _ <- 1..n, do: Native.protocol_range() end)
IO.puts("NIF call with no room (protocol_range): #{Float.round(us / n, 3)} µs")
us = Bench.time_us(fn -> for _ <- 1..n, do: Native.room_info(room) end)
IO.puts("NIF call (room_info) overhead: #{Float.round(us / n, 3)} µs")
# Payloads are built before the clock starts: this is the NIF's own cost.
payloads = for i <- 1..n, do: Bench.batch(i, [%{op: "set", id: "missing", key: "x", value: i}])
r2 = Native.room_new(0, 0)
us = Bench.time_us(fn -> for p <- payloads, do: Native.room_submit(r2, "c", "u", :json, p) end)

IO.puts(
  "NIF room_submit of a 1-diff JSON batch (resolve, sequence, log): #{Float.round(us / n, 3)} µs"
)

project = "bench-#{System.unique_integer([:positive])}"
{:ok, _, _} = Tandem.Room.join(project, %{client_id: "setup", last_seq: nil})
adds = for i <- 0..99, do: %{op: "add", id: "o#{i}", attrs: %{}}

{:ok, _} =
  Tandem.Room.submit(project, %{client_id: "setup", user_id: "u"}, {:json, Bench.batch(1, adds)})

for writers <- [1, 10, 100] do
  writers_of = for w <- 1..writers, do: {project, "w#{writers}-#{w}"}
  Bench.report("one room, #{writers} writer(s)", Bench.write(writers_of, div(2_000, writers)))
end

# Many rooms, one writer each: only the store's cross-room group commit can
# share fsyncs between them.
setup = %{client_id: "setup", user_id: "u"}

projects =
  for r <- 1..100 do
    project = "bench-many-#{r}-#{System.unique_integer([:positive])}"
    {:ok, _} = Tandem.Room.submit(project, setup, {:json, Bench.batch(1, adds)})
    {project, "solo"}
  end

Bench.report("100 rooms, 1 writer each", Bench.write(projects, 40))

# Recovery: 100,000 objects in a snapshot, then 10,000 journal entries.
rec = "recover-#{System.unique_integer([:positive])}"
big = Native.room_new(0, 0)

for chunk <- Enum.chunk_every(0..99_999, 5_000) do
  diffs =
    for i <- chunk,
        do: %{
          op: "add",
          id: "obj-#{i}",
          attrs: %{name: "layer #{i}", color: "#3366ff", x: rem(i, 1000), y: div(i, 1000)}
        }

  {:ok, _, _, _, _} =
    Native.room_submit_dirty(big, "loader", "u", :json, Bench.batch(hd(chunk) + 1, diffs))
end

%{seq: seq} = Native.room_info(big)
:ok = Tandem.Store.SQLite.put_snapshot(rec, seq, Native.room_snapshot(big))

entries =
  for i <- 1..10_000 do
    {:ok, s, _, _, entry} =
      Native.room_submit(
        big,
        "journal",
        "u",
        :json,
        Bench.batch(i, [%{op: "set", id: "obj-#{i}", key: "x", value: -i}])
      )

    {s, entry}
  end

for chunk <- Enum.chunk_every(entries, 100) do
  {first, _} = hd(chunk)
  {last, _} = List.last(chunk)
  :ok = Tandem.Store.SQLite.append(rec, first, last, Enum.map(chunk, &elem(&1, 1)))
end

expected = Native.room_info(big).checksum
# The first call starts the room, which recovers before it answers.
{us, %{checksum: ^expected}} = :timer.tc(fn -> Tandem.Room.info(rec) end)

IO.puts(
  "recovery of 100,000 objects + 10,000 journal entries (start to first answer): #{div(us, 1000)} ms"
)

# Where recovery time goes.
{us_load, {:ok, snap, journal}} = :timer.tc(fn -> Tandem.Store.SQLite.load(rec) end)
{us_restore, {:ok, restored}} = :timer.tc(fn -> Native.room_load(snap, 0, 0) end)
{us_replay, :ok} = :timer.tc(fn -> Native.room_replay(restored, journal) end)

IO.puts(
  "  of which: store load #{div(us_load, 1000)} ms, snapshot decode #{div(us_restore, 1000)} ms, journal replay #{div(us_replay, 1000)} ms"
)
