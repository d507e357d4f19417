defmodule TandemWeb.Channel.Server do
  @moduledoc """
  The process behind one joined channel: runs the channel module's
  callbacks, answers the client's messages, and stops with its connection
  (it monitors the connection process; the connection monitors it back and
  tells the client `phx_error` when a channel crashes).
  """
  use GenServer, restart: :temporary

  alias TandemWeb.{Channel, Message, Socket}

  @doc """
  Starts a channel and runs `join/3` in it. Returns `{:ok, reply, pid}` or
  `{:error, reply}`; the caller (the connection) waits, so joins are ordered.
  """
  @spec join(Socket.t(), term(), String.t() | nil) :: {:ok, term(), pid()} | {:error, term()}
  def join(%Socket{} = socket, payload, ref) do
    # Started empty, joined by a call: the supervisor is never blocked by a
    # slow join (a room loading from storage).
    {:ok, pid} = DynamicSupervisor.start_child(TandemWeb.ChannelSupervisor, {__MODULE__, self()})

    try do
      GenServer.call(pid, {:join, socket, payload, ref}, :infinity)
    catch
      :exit, reason -> {:error, %{"reason" => "join crashed", "detail" => inspect(reason)}}
    end
  end

  # Idle channels hibernate, like their connections: most of a crowd is idle.
  def start_link(transport),
    do: GenServer.start_link(__MODULE__, transport, hibernate_after: 1_000)

  @impl true
  def init(transport) do
    Process.monitor(transport)
    {:ok, {:unjoined, transport}}
  end

  @impl true
  def handle_call({:join, socket, payload, ref}, _from, {:unjoined, transport}) do
    Process.put(:tandem_channel_ref, ref)
    socket = %{socket | transport_pid: transport}

    case socket.channel.join(socket.topic, payload, socket) do
      {:ok, socket} -> {:reply, {:ok, %{}, self()}, socket}
      {:ok, reply, socket} -> {:reply, {:ok, reply, self()}, socket}
      {:error, reply} -> {:stop, :normal, {:error, reply}, :refused}
    end
  end

  @impl true
  def handle_info(%Message{event: event, payload: payload, ref: ref}, socket) do
    Process.put(:tandem_channel_ref, ref)

    case socket.channel.handle_in(event, payload, socket) do
      {:noreply, socket} -> {:noreply, socket}
      {:reply, reply, socket} -> reply_and(socket, ref, reply, {:noreply, socket})
      {:stop, reason, socket} -> {:stop, reason, socket}
      {:stop, reason, reply, socket} -> reply_and(socket, ref, reply, {:stop, reason, socket})
    end
  end

  def handle_info({:DOWN, _, :process, pid, _}, %Socket{transport_pid: pid} = socket),
    do: {:stop, {:shutdown, :closed}, socket}

  def handle_info({:DOWN, _, :process, pid, _}, {:unjoined, pid} = state),
    do: {:stop, {:shutdown, :closed}, state}

  def handle_info(message, socket) do
    case socket.channel.handle_info(message, socket) do
      {:noreply, socket} -> {:noreply, socket}
      {:stop, reason, socket} -> {:stop, reason, socket}
    end
  end

  @impl true
  def terminate(reason, %Socket{} = socket), do: socket.channel.terminate(reason, socket)
  def terminate(_reason, _state), do: :ok

  defp reply_and(socket, ref, reply, result) do
    Channel.reply(
      {socket.transport_pid, socket.serializer, socket.topic, ref, socket.join_ref},
      reply
    )

    result
  end
end
