defmodule TandemWeb.Serializers.V1 do
  @moduledoc """
  The `vsn=1.0.0` serializer: JSON objects
  `{"topic","event","payload","ref","join_ref"}`, text frames only (binary
  payloads are not part of V1 and are refused).
  """
  @behaviour TandemWeb.Serializer

  import TandemWeb.Serializer, only: [json: 1, decode_json!: 1, reply_payload: 1]
  alias TandemWeb.{Message, Reply}
  alias Tandem.PubSub.Broadcast

  @impl true
  def decode!(text, :text) do
    case decode_json!(text) do
      %{"topic" => topic, "event" => event} = map when is_binary(topic) and is_binary(event) ->
        %Message{
          topic: topic,
          event: event,
          payload: Map.get(map, "payload"),
          ref: Map.get(map, "ref"),
          join_ref: Map.get(map, "join_ref")
        }

      _ ->
        raise ArgumentError, "expected an object with topic and event"
    end
  end

  def decode!(_, :binary), do: raise(ArgumentError, "binary frames need vsn=2.0.0")

  @impl true
  def encode!(%Reply{} = reply) do
    payload = reply_payload(reply)
    {:text, object(reply.topic, "phx_reply", payload, reply.ref, reply.join_ref)}
  end

  def encode!(%Message{} = msg),
    do: {:text, object(msg.topic, msg.event, json(msg.payload), msg.ref, msg.join_ref)}

  @impl true
  def fastlane!(%Broadcast{} = b),
    do: {:text, object(b.topic, b.event, json(b.payload), nil, nil)}

  defp object(topic, event, payload_json, ref, join_ref) do
    [
      "{\"topic\":",
      json(topic),
      ",\"event\":",
      json(event),
      ",\"payload\":",
      payload_json,
      ",\"ref\":",
      json(ref),
      ",\"join_ref\":",
      json(join_ref),
      "}"
    ]
  end
end
