defmodule Tandem.RoomChaosTest do
  @moduledoc """
  Writers that retry on `unavailable` against a room that is killed at
  random moments: every acknowledged batch survives, and no batch is ever
  sequenced twice. The seed is printed; replay the kill schedule with
  `ROOM_CHAOS_SEED=<seed> mix test test/tandem/room_chaos_test.exs`.
  """
  use ExUnit.Case, async: true
  import Tandem.RoomHelpers

  @writers 5
  @batches 100

  test "acknowledged batches survive random room kills, each with one seq" do
    seed = String.to_integer(System.get_env("ROOM_CHAOS_SEED") || "#{:rand.uniform(1_000_000)}")
    IO.puts("room chaos seed: #{seed}")
    :rand.seed(:exsss, {seed, seed, seed})
    p = unique_project("chaos")

    writers =
      for w <- 1..@writers do
        Task.async(fn -> for n <- 1..@batches, do: {{w, n}, submit_until_ok(p, w, n, 0)} end)
      end

    kills = kill_while_running(p, writers, 0)
    acks = writers |> Enum.flat_map(&Task.await(&1, 60_000)) |> Map.new()
    retries = acks |> Enum.map(fn {_, {_, r}} -> r end) |> Enum.sum()
    IO.puts("room chaos: #{kills} kills, #{retries} retried submits")
    assert kills > 0

    {:ok, reply, _} = Tandem.Room.join(p, %{client_id: "checker", last_seq: nil})
    state = decode(reply)
    seqs = Enum.map(acks, fn {_, {ack, _}} -> ack["seq"] end)

    # One seq per batch, none shared, none skipped: nothing applied twice.
    assert Enum.sort(seqs) == Enum.to_list(1..(@writers * @batches))
    assert state["seq"] == @writers * @batches

    for {{w, n}, _} <- acks do
      assert state["snapshot"]["w#{w}-#{n}"]["n"] == n, "lost batch #{n} of writer #{w}"
    end
  end

  # Kills the room after a random 1..8 ms, again and again, until every writer is done.
  defp kill_while_running(p, writers, kills) do
    Process.sleep(:rand.uniform(8))

    if Enum.all?(writers, &(Process.info(&1.pid) == nil)) do
      kills
    else
      case Tandem.Rooms.whereis(p) do
        nil ->
          kill_while_running(p, writers, kills)

        pid ->
          kill_while_running(p, writers, kills + if(Process.exit(pid, :kill), do: 1, else: 0))
      end
    end
  end

  defp submit_until_ok(p, w, n, retries) do
    case submit!(p, "w#{w}", n, [add("w#{w}-#{n}"), set("w#{w}-#{n}", "n", n)]) do
      {:ok, ack} -> {ack, retries}
      {:error, %{"reason" => "unavailable"}} -> submit_until_ok(p, w, n, retries + 1)
    end
  end
end
