defmodule Tandem.Application do
  @moduledoc """
  The OTP application: rooms and storage first, then the transport, so that
  no client can connect before the rooms it would talk to can start.
  """
  use Application

  @impl true
  def start(_type, _args) do
    children = []
    Supervisor.start_link(children, strategy: :one_for_one, name: Tandem.Supervisor)
  end
end
