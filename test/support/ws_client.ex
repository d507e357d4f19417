defmodule TandemWeb.WSClient do
  @moduledoc """
  A minimal WebSocket client for socket-level tests, on `:gen_tcp`
  (hand-written: there is no WebSocket client among the packages reachable
  here for Elixir). It masks frames as RFC 6455 requires, can also send
  deliberately broken ones, and never answers pings on its own, so idle
  handling can be tested.
  """

  def connect(query, headers \\ []) do
    with {:ok, sock, _head} <- upgrade(query, headers), do: {:ok, sock}
  end

  @doc "Like `connect/2`, also returning the response head on success."
  def upgrade(query, headers \\ []) do
    port = Application.fetch_env!(:tandem, :port)
    {:ok, sock} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false, packet: :raw])
    key = Base.encode64(:crypto.strong_rand_bytes(16))

    request = [
      "GET /socket/websocket?#{query} HTTP/1.1\r\n",
      "Host: 127.0.0.1:#{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
      "Sec-WebSocket-Key: #{key}\r\nSec-WebSocket-Version: 13\r\n",
      Enum.map(headers, fn {k, v} -> "#{k}: #{v}\r\n" end),
      "\r\n"
    ]

    :ok = :gen_tcp.send(sock, request)

    case read_head(sock, "") do
      "HTTP/1.1 101" <> _ = head -> {:ok, sock, head}
      "HTTP/1.1 " <> <<code::binary-size(3), _::binary>> -> {:error, String.to_integer(code)}
    end
  end

  defp read_head(sock, acc) do
    if String.contains?(acc, "\r\n\r\n") do
      acc
    else
      {:ok, data} = :gen_tcp.recv(sock, 0, 5_000)
      read_head(sock, acc <> data)
    end
  end

  def send_text(sock, text), do: send_frame(sock, 1, text)
  def send_binary(sock, bin), do: send_frame(sock, 2, bin)

  def send_json(sock, term),
    do: send_text(sock, IO.iodata_to_binary(:jiffy.encode(term, [:use_nil])))

  def send_frame(sock, opcode, payload, opts \\ []) do
    mask = :crypto.strong_rand_bytes(4)
    masked? = Keyword.get(opts, :masked, true)
    fin = if Keyword.get(opts, :fin, true), do: 1, else: 0
    len = byte_size(payload)

    length_bits =
      cond do
        len < 126 -> <<if(masked?, do: 1, else: 0)::1, len::7>>
        len < 65_536 -> <<if(masked?, do: 1, else: 0)::1, 126::7, len::16>>
        true -> <<if(masked?, do: 1, else: 0)::1, 127::7, len::64>>
      end

    body = if masked?, do: [mask, apply_mask(payload, mask)], else: payload
    :gen_tcp.send(sock, [<<fin::1, 0::3, opcode::4>>, length_bits, body])
  end

  defp apply_mask(payload, <<a, b, c, d>>) do
    key = :binary.copy(<<a, b, c, d>>, div(byte_size(payload), 4) + 1)
    :crypto.exor(payload, binary_part(key, 0, byte_size(payload)))
  end

  @doc "The next frame: `{:text | :binary | :ping, data}`, `{:close, code}`, `:closed` or `:timeout`."
  def recv(sock, timeout \\ 2_000) do
    with {:ok, <<_fin::1, _::3, opcode::4, _mask::1, len::7>>} <- :gen_tcp.recv(sock, 2, timeout),
         {:ok, len} <- ext_len(sock, len),
         {:ok, payload} <- if(len == 0, do: {:ok, ""}, else: :gen_tcp.recv(sock, len, timeout)) do
      case opcode do
        1 -> {:text, payload}
        2 -> {:binary, payload}
        8 -> {:close, close_code(payload)}
        9 -> {:ping, payload}
        10 -> {:pong, payload}
      end
    else
      {:error, :timeout} -> :timeout
      {:error, _} -> :closed
    end
  end

  @doc "The next text frame decoded as JSON, skipping pings."
  def recv_json(sock, timeout \\ 2_000) do
    case recv(sock, timeout) do
      {:text, data} -> :jiffy.decode(data, [:return_maps, {:null_term, nil}])
      {:ping, _} -> recv_json(sock, timeout)
      other -> other
    end
  end

  defp ext_len(sock, 126), do: with({:ok, <<n::16>>} <- :gen_tcp.recv(sock, 2), do: {:ok, n})
  defp ext_len(sock, 127), do: with({:ok, <<n::64>>} <- :gen_tcp.recv(sock, 8), do: {:ok, n})
  defp ext_len(_sock, n), do: {:ok, n}

  defp close_code(<<code::16, _::binary>>), do: code
  defp close_code(_), do: nil
end
