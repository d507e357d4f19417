import Config

if port = System.get_env("PORT"), do: config(:tandem, port: String.to_integer(port))
if dir = System.get_env("DATA_DIR"), do: config(:tandem, data_dir: dir)

# Room and socket tuning (see config.exs for what each knob means): each
# variable, when set, overrides one integer of its section.
tuning = [
  room: [
    snapshot_every: "ROOM_SNAPSHOT_EVERY",
    snapshot_interval_ms: "ROOM_SNAPSHOT_INTERVAL_MS",
    idle_timeout_ms: "ROOM_IDLE_TIMEOUT_MS",
    max_log_batches: "ROOM_LOG_BATCHES",
    max_log_diffs: "ROOM_LOG_DIFFS"
  ],
  socket: [
    max_frame_bytes: "SOCKET_MAX_FRAME_BYTES",
    idle_timeout_ms: "SOCKET_IDLE_TIMEOUT_MS"
  ]
]

for {section, vars} <- tuning do
  overrides =
    for {key, var} <- vars, value = System.get_env(var), do: {key, String.to_integer(value)}

  if overrides != [] do
    config :tandem, [
      {section, Keyword.merge(Application.get_env(:tandem, section, []), overrides)}
    ]
  end
end

if secret = System.get_env("SECRET_KEY_BASE") do
  config :tandem, secret_key_base: secret
else
  if config_env() == :prod, do: raise("SECRET_KEY_BASE must be set in production")
end

if origins = System.get_env("CHECK_ORIGIN") do
  config :tandem, check_origin: String.split(origins, ",", trim: true)
end
