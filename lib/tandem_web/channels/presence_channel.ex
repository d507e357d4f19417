defmodule TandemWeb.PresenceChannel do
  @moduledoc """
  `presence:ID`: who is here. After joining, the client gets
  `presence_state` and then `presence_diff` broadcasts (see
  `Tandem.Presence`); `update` changes this connection's selection.
  """
  use TandemWeb.Channel

  alias TandemWeb.Socket

  @max_selection 1_000
  @palette ~w(#e6194b #3cb44b #4363d8 #f58231 #911eb4 #42d4f4 #f032e6 #469990 #9a6324 #800000)

  @impl true
  def join("presence:" <> project_id, payload, socket) do
    if Tandem.Token.role(socket.assigns.claims, project_id) do
      Tandem.PubSub.subscribe(socket.topic, fastlane: {socket.transport_pid, socket.serializer})
      send(self(), :after_join)
      client_id = if is_map(payload), do: payload["client_id"]
      {:ok, Socket.assign(socket, :client_id, if(is_binary(client_id), do: client_id))}
    else
      {:error, %{"reason" => "forbidden"}}
    end
  end

  @impl true
  def handle_info(:after_join, socket) do
    claims = socket.assigns.claims
    push(socket, "presence_state", Tandem.Presence.list(socket.topic))

    {:ok, _} =
      Tandem.Presence.track(self(), socket.topic, claims["sub"], %{
        "client_id" => socket.assigns.client_id,
        "name" => claims["name"],
        "color" => color(claims["sub"]),
        "online_at" => System.system_time(:second),
        "selection" => []
      })

    {:noreply, socket}
  end

  @impl true
  def handle_in("update", %{"selection" => ids}, socket)
      when is_list(ids) and length(ids) <= @max_selection do
    if Enum.all?(ids, &is_binary/1) do
      :ok = Tandem.Presence.update(self(), socket.topic, %{"selection" => ids})
      {:reply, :ok, socket}
    else
      {:reply, {:error, %{"reason" => "malformed", "message" => "selection is a list of ids"}},
       socket}
    end
  end

  def handle_in("update", _payload, socket),
    do:
      {:reply, {:error, %{"reason" => "malformed", "message" => "expected {selection: [ids]}"}},
       socket}

  def handle_in(_event, _payload, socket),
    do: {:reply, {:error, %{"reason" => "unknown_event"}}, socket}

  defp color(user_id), do: Enum.at(@palette, :erlang.phash2(user_id, length(@palette)))
end
