defmodule TandemWeb.Subprotocol do
  @moduledoc """
  The token carried in `Sec-WebSocket-Protocol`, as phoenix.js sends it when
  given `authToken`: it offers the subprotocols `phoenix` and
  `base64url.bearer.phx.<token in base64, padding stripped>`, and a browser
  fails the connection unless the server's 101 response selects one of them.

  Yaws 2.1.1 writes its 101 response itself and never includes
  `Sec-WebSocket-Protocol`. So, only after every check Yaws will make on the
  request has passed (so that Yaws' 101 surely follows), `select_phoenix/1`
  writes the first part of the response on the socket: the status line,
  `Sec-WebSocket-Protocol: phoenix`, and the name of one more header,
  `X-Upgraded-By:`, whose value Yaws' own status line then becomes. The bytes
  on the wire are one well-formed response. Hand-written because no
  reachable WebSocket server both passes Autobahn here and selects a
  subprotocol (shared/websocket-notes.md).
  """

  @prefix "base64url.bearer.phx."
  @offered "sec-websocket-protocol"

  @doc """
  The token among the offered subprotocols: `{:ok, token}`, `:none` when no
  subprotocol carries one, `{:error, reason}` when one does but is not
  base64.
  """
  @spec token(tuple()) :: {:ok, String.t()} | :none | {:error, String.t()}
  def token(headers) do
    offered =
      case :yaws_api.get_header(headers, @offered) do
        :undefined -> []
        value -> value |> to_string() |> String.split(",") |> Enum.map(&String.trim/1)
      end

    case Enum.find(offered, &String.starts_with?(&1, @prefix)) do
      nil -> :none
      @prefix <> encoded -> decode(encoded)
    end
  end

  defp decode(encoded) do
    with :error <- Base.decode64(encoded, padding: false),
         :error <- Base.url_decode64(encoded, padding: false) do
      {:error, "token subprotocol is not base64"}
    end
  end

  @doc """
  Whether Yaws will answer this upgrade with 101: the same header checks it
  makes (`Connection: upgrade`, `Upgrade: websocket`, version 8 or 13, a key).
  """
  @spec upgradable?(tuple()) :: boolean()
  def upgradable?(headers) do
    lists = fn name -> header(headers, name) |> String.downcase() |> String.split(",") end

    "upgrade" in Enum.map(lists.("connection"), &String.trim/1) and
      "websocket" in Enum.map(lists.("upgrade"), &String.trim/1) and
      header(headers, "sec-websocket-version") in ["8", "13"] and
      header(headers, "sec-websocket-key") != ""
  end

  defp header(headers, name) do
    case :yaws_api.get_header(headers, name) do
      :undefined -> ""
      value -> to_string(value)
    end
  end

  @doc "Writes the start of the 101 response selecting `phoenix` (see the module doc)."
  @spec select_phoenix(port()) :: :ok | {:error, term()}
  def select_phoenix(socket) do
    :gen_tcp.send(socket, [
      "HTTP/1.1 101 Switching Protocols\r\n",
      "Sec-WebSocket-Protocol: phoenix\r\n",
      "X-Upgraded-By: "
    ])
  end
end
