defmodule Tandem.PubSubTest do
  @moduledoc """
  `Tandem.PubSub` dispatch: plain subscribers get `%Broadcast{}`, fastlane
  sockets get a ready frame encoded once per serializer per broadcast (the
  registry is partitioned, so subscribers sit in several partitions), and
  `broadcast_from` skips its sender.
  """
  use ExUnit.Case, async: true

  alias Tandem.PubSub
  alias Tandem.PubSub.Broadcast

  defmodule CountingSerializer do
    @moduledoc false
    # Counts encodings in the test process (its pid travels in the payload).
    def fastlane!(%Broadcast{payload: %{"test" => test}} = b) do
      send(test, {:encoded, __MODULE__})
      {:text, ["[", inspect(b.event), "]"]}
    end
  end

  defmodule OtherSerializer do
    @moduledoc false
    def fastlane!(%Broadcast{payload: %{"test" => test}}) do
      send(test, {:encoded, __MODULE__})
      {:binary, [<<2>>, "frame"]}
    end
  end

  defp subscriber(topic, fastlane) do
    test = self()

    spawn_link(fn ->
      PubSub.subscribe(topic, fastlane: fastlane && {test, fastlane})
      send(test, :subscribed)
      receive(do: (:stop -> :ok))
    end)
    |> tap(fn _ -> assert_receive :subscribed end)
  end

  test "one encoding per serializer, a flattened frame to every fastlane socket, plain broadcasts to the rest" do
    topic = "t:#{System.unique_integer([:positive])}"
    for _ <- 1..20, do: subscriber(topic, CountingSerializer)
    for _ <- 1..5, do: subscriber(topic, OtherSerializer)
    PubSub.subscribe(topic)

    PubSub.broadcast(topic, "ping", %{"test" => self()})

    assert_receive {:encoded, CountingSerializer}
    assert_receive {:encoded, OtherSerializer}
    refute_receive {:encoded, _}, 50

    text = for _ <- 1..20, do: assert_receive({:socket_push, {:text, _}}) |> elem(1) |> elem(1)
    assert Enum.uniq(text) == [~s(["ping"])]
    binary = for _ <- 1..5, do: assert_receive({:socket_push, {:binary, _}}) |> elem(1) |> elem(1)
    assert Enum.uniq(binary) == [<<2, "frame">>]
    assert_receive %Broadcast{topic: ^topic, event: "ping"}
    refute_receive {:socket_push, _}, 50
  end

  test "broadcast_from skips the sender" do
    topic = "t:#{System.unique_integer([:positive])}"
    PubSub.subscribe(topic)
    other = subscriber(topic, CountingSerializer)

    PubSub.broadcast_from(self(), topic, "ping", %{"test" => self()})

    assert_receive {:socket_push, {:text, _}}
    refute_receive %Broadcast{}, 50
    send(other, :stop)
  end
end
