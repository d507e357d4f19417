defmodule TandemWeb.Serializers.V2 do
  @moduledoc """
  The `vsn=2.0.0` serializer, as phoenix.js speaks it: text frames are JSON
  arrays `[join_ref, ref, topic, event, payload]`; binary frames carry a
  binary payload behind a small header (push 0 from clients, reply 1 and
  broadcast 2 from the server; see PROTOCOL.md). Already-encoded JSON
  payloads are spliced into the array without being decoded.
  """
  @behaviour TandemWeb.Serializer

  import TandemWeb.Serializer, only: [json: 1, decode_json!: 1, reply_payload: 1]
  alias TandemWeb.{Message, Reply}
  alias Tandem.PubSub.Broadcast

  @push 0
  @reply 1
  @broadcast 2

  @impl true
  def decode!(text, :text) do
    case decode_json!(text) do
      [join_ref, ref, topic, event, payload] when is_binary(topic) and is_binary(event) ->
        %Message{join_ref: join_ref, ref: ref, topic: topic, event: event, payload: payload}

      _ ->
        raise ArgumentError, "expected [join_ref, ref, topic, event, payload]"
    end
  end

  def decode!(
        <<@push, jr_size, ref_size, topic_size, event_size, join_ref::binary-size(jr_size),
          ref::binary-size(ref_size), topic::binary-size(topic_size),
          event::binary-size(event_size), payload::binary>>,
        :binary
      ) do
    %Message{
      join_ref: join_ref,
      ref: ref,
      topic: topic,
      event: event,
      payload: {:binary, payload}
    }
  end

  def decode!(_, :binary), do: raise(ArgumentError, "malformed binary frame")

  @impl true
  def encode!(%Reply{payload: {:binary, data}} = reply) do
    status = to_string(reply.status)
    jr = reply.join_ref || ""
    ref = reply.ref || ""

    {:binary,
     [
       <<@reply, byte_size(jr), byte_size(ref), byte_size(reply.topic), byte_size(status)>>,
       jr,
       ref,
       reply.topic,
       status,
       data
     ]}
  end

  def encode!(%Reply{} = reply) do
    payload = reply_payload(reply)
    {:text, array(reply.join_ref, reply.ref, reply.topic, "phx_reply", payload)}
  end

  def encode!(%Message{payload: {:binary, data}} = msg) do
    jr = msg.join_ref || ""

    {:binary,
     [
       <<@push, byte_size(jr), byte_size(msg.topic), byte_size(msg.event)>>,
       jr,
       msg.topic,
       msg.event,
       data
     ]}
  end

  def encode!(%Message{} = msg),
    do: {:text, array(msg.join_ref, msg.ref, msg.topic, msg.event, json(msg.payload))}

  @impl true
  def fastlane!(%Broadcast{payload: {:binary, data}} = b),
    do:
      {:binary, [<<@broadcast, byte_size(b.topic), byte_size(b.event)>>, b.topic, b.event, data]}

  def fastlane!(%Broadcast{} = b), do: {:text, array(nil, nil, b.topic, b.event, json(b.payload))}

  defp array(join_ref, ref, topic, event, payload_json) do
    [
      "[",
      json(join_ref),
      ",",
      json(ref),
      ",",
      json(topic),
      ",",
      json(event),
      ",",
      payload_json,
      "]"
    ]
  end
end
