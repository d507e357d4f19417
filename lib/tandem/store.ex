defmodule Tandem.Store do
  @moduledoc """
  Where rooms make their history durable: an append-only journal of
  sequenced batches, and snapshots that let the journal be truncated.

  A room appends a group of journal entries (group commit) and only then
  acknowledges and broadcasts them, so an acknowledged batch survives any
  crash. Recovery is `load/1` (latest snapshot plus the journal after it)
  and a replay of the entries in order.

  The embedded default is `Tandem.Store.SQLite`; a clustered deployment would
  add a PostgreSQL implementation of the same behaviour. The implementation
  is chosen with `config :tandem, store: Module`.
  """

  @typedoc "A room's (project's) id."
  @type room_id :: String.t()

  @doc "A child spec for the store's own process(es), started before any room."
  @callback child_spec(keyword()) :: Supervisor.child_spec()

  @doc """
  Appends journal entries (MessagePack, opaque here) with sequence numbers
  `first..last` in one atomic, durable write.
  """
  @callback append(room_id(), first :: pos_integer(), last :: pos_integer(), [binary()]) ::
              :ok | {:error, term()}

  @doc "The latest snapshot (or `nil`) and every journal entry after it, in order."
  @callback load(room_id()) :: {:ok, binary() | nil, [binary()]} | {:error, term()}

  @doc "Stores a snapshot taken at `seq` and drops the journal up to it, atomically."
  @callback put_snapshot(room_id(), seq :: non_neg_integer(), binary()) :: :ok | {:error, term()}

  @doc "Deletes everything stored for a room."
  @callback delete(room_id()) :: :ok | {:error, term()}

  @doc "The rooms that have anything stored."
  @callback list() :: {:ok, [room_id()]} | {:error, term()}

  @doc "The configured implementation."
  @spec impl() :: module()
  def impl, do: Application.fetch_env!(:tandem, :store)
end
