defmodule TandemWeb.Connection do
  @moduledoc """
  One process per WebSocket connection: the Yaws websocket callback module
  (Yaws runs these callbacks inside its own per-connection gen_server, so
  `self()` is the connection). It decodes frames with the serializer chosen
  at upgrade, routes them to channel processes, answers heartbeats, applies
  the per-connection rate limit and channel cap, and writes every frame
  that channels, pub/sub fastlane and replies hand it.

  Hand-written: this is the part of `Phoenix.Socket` that is transport
  specific, and Phoenix is not reachable here. The rules it follows are
  Phoenix's: a duplicate join replaces the old channel; messages carrying a
  stale `join_ref` are dropped; a crashed channel becomes `phx_error` for
  its topic while the connection lives on.

  Idle connections are found here, not by Yaws' `keepalive`: Yaws runs its
  keepalive as a gen_server timeout, and a gen_server with a pending
  timeout never hibernates, which left every idle connection holding its
  whole grown heap (~60 KB). Every `idle_timeout_ms` the connection looks at
  the socket's received-byte counter (so pongs count too, which Yaws does
  not pass to callbacks); if nothing arrived it pings, and if still nothing
  arrived after `idle_grace_ms` it drops the connection (1006, no close
  frame, as Yaws' `drop_on_timeout` did). Between checks it hibernates.
  """
  require Logger
  require Record

  Record.defrecordp(:arg, Record.extract(:arg, from: "/usr/lib/yaws-2.1.1/include/yaws_api.hrl"))

  alias TandemWeb.{Message, Reply, Socket}
  alias TandemWeb.Channel.Server

  @channels %{
    "project" => TandemWeb.ProjectChannel,
    "presence" => TandemWeb.PresenceChannel,
    "cursors" => TandemWeb.CursorChannel
  }

  ## Yaws callbacks

  @doc false
  def init([arg, %{serializer: _, claims: _} = init]) do
    config = Map.new(Application.fetch_env!(:tandem, :socket))
    Tandem.Metrics.inc(:connections_opened)
    socket = arg(arg, :clisock)

    state =
      Map.merge(init, %{
        channels: %{},
        monitors: %{},
        config: config,
        window: {now_ms(), 0},
        socket: socket,
        idle: {received_bytes(socket), false}
      })

    {:ok, check_idle_after(state, config.idle_timeout_ms)}
  end

  @doc false
  def handle_message({opcode, data}, state) when opcode in [:text, :binary] do
    case decode(state.serializer, data, opcode) do
      {:ok, message} ->
        case rate_limited(state) do
          {:ok, state} -> handle_in(message, state)
          {:limited, state} -> reply(state, message, :error, %{"reason" => "rate_limited"})
        end

      {:error, reason} ->
        Tandem.Metrics.inc(:errors, %{kind: "malformed_frame"})

        error = %Message{
          topic: "phoenix",
          event: "phx_error",
          payload: %{"reason" => "malformed", "message" => reason}
        }

        {:reply, frame(state.serializer.encode!(error)), state}
    end
  end

  def handle_message({:close, _status, _reason}, state), do: {:close, :normal, state}
  def handle_message(_other, state), do: {:noreply, state}

  @doc false
  def handle_info({:socket_push, encoded}, state), do: {:reply, frame(encoded), state}

  def handle_info({:DOWN, ref, :process, _pid, reason}, state) do
    case Map.pop(state.monitors, ref) do
      {nil, _} ->
        {:noreply, state}

      {{topic, join_ref}, monitors} ->
        state = %{state | monitors: monitors, channels: Map.delete(state.channels, topic)}
        channel_down(state, topic, join_ref, reason)
    end
  end

  def handle_info(:idle_check, %{idle: {seen, pinged}} = state) do
    case received_bytes(state.socket) do
      ^seen when pinged ->
        Tandem.Metrics.inc(:errors, %{kind: "idle_timeout"})
        {:close, 1006, state}

      ^seen ->
        state = %{state | idle: {seen, true}}
        {:reply, {:ping, ""}, check_idle_after(state, state.config.idle_grace_ms)}

      received ->
        state = %{state | idle: {received, false}}
        {:noreply, check_idle_after(state, state.config.idle_timeout_ms)}
    end
  end

  def handle_info(_other, state), do: {:noreply, state}

  @doc false
  def terminate(_reason, _state) do
    Tandem.Metrics.inc(:connections_closed)
    :ok
  end

  ## Routing

  defp handle_in(%Message{topic: "phoenix", event: "heartbeat"} = msg, state),
    do: reply(state, msg, :ok, %{})

  defp handle_in(%Message{event: "phx_join", topic: topic} = msg, state) do
    with {:ok, channel} <- route(topic),
         :ok <- check_cap(state, topic) do
      state = leave_existing(state, topic)
      join(state, channel, msg)
    else
      {:error, reason} -> reply(state, msg, :error, %{"reason" => reason})
    end
  end

  defp handle_in(%Message{event: "phx_leave", topic: topic, join_ref: join_ref} = msg, state) do
    case Map.get(state.channels, topic) do
      {pid, ^join_ref, ref} ->
        Process.demonitor(ref, [:flush])
        DynamicSupervisor.terminate_child(TandemWeb.ChannelSupervisor, pid)
        state = forget(state, topic, ref)

        {:reply, frames([reply_frame(state, msg, :ok, %{}), close_frame(state, topic, join_ref)]),
         state}

      _ ->
        reply(state, msg, :ok, %{})
    end
  end

  defp handle_in(%Message{topic: topic, join_ref: join_ref} = msg, state) do
    case Map.get(state.channels, topic) do
      {pid, ^join_ref, _ref} ->
        send(pid, msg)
        {:noreply, state}

      {_pid, _other_join_ref, _ref} ->
        # A message for a previous join of this topic: stale, dropped.
        {:noreply, state}

      nil ->
        Tandem.Metrics.inc(:errors, %{kind: "unmatched_topic"})
        reply(state, msg, :error, %{"reason" => "unmatched topic"})
    end
  end

  defp join(state, channel, %Message{topic: topic, join_ref: join_ref} = msg) do
    socket = %Socket{
      topic: topic,
      join_ref: join_ref,
      serializer: state.serializer,
      channel: channel,
      assigns: %{claims: state.claims}
    }

    case Server.join(socket, msg.payload, msg.ref) do
      {:ok, response, pid} ->
        ref = Process.monitor(pid)
        Tandem.Metrics.inc(:channels_joined, %{kind: kind(topic)})

        state = %{
          state
          | channels: Map.put(state.channels, topic, {pid, join_ref, ref}),
            monitors: Map.put(state.monitors, ref, {topic, join_ref})
        }

        reply(state, msg, :ok, response)

      {:error, response} ->
        reply(state, msg, :error, response)
    end
  end

  # A duplicate join replaces the old channel; its client hears phx_close.
  defp leave_existing(state, topic) do
    case Map.get(state.channels, topic) do
      nil ->
        state

      {pid, old_join_ref, ref} ->
        Process.demonitor(ref, [:flush])
        DynamicSupervisor.terminate_child(TandemWeb.ChannelSupervisor, pid)
        send(self(), {:socket_push, close_frame(state, topic, old_join_ref)})
        forget(state, topic, ref)
    end
  end

  defp forget(state, topic, ref) do
    Tandem.Metrics.inc(:channels_left, %{kind: kind(topic)})

    %{
      state
      | channels: Map.delete(state.channels, topic),
        monitors: Map.delete(state.monitors, ref)
    }
  end

  defp channel_down(state, topic, join_ref, reason) do
    Tandem.Metrics.inc(:channels_left, %{kind: kind(topic)})

    if reason in [:normal, :shutdown] or match?({:shutdown, _}, reason) do
      {:reply, frame(close_frame(state, topic, join_ref)), state}
    else
      Tandem.Metrics.inc(:errors, %{kind: "channel_crash"})
      Logger.warning("channel #{topic} crashed: #{inspect(reason)}")

      error = %Message{
        topic: topic,
        event: "phx_error",
        payload: %{},
        join_ref: join_ref,
        ref: join_ref
      }

      {:reply, frame(state.serializer.encode!(error)), state}
    end
  end

  defp route(topic) do
    with [kind, id] <- String.split(topic, ":", parts: 2),
         {:ok, channel} <- Map.fetch(@channels, kind),
         true <- Tandem.Room.valid_id?(id) do
      {:ok, channel}
    else
      _ -> {:error, "unmatched topic"}
    end
  end

  defp check_cap(state, topic) do
    if Map.has_key?(state.channels, topic) or
         map_size(state.channels) < state.config.max_channels,
       do: :ok,
       else: {:error, "too_many_channels"}
  end

  defp rate_limited(%{window: {start, count}, config: config} = state) do
    now = now_ms()

    cond do
      now - start >= config.rate_window_ms -> {:ok, %{state | window: {now, 1}}}
      count < config.rate_limit -> {:ok, %{state | window: {start, count + 1}}}
      true -> Tandem.Metrics.inc(:errors, %{kind: "rate_limited"}) && {:limited, state}
    end
  end

  ## Frames

  defp decode(serializer, data, opcode) do
    {:ok, serializer.decode!(data, opcode)}
  rescue
    e in ArgumentError -> {:error, Exception.message(e)}
    _ -> {:error, "malformed frame"}
  end

  defp reply(state, msg, status, payload),
    do: {:reply, frame(reply_frame(state, msg, status, payload)), state}

  defp reply_frame(state, %Message{} = msg, status, payload) do
    state.serializer.encode!(%Reply{
      topic: msg.topic,
      status: status,
      payload: payload,
      ref: msg.ref,
      join_ref: msg.join_ref
    })
  end

  defp close_frame(state, topic, join_ref) do
    state.serializer.encode!(%Message{
      topic: topic,
      event: "phx_close",
      payload: %{},
      join_ref: join_ref,
      ref: join_ref
    })
  end

  defp frame({opcode, iodata}), do: {opcode, IO.iodata_to_binary(iodata)}
  defp frames(encoded), do: Enum.map(encoded, &frame/1)

  defp check_idle_after(state, ms) do
    Process.send_after(self(), :idle_check, ms)
    state
  end

  defp received_bytes(socket) do
    stats =
      if is_port(socket),
        do: :inet.getstat(socket, [:recv_oct]),
        else: :ssl.getstat(socket, [:recv_oct])

    case stats do
      {:ok, [recv_oct: bytes]} -> bytes
      {:error, _} -> :closed
    end
  end

  defp kind(topic), do: topic |> String.split(":", parts: 2) |> hd()

  defp now_ms, do: System.monotonic_time(:millisecond)
end
