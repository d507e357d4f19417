defmodule TandemWeb.ChannelsTest do
  use TandemWeb.ChannelCase, async: true

  alias TandemWeb.{CursorChannel, PresenceChannel, ProjectChannel}

  defp project, do: "ch-#{System.unique_integer([:positive])}"

  defp client,
    do: %{
      "protocol" => 1,
      "client_id" => "c-#{System.unique_integer([:positive])}",
      "last_seq" => nil
    }

  defp add(id), do: %{"op" => "add", "id" => id, "attrs" => %{"z" => "80"}}

  describe "project:ID" do
    test "join answers with the state; diffs are acknowledged and broadcast" do
      topic = "project:" <> project()

      {:ok, %{"seq" => 0, "snapshot" => %{}}, socket} =
        subscribe_and_join(connect("ana"), ProjectChannel, topic, client())

      ref = push(socket, "diffs", %{"batch_id" => 1, "diffs" => [add("a"), add("b")]})
      assert_reply(ref, :ok, %{"seq" => 1, "amended" => [1], "dropped" => []})
      assert_broadcast("batch", %{"seq" => 1, "user_id" => "ana", "diffs" => [_, %{"id" => "b"}]})
    end

    test "join refuses other protocols, bad client ids and projects the token does not grant" do
      topic = "project:" <> project()
      socket = connect("ana")

      assert {:error, %{"reason" => "unsupported_protocol", "supported" => [1, 1]}} =
               subscribe_and_join(socket, ProjectChannel, topic, %{client() | "protocol" => 2})

      assert {:error, %{"reason" => "invalid_client_id"}} =
               subscribe_and_join(socket, ProjectChannel, topic, %{client() | "client_id" => ""})

      assert {:error, %{"reason" => "invalid_last_seq"}} =
               subscribe_and_join(socket, ProjectChannel, topic, %{client() | "last_seq" => -1})

      other = connect("eve", projects: %{"elsewhere" => "editor"})

      assert {:error, %{"reason" => "forbidden"}} =
               subscribe_and_join(other, ProjectChannel, topic, client())
    end

    test "viewers read but their diffs are forbidden" do
      id = project()
      viewer = connect("val", projects: %{id => "viewer"})
      {:ok, _, socket} = subscribe_and_join(viewer, ProjectChannel, "project:" <> id, client())
      ref = push(socket, "diffs", %{"batch_id" => 1, "diffs" => [add("a")]})
      assert_reply(ref, :error, %{"reason" => "forbidden"})
    end

    test "sync and verify; unknown events and malformed payloads are errors" do
      {:ok, _, socket} =
        subscribe_and_join(connect("ana"), ProjectChannel, "project:" <> project(), client())

      ref = push(socket, "diffs", %{"batch_id" => 1, "diffs" => [add("a")]})
      assert_reply(ref, :ok, %{"seq" => 1, "checksum" => checksum})

      ref = push(socket, "sync", %{"since" => 0})
      assert_reply(ref, :ok, %{"seq" => 1, "batches" => [%{"seq" => 1}]})

      ref = push(socket, "verify", %{"seq" => 1, "checksum" => checksum})
      assert_reply(ref, :ok, %{"ok" => true})

      before = Tandem.Metrics.value(:convergence_mismatches)
      ref = push(socket, "verify", %{"seq" => 1, "checksum" => "0000000000000000"})
      assert_reply(ref, :ok, %{"ok" => false, "snapshot" => %{"a" => _}})
      assert Tandem.Metrics.value(:convergence_mismatches) == before + 1

      ref = push(socket, "diffs", %{"no" => "batch"})
      assert_reply(ref, :error, %{"reason" => "malformed"})
      ref = push(socket, "verify", %{"seq" => "one"})
      assert_reply(ref, :error, %{"reason" => "malformed"})
      ref = push(socket, "dance")
      assert_reply(ref, :error, %{"reason" => "unknown_event"})
    end
  end

  describe "presence:ID" do
    test "a user with two tabs is one key with two metas; updates and leaves are diffs" do
      topic = "presence:" <> project()

      {:ok, _, tab1} =
        subscribe_and_join(connect("pia", name: "Pia"), PresenceChannel, topic, %{
          "client_id" => "t1"
        })

      assert_push("presence_state", %{})

      assert_broadcast("presence_diff", %{
        "joins" => %{"pia" => %{"metas" => [%{"client_id" => "t1"}]}}
      })

      {:ok, _, tab2} =
        subscribe_and_join(connect("pia", name: "Pia"), PresenceChannel, topic, %{
          "client_id" => "t2"
        })

      assert_push("presence_state", %{"pia" => %{"metas" => [%{"client_id" => "t1"}]}})
      assert_broadcast("presence_diff", %{"joins" => %{"pia" => _}})
      assert %{"pia" => %{"metas" => [_, _]}} = Tandem.Presence.list(topic)

      ref = push(tab1, "update", %{"selection" => ["a", "b"]})
      assert_reply(ref, :ok)

      assert_broadcast("presence_diff", %{
        "joins" => %{"pia" => %{"metas" => [%{"selection" => ["a", "b"], "name" => "Pia"}]}}
      })

      ref = push(tab1, "update", %{"selection" => "nope"})
      assert_reply(ref, :error, %{"reason" => "malformed"})

      Process.exit(tab2.channel_pid, :kill)

      assert_broadcast("presence_diff", %{
        "leaves" => %{"pia" => %{"metas" => [%{"client_id" => "t2"}]}}
      })

      assert %{"pia" => %{"metas" => [_]}} = Tandem.Presence.list(topic)
    end
  end

  # Every `moved` broadcast up to the one carrying the last move's `x`, or
  # what came before a generous deadline if that one never does.
  defp collect_moved(last_x, acc) do
    receive do
      %Tandem.PubSub.Broadcast{event: "moved", payload: %{"x" => ^last_x} = p} ->
        Enum.reverse([p | acc])

      %Tandem.PubSub.Broadcast{event: "moved", payload: p} ->
        collect_moved(last_x, [p | acc])
    after
      5_000 -> Enum.reverse(acc)
    end
  end

  describe "cursors:ID" do
    test "moves are forwarded to others, coalesced, latest wins" do
      topic = "cursors:" <> project()

      {:ok, _, socket} =
        subscribe_and_join(connect("cal"), CursorChannel, topic, %{"client_id" => "k"})

      for n <- 1..40, do: push(socket, "move", %{"x" => n, "y" => -n})
      moved = collect_moved(40, [])
      assert length(moved) in 1..10
      assert List.last(moved) == %{"user_id" => "cal", "client_id" => "k", "x" => 40, "y" => -40}
      refute_receive %Tandem.PubSub.Broadcast{event: "moved"}, 100

      ref = push(socket, "move", %{"x" => "far"})
      assert_reply(ref, :error, %{"reason" => "malformed"})
    end
  end
end
