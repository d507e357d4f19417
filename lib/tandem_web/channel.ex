defmodule TandemWeb.Channel do
  @moduledoc """
  The channel behaviour (mirrors `Phoenix.Channel`): one process per joined
  topic per connection runs these callbacks, so a slow or crashing channel
  never blocks its connection or the other channels on it.

      use TandemWeb.Channel

  brings in the behaviour, default `handle_info/2` and `terminate/2`, and
  `push/3`, `broadcast/3`, `broadcast_from/3`, `reply/2`, `socket_ref/1`.
  """
  alias TandemWeb.{Message, Reply, Socket}

  @type reply :: {:ok | :error, term()} | :ok | :error

  @callback join(topic :: String.t(), payload :: term(), Socket.t()) ::
              {:ok, Socket.t()} | {:ok, term(), Socket.t()} | {:error, term()}
  @callback handle_in(event :: String.t(), payload :: term(), Socket.t()) ::
              {:noreply, Socket.t()}
              | {:reply, reply(), Socket.t()}
              | {:stop, term(), Socket.t()}
              | {:stop, term(), reply(), Socket.t()}
  @callback handle_info(term(), Socket.t()) ::
              {:noreply, Socket.t()} | {:stop, term(), Socket.t()}
  @callback terminate(reason :: term(), Socket.t()) :: term()

  defmacro __using__(_opts) do
    quote do
      @behaviour TandemWeb.Channel
      import TandemWeb.Channel,
        only: [push: 3, broadcast: 3, broadcast_from: 3, reply: 2, socket_ref: 1]

      @impl true
      def handle_info(_message, socket), do: {:noreply, socket}

      @impl true
      def terminate(_reason, _socket), do: :ok

      defoverridable handle_info: 2, terminate: 2
    end
  end

  @doc "Sends `event` to this channel's client only."
  @spec push(Socket.t(), String.t(), term()) :: :ok
  def push(%Socket{} = socket, event, payload) do
    message = %Message{
      topic: socket.topic,
      event: event,
      payload: payload,
      join_ref: socket.join_ref
    }

    send(socket.transport_pid, {:socket_push, socket.serializer.encode!(message)})
    :ok
  end

  @doc "Sends `event` to every subscriber of the channel's topic."
  @spec broadcast(Socket.t(), String.t(), term()) :: :ok
  def broadcast(%Socket{topic: topic}, event, payload),
    do: Tandem.PubSub.broadcast(topic, event, payload)

  @doc "As `broadcast/3`, except to this channel's own client."
  @spec broadcast_from(Socket.t(), String.t(), term()) :: :ok
  def broadcast_from(%Socket{topic: topic}, event, payload),
    do: Tandem.PubSub.broadcast_from(self(), topic, event, payload)

  @doc "What `reply/2` needs to answer a message later, from any process."
  @spec socket_ref(Socket.t()) :: tuple()
  def socket_ref(%Socket{} = socket) do
    ref = Process.get(:tandem_channel_ref) || raise ArgumentError, "no message to reply to"
    {socket.transport_pid, socket.serializer, socket.topic, ref, socket.join_ref}
  end

  @doc "Answers a message asynchronously (after `{:noreply, socket}`)."
  @spec reply(tuple(), reply()) :: :ok
  def reply({transport_pid, serializer, topic, ref, join_ref}, reply) do
    {status, payload} = normalize(reply)

    frame =
      serializer.encode!(%Reply{
        topic: topic,
        status: status,
        payload: payload,
        ref: ref,
        join_ref: join_ref
      })

    send(transport_pid, {:socket_push, frame})
    :ok
  end

  @doc false
  def normalize({status, payload}) when status in [:ok, :error], do: {status, payload}
  def normalize(status) when status in [:ok, :error], do: {status, %{}}
end
