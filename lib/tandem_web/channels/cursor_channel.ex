defmodule TandemWeb.CursorChannel do
  @moduledoc """
  `cursors:ID`: pointer positions, never stored. A client may send `move`
  as often as it likes; the server forwards at most one position per
  `@interval_ms` per client (the latest one wins) to everyone else as
  `moved`, so a fast mouse cannot flood a room.
  """
  use TandemWeb.Channel

  alias TandemWeb.Socket

  @interval_ms 33

  @impl true
  def join("cursors:" <> project_id, payload, socket) do
    if Tandem.Token.role(socket.assigns.claims, project_id) do
      Tandem.PubSub.subscribe(socket.topic, fastlane: {socket.transport_pid, socket.serializer})
      client_id = if is_map(payload), do: payload["client_id"]

      socket =
        socket
        |> Socket.assign(:client_id, if(is_binary(client_id), do: client_id))
        |> Socket.assign(:pending, nil)
        # Monotonic time can be negative: "never sent" must not be 0.
        |> Socket.assign(:last_sent, nil)

      {:ok, socket}
    else
      {:error, %{"reason" => "forbidden"}}
    end
  end

  @impl true
  def handle_in("move", %{"x" => x, "y" => y}, socket) when is_number(x) and is_number(y) do
    socket = Socket.assign(socket, :pending, {x, y})
    wait = if sent = socket.assigns.last_sent, do: sent + @interval_ms - now(), else: 0

    cond do
      wait <= 0 -> {:noreply, flush(socket)}
      socket.assigns[:timer] -> {:noreply, socket}
      true -> {:noreply, Socket.assign(socket, :timer, Process.send_after(self(), :flush, wait))}
    end
  end

  def handle_in("move", _payload, socket),
    do:
      {:reply, {:error, %{"reason" => "malformed", "message" => "expected {x, y} numbers"}},
       socket}

  def handle_in(_event, _payload, socket),
    do: {:reply, {:error, %{"reason" => "unknown_event"}}, socket}

  @impl true
  def handle_info(:flush, socket), do: {:noreply, socket |> Socket.assign(:timer, nil) |> flush()}
  def handle_info(_message, socket), do: {:noreply, socket}

  defp flush(%Socket{assigns: %{pending: nil}} = socket), do: socket

  defp flush(%Socket{assigns: %{pending: {x, y}}} = socket) do
    broadcast_from(socket, "moved", %{
      "user_id" => socket.assigns.claims["sub"],
      "client_id" => socket.assigns.client_id,
      "x" => x,
      "y" => y
    })

    socket |> Socket.assign(:pending, nil) |> Socket.assign(:last_sent, now())
  end

  defp now, do: System.monotonic_time(:millisecond)
end
