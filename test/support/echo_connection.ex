defmodule TandemWeb.EchoConnection do
  @moduledoc """
  A WebSocket that echoes every message, on exactly the Yaws settings of
  Tandem's socket (`TandemWeb.Endpoint.websocket_options/1`): what
  scripts/test-autobahn points the Autobahn|Testsuite cases at, since
  those need an echo server and Tandem's socket speaks Phoenix frames.
  Mounted at `/test/echo` only when `:echo_endpoint` is set (test config).
  """

  @doc false
  def init([_arg, state]), do: {:ok, state}

  @doc false
  def handle_message({opcode, data}, state) when opcode in [:text, :binary],
    do: {:reply, {opcode, data}, state}

  def handle_message({:close, status, _reason}, state), do: {:close, status, state}
  def handle_message(_other, state), do: {:noreply, state}

  @doc false
  def handle_info(_message, state), do: {:noreply, state}

  @doc false
  def terminate(_reason, _state), do: :ok
end
