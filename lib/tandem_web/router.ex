defmodule TandemWeb.Router do
  @moduledoc """
  The Yaws appmod mounted at `/`: every HTTP request lands in `out/1`.
  `GET /healthz`, `GET /metrics`, the WebSocket upgrade at
  `/socket/websocket` (token, serializer and Origin checked BEFORE the
  upgrade, so a refused client gets a plain HTTP 403/400), and the static
  files of the browser demo from `priv/static`.
  """
  require Record

  @hrl "/usr/lib/yaws-2.1.1/include/yaws_api.hrl"
  Record.defrecordp(:arg, Record.extract(:arg, from: @hrl))
  Record.defrecordp(:headers, Record.extract(:headers, from: @hrl))

  @doc false
  def out(arg) do
    path = arg(arg, :server_path) |> to_string()

    case path do
      "/healthz" ->
        text(200, "ok\n")

      "/metrics" ->
        [{:status, 200}, {:content, ~c"text/plain; version=0.0.4", Tandem.Metrics.render()}]

      "/socket/websocket" ->
        upgrade(arg)

      "/test/echo" ->
        if Application.get_env(:tandem, :echo_endpoint, false),
          do: {:websocket, TandemWeb.EchoConnection, TandemWeb.Endpoint.websocket_options(%{})},
          else: text(404, "not found\n")

      "/dev/token" ->
        if TandemWeb.DevSignIn.enabled?(),
          do: TandemWeb.DevSignIn.respond(query(arg)),
          else: text(404, "not found\n")

      _ ->
        static(path)
    end
  end

  defp upgrade(arg) do
    query = query(arg)

    headers = arg(arg, :headers)

    with :ok <- check_origin(arg),
         {:ok, serializer} <- serializer(query),
         {:ok, token, via} <- token(query, headers),
         {:ok, claims} <- authenticate(token),
         :ok <- select_subprotocol(via, arg) do
      init = %{serializer: serializer, claims: claims}
      {:websocket, TandemWeb.Connection, TandemWeb.Endpoint.websocket_options(init)}
    else
      {:error, status, reason} ->
        Tandem.Metrics.inc(:upgrades_refused, %{reason: reason})
        text(status, reason <> "\n")
    end
  end

  defp query(arg),
    do: Map.new(:yaws_api.parse_query(arg), fn {k, v} -> {to_string(k), to_string(v)} end)

  defp check_origin(arg) do
    origin = :yaws_api.get_header(arg(arg, :headers), ~c"origin")

    case Application.fetch_env!(:tandem, :check_origin) do
      :any ->
        :ok

      _allowed when origin == :undefined ->
        :ok

      allowed ->
        if to_string(origin) in allowed, do: :ok, else: {:error, 403, "origin not allowed"}
    end
  end

  defp serializer(query) do
    case TandemWeb.Serializer.for_vsn(query["vsn"]) do
      {:ok, serializer} -> {:ok, serializer}
      :error -> {:error, 400, "unsupported vsn"}
    end
  end

  # The `token` param, else the token phoenix.js's `authToken` puts among
  # the offered subprotocols.
  defp token(%{"token" => token}, _headers), do: {:ok, token, :param}

  defp token(_query, headers) do
    case TandemWeb.Subprotocol.token(headers) do
      {:ok, token} -> {:ok, token, :subprotocol}
      :none -> {:error, 403, "token required"}
      {:error, reason} -> {:error, 403, reason}
    end
  end

  defp authenticate(token) do
    case Tandem.Token.verify(token) do
      {:ok, claims} -> {:ok, claims}
      {:error, :expired} -> {:error, 403, "token expired"}
      {:error, _} -> {:error, 403, "invalid token"}
    end
  end

  defp select_subprotocol(:param, _arg), do: :ok

  defp select_subprotocol(:subprotocol, arg) do
    if TandemWeb.Subprotocol.upgradable?(arg(arg, :headers)) do
      case TandemWeb.Subprotocol.select_phoenix(arg(arg, :clisock)) do
        :ok -> :ok
        {:error, _} -> {:error, 400, "connection lost during the upgrade"}
      end
    else
      {:error, 400, "not a WebSocket upgrade"}
    end
  end

  defp static(path) do
    root = Path.expand(Application.app_dir(:tandem, "priv/static"))
    file = Path.expand(Path.join(root, if(path == "/", do: "index.html", else: path)))

    if String.starts_with?(file, root <> "/") and File.regular?(file) do
      [{:status, 200}, {:content, content_type(file), File.read!(file)}]
    else
      text(404, "not found\n")
    end
  end

  defp content_type(file) do
    case Path.extname(file) do
      ".html" -> ~c"text/html; charset=utf-8"
      ".js" -> ~c"text/javascript"
      ".wasm" -> ~c"application/wasm"
      ".css" -> ~c"text/css"
      ".png" -> ~c"image/png"
      _ -> ~c"application/octet-stream"
    end
  end

  defp text(status, body), do: [{:status, status}, {:content, ~c"text/plain", body}]
end
