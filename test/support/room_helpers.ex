defmodule Tandem.RoomHelpers do
  @moduledoc "Builders for room tests: unique project ids and diff payloads."

  @doc "A project id no other test uses."
  def unique_project(prefix \\ "p"), do: "#{prefix}-#{System.unique_integer([:positive])}"

  @doc "The JSON `\"diffs\"` payload of a batch."
  def batch(batch_id, diffs),
    do: {:json, IO.iodata_to_binary(:jiffy.encode(%{batch_id: batch_id, diffs: diffs}))}

  def add(id, attrs \\ %{}), do: %{op: "add", id: id, attrs: attrs}
  def set(id, key, value), do: %{op: "set", id: id, key: key, value: value}
  def remove(id), do: %{op: "remove", id: id}

  @doc "Decodes a `{:json, bin}` reply."
  def decode({:json, bin}), do: :jiffy.decode(bin, [:return_maps])

  @doc "Submits and decodes: `{:ok, ack_map}` or `{:error, reason_map}`."
  def submit!(project, client_id, batch_id, diffs, user_id \\ "u1") do
    {status, reply} =
      Tandem.Room.submit(
        project,
        %{client_id: client_id, user_id: user_id},
        batch(batch_id, diffs)
      )

    {status, decode(reply)}
  end
end
