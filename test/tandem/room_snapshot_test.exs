defmodule Tandem.RoomSnapshotTest do
  # Changes the rooms' configuration: runs alone (async: false).
  use ExUnit.Case, async: false
  import Tandem.RoomHelpers
  import Tandem.Eventually

  setup do
    config = Application.fetch_env!(:tandem, :room)
    on_exit(fn -> Application.put_env(:tandem, :room, config) end)
    {:ok, config: config}
  end

  test "every snapshot_every batches a snapshot replaces the journal it covers", %{config: config} do
    Application.put_env(:tandem, :room, Keyword.put(config, :snapshot_every, 10))
    p = unique_project("snap")

    # One batch at a time, so that each flush journals exactly one.
    for n <- 1..25, do: {:ok, %{"seq" => ^n}} = submit!(p, "c1", n, [add("o#{n}")])

    {:ok, snapshot, journal} = Tandem.Store.impl().load(p)
    assert is_binary(snapshot)
    assert length(journal) == 5

    # The snapshot at 20 plus the journal rebuild the same room.
    {:ok, room} = Tandem.Native.room_load(snapshot, 0, 0)
    assert %{seq: 20} = Tandem.Native.room_info(room)
    :ok = Tandem.Native.room_replay(room, journal)
    assert Tandem.Native.room_info(room) == Map.delete(Tandem.Room.info(p), :members)
  end

  test "a changed room snapshots every snapshot_interval_ms", %{config: config} do
    Application.put_env(:tandem, :room, Keyword.put(config, :snapshot_interval_ms, 50))
    p = unique_project("tick")
    # A member keeps the room from stopping (which would snapshot too).
    {:ok, _, pid} = Tandem.Room.join(p, %{client_id: "m", last_seq: nil})
    {:ok, _} = submit!(p, "c1", 1, [add("a")])

    snapshotted = fn ->
      match?({:ok, snapshot, []} when is_binary(snapshot), Tandem.Store.impl().load(p))
    end

    assert eventually(snapshotted)
    assert Process.alive?(pid)
  end
end
