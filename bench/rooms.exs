# Rooms benchmark: `MIX_ENV=test mix run bench/rooms.exs` (or `make bench`).
# Prints: NIF call overhead; durable set-diff throughput through one room with
# 1, 10 and 100 concurrent writers; recovery time of a room with 100,000
# objects in its snapshot plus 10,000 journal entries.
alias Tandem.Native

defmodule Bench do
  def time_us(fun), do: fun |> :timer.tc() |> elem(0)

  def batch(batch_id, diffs),
    do: IO.iodata_to_binary(:jiffy.encode(%{batch_id: batch_id, diffs: diffs}))

  def sets(n, round),
    do: for(i <- 1..n, do: %{op: "set", id: "o#{rem(i, 100)}", key: "x", value: round * 1000 + i})
end

room = Native.room_new(0, 0)
n = 100_000
us = Bench.time_us(fn -> for _ <- 1..n, do: Native.room_info(room) end)
IO.puts("NIF call (room_info) overhead: #{Float.round(us / n, 3)} µs")
one = Bench.batch(1, [%{op: "set", id: "missing", key: "x", value: 1}])
r2 = Native.room_new(0, 0)

us =
  Bench.time_us(fn ->
    for i <- 1..n,
        do:
          Native.room_submit(
            r2,
            "c",
            "u",
            :json,
            String.replace(one, ~s("batch_id":1), ~s("batch_id":#{i}))
          )
  end)

IO.puts(
  "NIF room_submit of a 1-diff JSON batch (incl. building the payload): #{Float.round(us / n, 3)} µs"
)

project = "bench-#{System.unique_integer([:positive])}"
{:ok, _, _} = Tandem.Room.join(project, %{client_id: "setup", last_seq: nil})
adds = for i <- 0..99, do: %{op: "add", id: "o#{i}", attrs: %{}}

{:ok, _} =
  Tandem.Room.submit(project, %{client_id: "setup", user_id: "u"}, {:json, Bench.batch(1, adds)})

for writers <- [1, 10, 100] do
  diffs_per_batch = 10
  batches_per_writer = div(20_000, writers * diffs_per_batch) |> max(1)

  us =
    Bench.time_us(fn ->
      1..writers
      |> Enum.map(fn w ->
        Task.async(fn ->
          for b <- 1..batches_per_writer do
            payload = {:json, Bench.batch(b, Bench.sets(diffs_per_batch, b))}

            {:ok, _} =
              Tandem.Room.submit(project, %{client_id: "w#{writers}-#{w}", user_id: "u"}, payload)
          end
        end)
      end)
      |> Enum.each(&Task.await(&1, :infinity))
    end)

  diffs = writers * batches_per_writer * diffs_per_batch

  IO.puts(
    "durable through one room, #{writers} writer(s), #{diffs_per_batch} sets/batch: " <>
      "#{round(diffs / (us / 1_000_000))} diffs/s, #{round(writers * batches_per_writer / (us / 1_000_000))} batches/s"
  )
end

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
us = Bench.time_us(fn -> {:ok, _, _} = Tandem.Room.join(rec, %{client_id: "r", last_seq: 0}) end)
IO.puts("recovery of 100,000 objects + 10,000 journal entries (first join): #{div(us, 1000)} ms")
true = expected == Tandem.Room.info(rec).checksum

# Where recovery time goes.
{us_load, {:ok, snap, journal}} = :timer.tc(fn -> Tandem.Store.SQLite.load(rec) end)
{us_restore, {:ok, restored}} = :timer.tc(fn -> Native.room_load(snap, 0, 0) end)
{us_replay, :ok} = :timer.tc(fn -> Native.room_replay(restored, journal) end)
IO.puts("  of which: store load #{div(us_load, 1000)} ms, snapshot decode #{div(us_restore, 1000)} ms, journal replay #{div(us_replay, 1000)} ms")
