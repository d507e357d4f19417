import Config

config :tandem,
  port: 4000,
  data_dir: "data",
  # Development default only: runtime.exs requires SECRET_KEY_BASE in production.
  secret_key_base: "tandem-dev-secret-change-me-0123456789abcdef0123456789abcdef",
  # Allowed Origin headers on WebSocket upgrades; :any accepts every origin
  # (development); a list of "scheme://host[:port]" strings otherwise.
  check_origin: :any,
  # Yaws' own error reports (one per client mistake) let through per second;
  # the rest are counted as errors{kind="log_suppressed"} in /metrics.
  yaws_log_per_second: 10,
  socket: [
    # Idle connections are pinged after this long and dropped after the grace period.
    idle_timeout_ms: 60_000,
    idle_grace_ms: 10_000,
    max_frame_bytes: 1_048_576,
    max_channels: 16,
    # Per connection: at most this many messages per window.
    rate_limit: 200,
    rate_window_ms: 1_000
  ],
  store: Tandem.Store.SQLite,
  room: [
    # Journal batches between snapshots (each snapshot truncates the journal).
    snapshot_every: 1_000,
    snapshot_interval_ms: 60_000,
    # A room with no members for this long snapshots and stops.
    idle_timeout_ms: 30_000,
    # Catch-up log bounds (0 = the core's defaults).
    max_log_batches: 0,
    max_log_diffs: 0,
    # Payloads larger than this are resolved on a dirty scheduler.
    dirty_payload_bytes: 65_536
  ]

import_config "#{config_env()}.exs"
