import Config

config :tandem,
  port: 4000,
  data_dir: "data",
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
