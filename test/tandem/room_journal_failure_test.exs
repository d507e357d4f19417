defmodule Tandem.RoomJournalFailureTest do
  # Swaps the application's store: runs alone (async: false).
  use ExUnit.Case, async: false
  import Tandem.RoomHelpers

  @moduletag :capture_log

  defmodule FlakyStore do
    @moduledoc "The real store, except that appends fail while `fail/1` says so."
    @behaviour Tandem.Store

    @real Tandem.Store.SQLite

    def fail(on?), do: :persistent_term.put(__MODULE__, on?)

    @impl true
    def append(room, first, last, entries) do
      if :persistent_term.get(__MODULE__, false),
        do: {:error, :disk_full},
        else: @real.append(room, first, last, entries)
    end

    @impl true
    def child_spec(opts), do: @real.child_spec(opts)
    @impl true
    def load(room), do: @real.load(room)
    @impl true
    def put_snapshot(room, seq, body), do: @real.put_snapshot(room, seq, body)
    @impl true
    def delete(room), do: @real.delete(room)
    @impl true
    def list, do: @real.list()
  end

  setup do
    real = Application.fetch_env!(:tandem, :store)
    Application.put_env(:tandem, :store, FlakyStore)

    on_exit(fn ->
      FlakyStore.fail(false)
      Application.put_env(:tandem, :store, real)
    end)

    project = unique_project("flaky")
    :ok = Tandem.PubSub.subscribe("project:" <> project)
    {:ok, project: project}
  end

  test "a failed journal write acknowledges and broadcasts nothing; the room restarts from storage",
       %{project: p} do
    {:ok, %{"seq" => 1}} = submit!(p, "c1", 1, [add("a")])
    assert_receive %Tandem.PubSub.Broadcast{event: "batch"}
    pid = Tandem.Rooms.whereis(p)
    ref = Process.monitor(pid)

    FlakyStore.fail(true)
    assert {:error, %{"reason" => "unavailable"}} = submit!(p, "c1", 2, [set("a", "n", 2)])
    assert_receive {:DOWN, ^ref, :process, ^pid, {:journal_failed, :disk_full}}
    refute_received %Tandem.PubSub.Broadcast{}

    # The batch the room had resolved but could not journal is gone, so its
    # retry is applied as new rather than answered as a duplicate.
    FlakyStore.fail(false)
    assert %{seq: 1} = Tandem.Room.info(p)
    assert {:ok, %{"seq" => 2}} = submit!(p, "c1", 2, [set("a", "n", 2)])
  end
end
