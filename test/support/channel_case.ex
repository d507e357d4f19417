defmodule TandemWeb.ChannelCase do
  @moduledoc """
  Channel tests without a network, in the spirit of `Phoenix.ChannelTest`:
  the test process plays the connection. `connect/1` builds a socket for a
  user's claims, `subscribe_and_join/4` subscribes the test to the topic and
  joins a real channel process, `push/3` sends it a client message, and
  `assert_reply/3`, `assert_push/2`, `assert_broadcast/2` match what comes
  back (already-encoded JSON payloads are decoded for matching).
  """
  use ExUnit.CaseTemplate

  alias TandemWeb.{Message, Socket}

  defmodule Serializer do
    @moduledoc "Hands messages to the test process as structs, payloads decoded."
    @behaviour TandemWeb.Serializer

    @impl true
    def decode!(_data, _opcode), do: raise("not used in channel tests")

    @impl true
    def encode!(message), do: {:test, %{message | payload: decode(message.payload)}}

    @impl true
    def fastlane!(broadcast), do: {:test, %{broadcast | payload: decode(broadcast.payload)}}

    defp decode(payload), do: TandemWeb.ChannelCase.decode_payload(payload)
  end

  using do
    quote do
      import TandemWeb.ChannelCase
    end
  end

  @doc "A socket for a user: `connect(\"ana\", projects: %{\"*\" => \"editor\"})`."
  def connect(user, opts \\ []) do
    claims = %{
      "sub" => user,
      "name" => Keyword.get(opts, :name, user),
      "projects" => Keyword.get(opts, :projects, %{"*" => "editor"})
    }

    %Socket{serializer: Serializer, transport_pid: self(), assigns: %{claims: claims}}
  end

  @doc "Subscribes the test to `topic` and joins `channel` on it."
  def subscribe_and_join(%Socket{} = socket, channel, topic, payload \\ %{}) do
    unless topic in Process.get(:channel_case_topics, []) do
      :ok = Tandem.PubSub.subscribe(topic)
      Process.put(:channel_case_topics, [topic | Process.get(:channel_case_topics, [])])
    end

    join_ref = "#{System.unique_integer([:positive])}"
    socket = %{socket | topic: topic, channel: channel, join_ref: join_ref}

    case TandemWeb.Channel.Server.join(socket, payload, join_ref) do
      {:ok, reply, pid} -> {:ok, decode(reply), %{socket | channel_pid: pid}}
      {:error, reply} -> {:error, decode(reply)}
    end
  end

  @doc "Sends a client message to the channel; returns its ref for `assert_reply/3`."
  def push(%Socket{channel_pid: pid} = socket, event, payload \\ %{}) do
    ref = "#{System.unique_integer([:positive])}"

    send(pid, %Message{
      topic: socket.topic,
      event: event,
      payload: payload,
      ref: ref,
      join_ref: socket.join_ref
    })

    ref
  end

  defp decode(payload), do: decode_payload(payload)

  @doc "Asserts the reply to the message `ref` with `status` and a payload matching `pattern`."
  defmacro assert_reply(ref, status, pattern \\ Macro.escape(%{}), timeout \\ 1_000) do
    quote do
      ref = unquote(ref)
      status = unquote(status)

      assert_receive {:socket_push,
                      {:test,
                       %TandemWeb.Reply{ref: ^ref, status: ^status, payload: unquote(pattern)}}},
                     unquote(timeout)
    end
  end

  @doc "Asserts a push of `event` to this client with a payload matching `pattern`."
  defmacro assert_push(event, pattern, timeout \\ 1_000) do
    quote do
      event = unquote(event)

      assert_receive {:socket_push, {:test, %{event: ^event, payload: unquote(pattern)}}},
                     unquote(timeout)
    end
  end

  @doc "Asserts a broadcast of `event` on a subscribed topic with a payload matching `pattern`."
  defmacro assert_broadcast(event, pattern, timeout \\ 1_000) do
    quote do
      event = unquote(event)

      assert_receive %Tandem.PubSub.Broadcast{event: ^event, payload: payload}, unquote(timeout)
      assert unquote(pattern) = TandemWeb.ChannelCase.decode_payload(payload)
    end
  end

  @doc false
  def decode_payload({:json, iodata}),
    do: TandemWeb.Serializer.decode_json!(IO.iodata_to_binary(iodata))

  def decode_payload(payload), do: payload
end
