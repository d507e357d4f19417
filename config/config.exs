import Config

config :tandem,
  port: 4000,
  data_dir: "data",
  store: Tandem.Store.SQLite

import_config "#{config_env()}.exs"
