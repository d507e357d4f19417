defmodule Tandem.Application do
  @moduledoc """
  The OTP application: storage, pub/sub and rooms first, then the transport,
  so that no client can connect before the rooms it would talk to can start,
  and so that on shutdown the transport stops first and rooms can still
  flush and snapshot.
  """
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      Tandem.Metrics,
      Tandem.Store.impl(),
      Tandem.PubSub,
      Tandem.Presence,
      Tandem.Rooms,
      TandemWeb.Endpoint
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: Tandem.Supervisor)
  end
end
