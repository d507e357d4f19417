defmodule Tandem.Native do
  @moduledoc """
  Stubs for the `tandem_nif` Rust library (native/tandem_nif), which runs each
  room's authoritative `tandem_core::Room`. The library is built by the cargo
  Mix compiler into `priv/native/` and loaded when this module loads.

  Every function takes and returns binaries where diffs are involved, so
  Elixir never decodes a diff: the client's payload goes in as it arrived
  (`:json` or `:msgpack` bytes), and replies come back as JSON ready to be
  spliced into a frame (`{:json, bin}` payloads), journal entries and
  snapshots as MessagePack.

  A room resource must be used by one process at a time (its `Tandem.Room`).
  Calls that can grow with the document run on dirty schedulers.
  """

  @on_load :load
  @compile {:autoload, true}

  @doc false
  def load do
    path = :filename.join(:code.priv_dir(:tandem), ~c"native/libtandem_nif")

    case :erlang.load_nif(path, 0) do
      :ok -> :ok
      {:error, {:reload, _}} -> :ok
      {:error, reason} -> {:error, reason}
    end
  end

  @typedoc "A room resource."
  @type room :: reference()

  @doc "A new empty room; the log bounds (0 = default) limit catch-up memory."
  @spec room_new(non_neg_integer(), non_neg_integer()) :: room()
  def room_new(_max_log_batches, _max_log_diffs), do: nif_error()

  @doc "A room rebuilt from `room_snapshot/1` bytes (dirty)."
  @spec room_load(binary(), non_neg_integer(), non_neg_integer()) ::
          {:ok, room()} | {:error, String.t()}
  def room_load(_snapshot, _max_log_batches, _max_log_diffs), do: nif_error()

  @doc "The room's durable form, MessagePack (dirty)."
  @spec room_snapshot(room()) :: binary()
  def room_snapshot(_room), do: nif_error()

  @doc """
  Resolves and sequences a `"diffs"` payload (`{"batch_id":N,"diffs":[...]}`
  as JSON or MessagePack bytes).

  Returns `{:ok, seq, ack_json, batch_json, journal_entry}` for a new batch,
  `{:duplicate, ack_json}` for a retry of one already sequenced, or
  `{:error, reason_json}` (`{"reason":..,"message":..}`) when refused whole.
  """
  @spec room_submit(room(), String.t(), String.t(), :json | :msgpack, binary()) ::
          {:ok, pos_integer(), binary(), binary(), binary()}
          | {:duplicate, binary()}
          | {:error, binary()}
  def room_submit(_room, _client_id, _user_id, _format, _payload), do: nif_error()

  @doc "`room_submit/5` on a dirty scheduler, for large payloads."
  @spec room_submit_dirty(room(), String.t(), String.t(), :json | :msgpack, binary()) ::
          {:ok, pos_integer(), binary(), binary(), binary()}
          | {:duplicate, binary()}
          | {:error, binary()}
  def room_submit_dirty(_room, _client_id, _user_id, _format, _payload), do: nif_error()

  @doc "Re-applies journal entries in order during recovery, in one dirty call."
  @spec room_replay(room(), [binary()]) :: :ok | {:error, String.t()}
  def room_replay(_room, _journal_entries), do: nif_error()

  @doc """
  The join/sync reply JSON for a client holding `last_seq` (or `nil`):
  `{"seq","checksum","batches"}` or `{"seq","checksum","snapshot"}` (dirty).
  """
  @spec room_join(room(), non_neg_integer() | nil) :: binary()
  def room_join(_room, _last_seq), do: nif_error()

  @doc "The `\"verify\"` reply JSON: `{\"ok\":true}` or `{\"ok\":false,...snapshot}` (dirty)."
  @spec room_verify(room(), non_neg_integer(), String.t()) :: binary()
  def room_verify(_room, _seq, _checksum_hex), do: nif_error()

  @doc "`%{seq: n, checksum: hex, objects: n}`."
  @spec room_info(room()) :: %{
          seq: non_neg_integer(),
          checksum: String.t(),
          objects: non_neg_integer()
        }
  def room_info(_room), do: nif_error()

  @doc "The protocol versions this build accepts, `{min, max}`."
  @spec protocol_range() :: {pos_integer(), pos_integer()}
  def protocol_range, do: nif_error()

  defp nif_error, do: :erlang.nif_error(:nif_not_loaded)
end
