defmodule Tandem.Rooms do
  @moduledoc """
  Finds a project's room, starting it on first use: rooms live under a
  `DynamicSupervisor` and are named through a `Registry`, so at most one
  `Tandem.Room` runs per project on this node.

  A call that races with a room stopping (idle stop, shutdown) is retried
  against a fresh room (the registry forgets a dead room asynchronously,
  hence a few short waits), so callers never see the room's lifecycle. A
  room that crashes or times out during a call answers
  `{:error, {:json, ~s({"reason":"unavailable",...})}}` instead of taking
  the caller down: a client retries with the same `batch_id`, which the
  room recognises if the batch did become durable.
  """

  @registry Tandem.Rooms.Registry
  @supervisor Tandem.Rooms.Supervisor

  @doc false
  def child_spec(_opts) do
    children = [
      {Registry, keys: :unique, name: @registry},
      {DynamicSupervisor, name: @supervisor, strategy: :one_for_one}
    ]

    %{
      id: __MODULE__,
      type: :supervisor,
      start: {Supervisor, :start_link, [children, [strategy: :one_for_all]]}
    }
  end

  @doc "The name a room registers under."
  def via(project_id), do: {:via, Registry, {@registry, project_id}}

  @doc "The running room of `project_id`, if any."
  @spec whereis(String.t()) :: pid() | nil
  def whereis(project_id) do
    case Registry.lookup(@registry, project_id) do
      [{pid, _}] -> pid
      [] -> nil
    end
  end

  @doc "How many rooms run on this node."
  @spec count() :: non_neg_integer()
  def count, do: Registry.count(@registry)

  @doc "Calls the room of `project_id`, starting it when needed."
  @spec call(String.t(), term(), timeout()) :: term()
  def call(project_id, request, timeout \\ 30_000), do: call(project_id, request, timeout, 1)

  @attempts 10

  defp call(project_id, request, timeout, attempt) do
    GenServer.call(ensure_started(project_id), request, timeout)
  catch
    :exit, {reason, _} when attempt < @attempts and reason in [:noproc, :normal, :shutdown] ->
      Process.sleep(attempt * 5)
      call(project_id, request, timeout, attempt + 1)

    :exit, _ ->
      {:error, {:json, ~s({"reason":"unavailable","message":"the room did not answer; retry"})}}
  end

  defp ensure_started(project_id) do
    case whereis(project_id) do
      nil ->
        case DynamicSupervisor.start_child(@supervisor, {Tandem.Room, project_id}) do
          {:ok, pid} -> pid
          {:error, {:already_started, pid}} -> pid
        end

      pid ->
        pid
    end
  end
end
