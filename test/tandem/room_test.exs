defmodule Tandem.RoomTest do
  # Not async: two tests suspend the application's one store process, which
  # would stall or (on another module's resume) release every other test's
  # writes at the wrong moment.
  use ExUnit.Case, async: false
  import Tandem.RoomHelpers

  alias Tandem.PubSub.Broadcast

  setup do
    project = unique_project()
    :ok = Tandem.PubSub.subscribe("project:" <> project)
    {:ok, project: project}
  end

  defp join(project, last_seq \\ nil) do
    {:ok, reply, pid} = Tandem.Room.join(project, %{client_id: "joiner", last_seq: last_seq})
    {decode(reply), pid}
  end

  defp broadcasts do
    receive do
      %Broadcast{event: "batch", payload: payload} -> [decode(payload) | broadcasts()]
    after
      50 -> []
    end
  end

  test "batches get consecutive seqs and are broadcast in order", %{project: p} do
    durable_before = Tandem.Metrics.value(:room_batches_durable)
    for n <- 1..5, do: assert({:ok, %{"seq" => ^n}} = submit!(p, "c1", n, [add("o#{n}")]))

    assert Enum.map(broadcasts(), & &1["seq"]) == [1, 2, 3, 4, 5]
    assert %{seq: 5, objects: 5} = Tandem.Room.info(p)
    # Every acknowledged batch is in the journal.
    assert {:ok, nil, journal} = Tandem.Store.impl().load(p)
    assert length(journal) == 5
    assert Tandem.Metrics.value(:room_batches_durable) >= durable_before + 5
  end

  test "a retried batch is answered again and never applied twice", %{project: p} do
    {:ok, first} = submit!(p, "c1", 7, [add("a"), set("a", "n", 1)])
    assert {:ok, ^first} = submit!(p, "c1", 7, [add("a"), set("a", "n", 1)])
    # A later batch with a lower id than the last is refused, not re-applied.
    {:ok, _} = submit!(p, "c1", 9, [set("a", "n", 2)])
    assert {:ok, ^first} = submit!(p, "c1", 7, [])
    # Never sequenced (every id of c1 is remembered): it may come again under a new id.
    assert {:error, %{"reason" => "not_sequenced"}} = submit!(p, "c1", 3, [])

    assert length(broadcasts()) == 2
    assert %{seq: 2, objects: 1} = Tandem.Room.info(p)
  end

  test "diffs that make no sense are dropped with their reasons", %{project: p} do
    {:ok, ack} =
      submit!(p, "c1", 1, [
        add("a", %{z: "80"}),
        add("a"),
        set("ghost", "x", 1),
        add("b", %{parent: "nowhere"}),
        add("c", %{z: "80"}),
        add("d", %{z: "not hex"})
      ])

    assert ack["amended"] == [4]

    assert Enum.map(ack["dropped"], &{&1["index"], &1["reason"]}) == [
             {1, "duplicate_add"},
             {2, "missing_target"},
             {3, "missing_parent"},
             {5, "malformed_z"}
           ]

    [batch] = broadcasts()
    assert [%{"id" => "a"}, %{"id" => "c", "attrs" => %{"z" => z}}] = batch["diffs"]
    assert z > "80"
  end

  test "malformed batches are refused whole with a reason", %{project: p} do
    assert {:error, %{"reason" => "malformed"}} =
             Tandem.Room.submit(p, %{client_id: "c", user_id: "u"}, {:json, "{\"batch_id\":"})
             |> then(fn {s, r} -> {s, decode(r)} end)

    assert {:error, %{"reason" => "malformed"}} = submit!(p, "c1", 1, [%{op: "explode"}])

    too_many = for n <- 1..10_001, do: set("a", "k", n)
    assert {:error, %{"reason" => "too_many_diffs"}} = submit!(p, "c1", 2, too_many)

    assert {:error, %{"reason" => "invalid_project"}} =
             Tandem.Room.submit("bad id!", %{client_id: "c", user_id: "u"}, batch(1, []))
             |> then(fn {s, r} -> {s, decode(r)} end)

    assert %{seq: 0} = Tandem.Room.info(p)
  end

  test "a client catches up from last_seq, or gets a snapshot when the log is too short",
       %{project: p} do
    for n <- 1..60, do: {:ok, _} = submit!(p, "c1", n, [add("o#{n}")])

    {recent, _} = join(p, 55)
    assert recent["seq"] == 60
    assert Enum.map(recent["batches"], & &1["seq"]) == [56, 57, 58, 59, 60]
    refute Map.has_key?(recent, "snapshot")

    # The test config keeps 50 batches: seq 5 is too old for the log.
    {old, _} = join(p, 5)
    assert map_size(old["snapshot"]) == 60
    assert old["checksum"] == recent["checksum"]

    {fresh, _} = join(p, nil)
    assert fresh["snapshot"] == old["snapshot"]
  end

  test "verify answers ok for the right checksum and a snapshot otherwise", %{project: p} do
    {:ok, %{"seq" => 1, "checksum" => c1}} = submit!(p, "c1", 1, [add("a")])
    {:ok, %{"seq" => 2}} = submit!(p, "c1", 2, [add("b")])

    assert %{"ok" => true} = p |> Tandem.Room.verify(1, c1) |> elem(1) |> decode()

    assert %{"ok" => false, "seq" => 2, "snapshot" => snap} =
             p |> Tandem.Room.verify(2, c1) |> elem(1) |> decode()

    assert Map.keys(snap) == ["a", "b"]
  end

  test "concurrent writers end in one order that every subscriber sees", %{project: p} do
    writers =
      for w <- 1..10 do
        Task.async(fn ->
          for n <- 1..20, do: {:ok, %{"seq" => _}} = submit!(p, "w#{w}", n, [add("w#{w}-#{n}")])
        end)
      end

    Enum.each(writers, &Task.await(&1, 30_000))
    seen = broadcasts()
    assert Enum.map(seen, & &1["seq"]) == Enum.to_list(1..200)
    # Each writer's batches keep their own order inside the global one.
    for w <- 1..10 do
      ids = for b <- seen, b["client_id"] == "w#{w}", do: b["batch_id"]
      assert ids == Enum.to_list(1..20)
    end

    {state, _} = join(p)
    assert state["checksum"] == List.last(seen)["checksum"]
  end

  test "a room with no members stops, and comes back from storage", %{project: p} do
    {:ok, _} = submit!(p, "c1", 1, [add("a"), set("a", "name", "kept")])
    {before, pid} = join(p)
    ref = Process.monitor(pid)
    Tandem.Room.leave(p)

    assert_receive {:DOWN, ^ref, :process, ^pid, :normal}, 5_000
    # Stopping took a snapshot, which truncated the journal.
    assert {:ok, snapshot, []} = Tandem.Store.impl().load(p)
    assert is_binary(snapshot)
    {after_restart, new_pid} = join(p)
    assert new_pid != pid
    assert after_restart["snapshot"] == before["snapshot"]
    assert after_restart["checksum"] == before["checksum"]

    # Stopping again unchanged does not write the same snapshot again.
    store = Tandem.Store.impl()
    :ok = store.put_snapshot(p, 1, "a marker no room would write")
    again_ref = Process.monitor(new_pid)
    Tandem.Room.leave(p)
    assert_receive {:DOWN, ^again_ref, :process, ^new_pid, :normal}, 5_000
    assert {:ok, "a marker no room would write", []} = store.load(p)
    :ok = store.put_snapshot(p, 1, snapshot)
    # Retry recognition survives the restart too.
    assert {:ok, %{"seq" => 1}} = submit!(p, "c1", 1, [add("a")])
  end

  test "a room used by callers that never joined stays up until unused", %{project: p} do
    {:ok, _} = submit!(p, "c1", 1, [add("a")])
    pid = Tandem.Rooms.whereis(p)
    ref = Process.monitor(pid)

    # Two and a half idle timeouts (1 s in tests) of steady use by a non-member.
    for n <- 2..26 do
      Process.sleep(100)
      {:ok, _} = submit!(p, "c1", n, [set("a", "n", n)])
    end

    assert Tandem.Rooms.whereis(p) == pid
    assert_receive {:DOWN, ^ref, :process, ^pid, :normal}, 5_000
  end

  test "nothing is acknowledged or broadcast before it is durable; a retry waits for its original",
       %{project: p} do
    {:ok, _} = submit!(p, "c1", 1, [add("a")])
    [_] = broadcasts()
    store = Tandem.Store.impl()
    :sys.suspend(store)

    try do
      original = Task.async(fn -> submit!(p, "c1", 2, [set("a", "n", 2)]) end)
      retry = Task.async(fn -> submit!(p, "c1", 2, [set("a", "n", 2)]) end)

      refute Task.yield(original, 200)
      refute Task.yield(retry, 0)
      assert broadcasts() == []

      :sys.resume(store)
      assert {:ok, %{"seq" => 2} = ack} = Task.await(original)
      assert {:ok, ^ack} = Task.await(retry)
      assert [%{"seq" => 2}] = broadcasts()
    after
      :sys.resume(store)
    end
  end

  test "a room dying during a call answers unavailable, and the retry lands once",
       %{project: p} do
    {:ok, _} = submit!(p, "c1", 1, [add("a")])
    pid = Tandem.Rooms.whereis(p)
    store = Tandem.Store.impl()
    :sys.suspend(store)

    try do
      pending = Task.async(fn -> submit!(p, "c1", 2, [set("a", "n", 2)]) end)
      refute Task.yield(pending, 100)
      Process.exit(pid, :kill)
      assert {:error, %{"reason" => "unavailable"}} = Task.await(pending)
    after
      :sys.resume(store)
    end

    # The journal write may or may not have landed: either way seq 2 is this batch.
    assert {:ok, %{"seq" => 2}} = submit!(p, "c1", 2, [set("a", "n", 2)])
    assert %{seq: 2} = Tandem.Room.info(p)
  end

  @tag :capture_log
  test "a room whose storage is unreadable answers unavailable and harms no other room",
       %{project: p} do
    store = Tandem.Store.impl()
    :ok = store.put_snapshot(p, 3, "not a snapshot")
    other = unique_project()
    {:ok, _} = submit!(other, "c1", 1, [add("a")])
    other_pid = Tandem.Rooms.whereis(other)

    for _ <- 1..3 do
      assert {:error, reply} = Tandem.Room.join(p, %{client_id: "c", last_seq: nil})
      assert %{"reason" => "unavailable"} = decode(reply)
    end

    assert Tandem.Rooms.whereis(other) == other_pid
    assert {:ok, %{"seq" => 2}} = submit!(other, "c1", 2, [set("a", "n", 2)])

    # Once storage is repaired the room opens.
    :ok = store.delete(p)
    assert {:ok, %{"seq" => 1}} = submit!(p, "c1", 1, [add("a")])
  end

  test "no number of crashes in one room disturbs another room", %{project: p} do
    other = unique_project()
    {:ok, _} = submit!(other, "c1", 1, [add("a")])
    # Membership keeps the other room from stopping idle meanwhile.
    {_, other_pid} = join(other)

    # More crashes in a row than a supervisor's restart budget would allow.
    for _ <- 1..1_100 do
      %{seq: 0} = Tandem.Room.info(p)
      pid = Tandem.Rooms.whereis(p)
      ref = Process.monitor(pid)
      Process.exit(pid, :kill)
      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}
    end

    assert Tandem.Rooms.whereis(other) == other_pid
    assert {:ok, %{"seq" => 2}} = submit!(other, "c1", 2, [set("a", "n", 2)])
  end

  test "a crashed room restarts from snapshot and journal", %{project: p} do
    for n <- 1..20, do: {:ok, _} = submit!(p, "c1", n, [add("o#{n}"), set("o#{n}", "n", n)])
    {_, pid} = join(p)
    # The periodic snapshot, due now.
    send(pid, :snapshot_tick)
    for n <- 21..30, do: {:ok, _} = submit!(p, "c1", n, [add("o#{n}"), set("o#{n}", "n", n)])
    {before, ^pid} = join(p)
    assert {:ok, snapshot, journal} = Tandem.Store.impl().load(p)
    assert is_binary(snapshot) and length(journal) == 10

    ref = Process.monitor(pid)
    Process.exit(pid, :kill)
    assert_receive {:DOWN, ^ref, :process, ^pid, :killed}

    {after_crash, _} = join(p)
    assert after_crash["seq"] == 30
    assert after_crash["checksum"] == before["checksum"]
    assert after_crash["snapshot"] == before["snapshot"]
  end
end
