import Config

config :logger, level: :warning

# A fresh store per test run (the VM's OS pid keeps concurrent runs apart).
config :tandem,
  port: 4002,
  # /test/echo for scripts/test-autobahn (TandemWeb.EchoConnection).
  echo_endpoint: true,
  socket: [
    idle_timeout_ms: 1_500,
    idle_grace_ms: 300,
    max_frame_bytes: 65_536,
    max_channels: 8,
    rate_limit: 100,
    rate_window_ms: 1_000
  ],
  data_dir: Path.join(System.tmp_dir!(), "tandem-test-#{System.pid()}"),
  room: [
    snapshot_every: 1_000,
    snapshot_interval_ms: 60_000,
    # Long enough that a loaded CI machine never stops a room between two
    # calls of one test; the tests of idle stops wait for it.
    idle_timeout_ms: 1_000,
    max_log_batches: 50,
    max_log_diffs: 0,
    dirty_payload_bytes: 65_536
  ]
