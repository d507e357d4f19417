defmodule TandemWeb.Socket do
  @moduledoc """
  What a channel knows about its connection (mirrors `Phoenix.Socket`): the
  topic it joined, the join reference, the connection process to push
  through and its serializer, and the channel's own `assigns`.
  """
  defstruct topic: nil,
            join_ref: nil,
            transport_pid: nil,
            serializer: nil,
            channel: nil,
            channel_pid: nil,
            assigns: %{}

  @type t :: %__MODULE__{
          topic: String.t() | nil,
          join_ref: String.t() | nil,
          transport_pid: pid() | nil,
          serializer: module() | nil,
          channel: module() | nil,
          channel_pid: pid() | nil,
          assigns: map()
        }

  @doc "Stores a value in the socket's assigns."
  @spec assign(t(), atom(), term()) :: t()
  def assign(%__MODULE__{} = socket, key, value),
    do: %{socket | assigns: Map.put(socket.assigns, key, value)}
end
