import Config

if port = System.get_env("PORT"), do: config(:tandem, port: String.to_integer(port))
if dir = System.get_env("DATA_DIR"), do: config(:tandem, data_dir: dir)
