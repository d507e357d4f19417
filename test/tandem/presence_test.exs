defmodule Tandem.PresenceTest do
  @moduledoc """
  `Tandem.Presence` coalesces diffs per topic: a burst of joins is one
  `presence_diff`, and a meta that joins and leaves within one window shows
  in both halves (phoenix.js applies joins, then leaves: it nets out).
  """
  use ExUnit.Case, async: true

  alias Tandem.PubSub.Broadcast

  defp topic, do: "presence:pt-#{System.unique_integer([:positive])}"

  defp member do
    spawn_link(fn -> receive(do: (:stop -> :ok)) end)
  end

  test "a burst of joins on a topic is announced in one diff" do
    topic = topic()
    Tandem.PubSub.subscribe(topic)

    for i <- 1..5, do: {:ok, _} = Tandem.Presence.track(member(), topic, "u#{i}", %{"n" => i})

    assert_receive %Broadcast{
      event: "presence_diff",
      payload: %{"joins" => joins, "leaves" => leaves}
    }

    assert Map.keys(joins) |> Enum.sort() == ["u1", "u2", "u3", "u4", "u5"]
    assert leaves == %{}
    refute_receive %Broadcast{event: "presence_diff"}, 100
    assert map_size(Tandem.Presence.list(topic)) == 5
  end

  test "a join and a leave within one window are both in the diff" do
    topic = topic()
    Tandem.PubSub.subscribe(topic)
    pid = member()

    {:ok, ref} = Tandem.Presence.track(pid, topic, "ann", %{})
    :ok = Tandem.Presence.untrack(pid, topic)

    assert_receive %Broadcast{
      event: "presence_diff",
      payload: %{
        "joins" => %{"ann" => %{"metas" => [%{"phx_ref" => ^ref}]}},
        "leaves" => %{"ann" => %{"metas" => [%{"phx_ref" => ^ref}]}}
      }
    }

    assert Tandem.Presence.list(topic) == %{}
  end

  test "a member that dies is announced as a leave" do
    topic = topic()
    pid = member()
    {:ok, _} = Tandem.Presence.track(pid, topic, "bo", %{})
    Tandem.PubSub.subscribe(topic)
    Process.sleep(50)
    send(pid, :stop)

    assert_receive %Broadcast{
      event: "presence_diff",
      payload: %{"joins" => joins, "leaves" => %{"bo" => %{"metas" => [_]}}}
    }

    assert joins == %{}
  end

  test "a member tracked on two topics that dies leaves both; an untracked one is forgotten" do
    [t1, t2, t3] = [topic(), topic(), topic()]
    pid = member()
    for t <- [t1, t2, t3], do: {:ok, _} = Tandem.Presence.track(pid, t, "cy", %{})
    :ok = Tandem.Presence.untrack(pid, t3)
    Process.sleep(50)
    for t <- [t1, t2, t3], do: Tandem.PubSub.subscribe(t)
    send(pid, :stop)

    for t <- [t1, t2] do
      assert_receive %Broadcast{
        topic: ^t,
        event: "presence_diff",
        payload: %{"leaves" => %{"cy" => _}}
      }
    end

    refute_receive %Broadcast{topic: ^t3}, 100
    assert Tandem.Presence.list(t1) == %{} and Tandem.Presence.list(t2) == %{}
  end
end
