defmodule TandemWeb.Message do
  @moduledoc """
  A Phoenix Channels message as the transport sees it (mirrors
  `Phoenix.Socket.Message`): what a client sends, and what the server pushes.
  `payload` follows the payload contract of ARCHITECTURE.md: a term, an
  already-encoded `{:json, iodata}`, or `{:binary, binary}`.
  """
  defstruct [:topic, :event, :payload, :ref, :join_ref]

  @type t :: %__MODULE__{
          topic: String.t(),
          event: String.t(),
          payload: term(),
          ref: String.t() | nil,
          join_ref: String.t() | nil
        }
end

defmodule TandemWeb.Reply do
  @moduledoc "A reply to a client's message (mirrors `Phoenix.Socket.Reply`)."
  defstruct [:topic, :status, :payload, :ref, :join_ref]

  @type t :: %__MODULE__{
          topic: String.t(),
          status: :ok | :error | String.t(),
          payload: term(),
          ref: String.t() | nil,
          join_ref: String.t() | nil
        }
end
