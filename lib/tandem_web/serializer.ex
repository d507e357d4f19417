defmodule TandemWeb.Serializer do
  @moduledoc """
  Turns frames into messages and back (mirrors `Phoenix.Socket.Serializer`).
  A socket picks its serializer from the `vsn` query parameter. Encoding
  returns `{:text | :binary, iodata}`: the WebSocket opcode and the frame.
  """
  alias TandemWeb.{Message, Reply}
  alias Tandem.PubSub.Broadcast

  @type frame :: {:text | :binary, iodata()}

  @doc "Decodes a client frame; raises on malformed input (the socket rescues)."
  @callback decode!(binary(), :text | :binary) :: Message.t()
  @doc "Encodes a reply or a push to one client."
  @callback encode!(Reply.t() | Message.t()) :: frame()
  @doc "Encodes a broadcast once for every socket using this serializer."
  @callback fastlane!(Broadcast.t()) :: frame()

  @doc "The serializer for a `vsn` query parameter."
  @spec for_vsn(String.t() | nil) :: {:ok, module()} | :error
  def for_vsn("2." <> _), do: {:ok, TandemWeb.Serializers.V2}
  def for_vsn("1." <> _), do: {:ok, TandemWeb.Serializers.V1}
  def for_vsn(nil), do: {:ok, TandemWeb.Serializers.V1}
  def for_vsn(_), do: :error

  @doc "Encodes a payload as JSON iodata, splicing `{:json, iodata}` as it is."
  @spec json(term()) :: iodata()
  def json({:json, iodata}), do: iodata
  def json(term), do: :jiffy.encode(term, [:use_nil])

  @doc "The JSON payload of a `phx_reply`: `{\"status\":S,\"response\":R}`."
  @spec reply_payload(TandemWeb.Reply.t()) :: iodata()
  def reply_payload(%TandemWeb.Reply{status: status, payload: payload}),
    do: ["{\"status\":\"", to_string(status), "\",\"response\":", json(payload), "}"]

  @doc "Decodes JSON to maps; raises `ArgumentError` on malformed input."
  @spec decode_json!(binary()) :: term()
  def decode_json!(bin) do
    :jiffy.decode(bin, [:return_maps, {:null_term, nil}])
  catch
    :throw, reason -> raise ArgumentError, "malformed JSON: #{inspect(reason)}"
    :error, reason -> raise ArgumentError, "malformed JSON: #{inspect(reason)}"
  end
end
