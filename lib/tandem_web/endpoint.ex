defmodule TandemWeb.Endpoint do
  @moduledoc """
  The HTTP/WebSocket server: Debian's Yaws 2.1.1 in embedded mode, under
  our own supervision tree (see shared/websocket-notes.md for why Yaws and
  which settings it needs). Everything else sees only `TandemWeb.Router`
  and `TandemWeb.Connection`, so the server could be swapped.
  """
  use Supervisor

  def start_link(opts), do: Supervisor.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "The port the endpoint listens on."
  def port, do: Application.fetch_env!(:tandem, :port)

  @impl true
  def init(_opts) do
    TandemWeb.LogLimit.install(Application.get_env(:tandem, :yaws_log_per_second, 10))
    data_dir = Application.fetch_env!(:tandem, :data_dir)
    logdir = Path.join(data_dir, "yaws") |> tap(&File.mkdir_p!/1)
    docroot = Path.join(data_dir, "www") |> tap(&File.mkdir_p!/1)

    global = [
      logdir: String.to_charlist(logdir),
      ebin_dir: [],
      id: ~c"tandem",
      max_connections: :nolimit
    ]

    server = [
      port: port(),
      listen: {0, 0, 0, 0},
      servername: ~c"tandem",
      appmods: [{~c"/", TandemWeb.Router}],
      # (Yaws reads listen options from `soptions`; a top-level `listen_opts`
      # is ignored.) nodelay: a frame written right after another (a reply
      # after a broadcast) would otherwise wait for the client's delayed ACK
      # (40 ms).
      soptions: [listen_opts: [backlog: 4096, nodelay: true]]
    ]

    {:ok, sconfs, gconf, yaws_children} =
      :yaws_api.embedded_start_conf(String.to_charlist(docroot), server, global, ~c"tandem")

    configure = %{
      id: :yaws_setconf,
      start: {__MODULE__, :setconf, [gconf, sconfs]},
      restart: :transient
    }

    children =
      [{DynamicSupervisor, name: TandemWeb.ChannelSupervisor, strategy: :one_for_one}] ++
        yaws_children ++ [configure]

    Supervisor.init(children, strategy: :rest_for_one)
  end

  @doc false
  def setconf(gconf, sconfs) do
    :ok = :yaws_api.setconf(gconf, sconfs)
    :ignore
  end

  @doc "Options of every WebSocket connection (Yaws' websocket settings)."
  def websocket_options(init_state) do
    config = Map.new(Application.fetch_env!(:tandem, :socket))

    [
      callback: {:basic, init_state},
      origin: :any,
      # Refuse unmasked client frames (RFC 6455; off by default in Yaws).
      close_if_unmasked: true,
      max_frame_size: config.max_frame_bytes,
      max_message_size: config.max_frame_bytes,
      # Idle connections are pinged and dropped by TandemWeb.Connection:
      # Yaws' keepalive is a gen_server timeout, which disables hibernate_after.
      keepalive: false,
      hibernate_after: 1_000
    ]
  end
end
