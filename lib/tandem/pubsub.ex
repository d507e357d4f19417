defmodule Tandem.PubSub do
  @moduledoc """
  Topic pub/sub with Phoenix's "fastlane": a socket subscribes on behalf of
  its channel with its serializer, and a broadcast is encoded ONCE per
  serializer and sent as a ready frame straight to every such socket process
  — never re-encoded per subscriber, never routed through channel processes.

  Subscriptions are local, in a duplicate-key `Registry`. Across a cluster,
  each node runs one `Tandem.PubSub` process in the `:pg` group of the
  scope; a broadcast is dispatched locally and forwarded once to each other
  node, which dispatches it to its own subscribers.
  """
  use GenServer

  defmodule Broadcast do
    @moduledoc "What a plain subscriber receives (mirrors `Phoenix.Socket.Broadcast`)."
    @enforce_keys [:topic, :event, :payload]
    defstruct [:topic, :event, :payload]

    @type t :: %__MODULE__{topic: String.t(), event: String.t(), payload: term()}
  end

  @registry Tandem.PubSub.Registry
  @scope Tandem.PubSub.Scope

  @doc false
  def child_spec(_opts) do
    children = [
      %{id: :pg, start: {:pg, :start_link, [@scope]}},
      {Registry, keys: :duplicate, name: @registry, partitions: System.schedulers_online()},
      %{id: __MODULE__, start: {GenServer, :start_link, [__MODULE__, nil, [name: __MODULE__]]}}
    ]

    %{
      id: __MODULE__,
      type: :supervisor,
      start: {Supervisor, :start_link, [children, [strategy: :rest_for_one]]}
    }
  end

  @doc """
  Subscribes the caller to `topic`.

  With `fastlane: {socket_pid, serializer}`, broadcasts reach `socket_pid` as
  `{:socket_push, frame}`, encoded by `serializer.fastlane!/1`; without it
  the caller receives `%Broadcast{}` messages.
  """
  @spec subscribe(String.t(), keyword()) :: :ok
  def subscribe(topic, opts \\ []) do
    {:ok, _} = Registry.register(@registry, topic, Keyword.get(opts, :fastlane))
    :ok
  end

  @doc "Undoes the caller's subscriptions to `topic`."
  @spec unsubscribe(String.t()) :: :ok
  def unsubscribe(topic), do: Registry.unregister(@registry, topic)

  @doc "Sends `event` with `payload` to every subscriber of `topic`, on every node."
  @spec broadcast(String.t(), String.t(), term()) :: :ok
  def broadcast(topic, event, payload), do: broadcast_from(nil, topic, event, payload)

  @doc "As `broadcast/3`, skipping the subscriber `from`."
  @spec broadcast_from(pid() | nil, String.t(), String.t(), term()) :: :ok
  def broadcast_from(from, topic, event, payload) do
    message = %Broadcast{topic: topic, event: event, payload: payload}

    for pid <- :pg.get_members(@scope, __MODULE__), node(pid) != node() do
      send(pid, {:forward, from, message})
    end

    dispatch(from, message)
  end

  defp dispatch(from, %Broadcast{topic: topic} = message) do
    # One pass over every partition's subscribers; each serializer's frame is
    # encoded the first time a socket needs it and reused for the others.
    @registry
    |> Registry.lookup(topic)
    |> Enum.reduce(%{}, fn
      {^from, _}, frames ->
        frames

      {pid, nil}, frames ->
        send(pid, message)
        frames

      {_, {socket, serializer}}, frames ->
        {push, frames} = fastlane_push(frames, serializer, message)
        send(socket, push)
        frames
    end)

    :ok
  end

  defp fastlane_push(frames, serializer, message) do
    case frames do
      %{^serializer => push} ->
        {push, frames}

      _ ->
        push = {:socket_push, flatten(serializer.fastlane!(message))}
        {push, Map.put(frames, serializer, push)}
    end
  end

  # One binary for every socket: each send then copies a reference, and no
  # socket has to flatten the iodata again.
  defp flatten({opcode, iodata}) when is_list(iodata), do: {opcode, IO.iodata_to_binary(iodata)}
  defp flatten(frame), do: frame

  @impl true
  def init(nil) do
    :ok = :pg.join(@scope, __MODULE__, self())
    {:ok, nil}
  end

  @impl true
  def handle_info({:forward, from, message}, state) do
    dispatch(from, message)
    {:noreply, state}
  end
end
