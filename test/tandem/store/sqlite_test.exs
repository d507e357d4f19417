defmodule Tandem.Store.SQLiteTest do
  # The application's store instance, with a room id per test. Not async:
  # tests that suspend it count its mailbox and must hold it alone.
  use ExUnit.Case, async: false

  import Tandem.Eventually
  alias Tandem.Store.SQLite

  setup do
    {:ok, room: "store-#{System.unique_integer([:positive])}"}
  end

  defp entries(range), do: Enum.map(range, &("entry #{&1} " <> :crypto.strong_rand_bytes(&1)))

  test "appended groups load back in seq order, byte for byte", %{room: room} do
    [a, b, c] = [entries(1..3), entries(4..4), entries(5..9)]
    :ok = SQLite.append(room, 1, 3, a)
    :ok = SQLite.append(room, 4, 4, b)
    :ok = SQLite.append(room, 5, 9, c)

    assert {:ok, nil, loaded} = SQLite.load(room)
    assert loaded == a ++ b ++ c
  end

  test "entries of any content survive, including empty and NUL bytes", %{room: room} do
    odd = ["", <<0, 0, 0, 0>>, <<255>>, String.duplicate("x", 100_000)]
    :ok = SQLite.append(room, 1, 4, odd)
    assert {:ok, nil, ^odd} = SQLite.load(room)
  end

  test "a snapshot drops the journal it covers, even inside a group", %{room: room} do
    all = entries(1..10)
    :ok = SQLite.append(room, 1, 4, Enum.slice(all, 0..3))
    :ok = SQLite.append(room, 5, 8, Enum.slice(all, 4..7))
    :ok = SQLite.put_snapshot(room, 6, "snapshot at 6")
    :ok = SQLite.append(room, 9, 10, Enum.slice(all, 8..9))

    # The group 5..8 straddles the snapshot: only 7 and 8 are replayed.
    assert {:ok, "snapshot at 6", loaded} = SQLite.load(room)
    assert loaded == Enum.slice(all, 6..9)

    :ok = SQLite.put_snapshot(room, 10, "snapshot at 10")
    assert {:ok, "snapshot at 10", []} = SQLite.load(room)
  end

  test "list names rooms with anything stored; delete forgets a room", %{room: room} do
    other = room <> "-other"
    :ok = SQLite.append(room, 1, 1, ["a"])
    :ok = SQLite.put_snapshot(other, 3, "s")

    {:ok, rooms} = SQLite.list()
    assert room in rooms and other in rooms

    :ok = SQLite.delete(room)
    assert {:ok, nil, []} = SQLite.load(room)
    {:ok, rooms} = SQLite.list()
    refute room in rooms
    assert other in rooms
  end

  test "appends of many rooms share commits, and one bad append fails alone", %{room: room} do
    rooms = for n <- 1..20, do: "#{room}-#{n}"
    :ok = SQLite.append(hd(rooms), 1, 1, ["first"])

    # Hold the store so that every append below waits in one mailbox, then
    # let it go: they are committed together.
    :sys.suspend(SQLite)

    tasks =
      for r <- rooms do
        # The first room repeats seq 1: a primary-key violation.
        Task.async(fn -> {r, SQLite.append(r, 1, 1, ["#{r} one"])} end)
      end

    wait_for_mailbox(SQLite, length(rooms))
    :sys.resume(SQLite)
    results = Map.new(tasks, &Task.await/1)

    assert {:error, _} = results[hd(rooms)]
    for r <- tl(rooms), do: assert(results[r] == :ok)
    assert {:ok, nil, ["first"]} = SQLite.load(hd(rooms))
    for r <- tl(rooms), do: assert({:ok, nil, ["#{r} one"]} == SQLite.load(r))
  end

  test "a shared commit larger than one INSERT statement keeps every row", %{room: room} do
    rooms = for n <- 1..1_201, do: "#{room}-#{n}"
    :sys.suspend(SQLite)
    tasks = for r <- rooms, do: Task.async(fn -> SQLite.append(r, 1, 2, [r, "two"]) end)
    wait_for_mailbox(SQLite, length(rooms))
    :sys.resume(SQLite)

    assert Enum.all?(tasks, &(Task.await(&1) == :ok))
    for r <- rooms, do: assert({:ok, nil, [^r, "two"]} = SQLite.load(r))
  end

  test "a load sees every append that reached the store before it", %{room: room} do
    :sys.suspend(SQLite)
    append = Task.async(fn -> SQLite.append(room, 1, 1, ["in flight"]) end)
    wait_for_mailbox(SQLite, 1)
    load = Task.async(fn -> SQLite.load(room) end)
    wait_for_mailbox(SQLite, 2)
    :sys.resume(SQLite)

    assert {:ok, nil, ["in flight"]} = Task.await(load)
    assert :ok = Task.await(append)
  end

  defp wait_for_mailbox(name, count) do
    queued = fn -> elem(Process.info(Process.whereis(name), :message_queue_len), 1) >= count end
    assert eventually(queued)
  end
end
