defmodule TandemWeb.ProjectChannel do
  @moduledoc """
  `project:ID`: edits. A thin adapter between the wire and `Tandem.Room`:
  it checks the role and the protocol version, subscribes the connection
  to the project's batches (fastlane, before joining the room so nothing is
  missed), and passes payloads to the room as the client sent them —
  JSON text is re-encoded once by jiffy, binary frames go through as
  MessagePack — so diffs are decoded only in Rust.

  If the room crashes the channel stops with an error, the client gets
  `phx_error`, rejoins with its `last_seq` and catches up.
  """
  use TandemWeb.Channel

  alias TandemWeb.Socket

  @impl true
  def join("project:" <> project_id, payload, socket) do
    with {:ok, role} <- authorize(socket, project_id),
         :ok <- check_protocol(payload),
         {:ok, client_id, last_seq} <- identity(payload),
         :ok <-
           Tandem.PubSub.subscribe(socket.topic,
             fastlane: {socket.transport_pid, socket.serializer}
           ),
         {:ok, reply, room} <-
           Tandem.Room.join(project_id, %{client_id: client_id, last_seq: last_seq}) do
      Process.monitor(room)

      socket =
        socket
        |> Socket.assign(:project_id, project_id)
        |> Socket.assign(:role, role)
        |> Socket.assign(:client_id, client_id)

      {:ok, reply, socket}
    end
  end

  @impl true
  def handle_in("diffs", _payload, %Socket{assigns: %{role: "viewer"}} = socket),
    do: {:reply, {:error, %{"reason" => "forbidden"}}, socket}

  def handle_in("diffs", payload, socket) do
    case encoded(payload) do
      {:ok, batch} ->
        %{project_id: project, client_id: client_id, claims: claims} = socket.assigns
        meta = %{client_id: client_id, user_id: claims["sub"]}
        {:reply, Tandem.Room.submit(project, meta, batch), socket}

      :error ->
        {:reply, {:error, %{"reason" => "malformed", "message" => "expected {batch_id, diffs}"}},
         socket}
    end
  end

  def handle_in("sync", %{"since" => since}, socket) when is_integer(since) or is_nil(since),
    do: {:reply, Tandem.Room.sync(socket.assigns.project_id, since), socket}

  def handle_in("verify", %{"seq" => seq, "checksum" => checksum}, socket)
      when is_integer(seq) and seq >= 0 and is_binary(checksum) do
    {:ok, {:json, reply}} = result = Tandem.Room.verify(socket.assigns.project_id, seq, checksum)

    unless String.starts_with?(reply, ~s({"ok":true})) do
      Tandem.Metrics.inc(:convergence_mismatches)
    end

    {:reply, result, socket}
  end

  def handle_in(event, _payload, socket) when event in ["sync", "verify"],
    do: {:reply, {:error, %{"reason" => "malformed"}}, socket}

  def handle_in(_event, _payload, socket),
    do: {:reply, {:error, %{"reason" => "unknown_event"}}, socket}

  @impl true
  def handle_info({:DOWN, _ref, :process, _room, reason}, socket),
    do: {:stop, {:room_down, reason}, socket}

  def handle_info(_message, socket), do: {:noreply, socket}

  @impl true
  def terminate(_reason, socket) do
    if project = socket.assigns[:project_id], do: Tandem.Room.leave(project)
    :ok
  end

  defp authorize(socket, project_id) do
    case Tandem.Token.role(socket.assigns.claims, project_id) do
      nil -> {:error, %{"reason" => "forbidden"}}
      role -> {:ok, role}
    end
  end

  defp check_protocol(%{"protocol" => version}) when is_integer(version) do
    {min, max} = Tandem.Native.protocol_range()

    if version in min..max,
      do: :ok,
      else: {:error, %{"reason" => "unsupported_protocol", "supported" => [min, max]}}
  end

  defp check_protocol(_), do: {:error, %{"reason" => "unsupported_protocol"}}

  defp identity(%{"client_id" => client_id} = payload)
       when is_binary(client_id) and byte_size(client_id) in 1..128 do
    case Map.get(payload, "last_seq") do
      seq when is_nil(seq) or (is_integer(seq) and seq >= 0) -> {:ok, client_id, seq}
      _ -> {:error, %{"reason" => "invalid_last_seq"}}
    end
  end

  defp identity(_), do: {:error, %{"reason" => "invalid_client_id"}}

  defp encoded({:binary, bytes}), do: {:ok, {:msgpack, bytes}}

  defp encoded(%{"batch_id" => _, "diffs" => diffs} = payload) when is_list(diffs),
    do: {:ok, {:json, IO.iodata_to_binary(:jiffy.encode(payload, [:use_nil]))}}

  defp encoded(_), do: :error
end
