# Hex is unreachable here: every dependency comes from Debian's Erlang packages
# (on the code path below) or from our own Cargo workspace.
Code.prepend_path("/usr/lib/yaws-2.1.1/ebin")
Code.require_file("mix/compile_cargo.exs", __DIR__)

defmodule Tandem.MixProject do
  use Mix.Project

  def project do
    [
      app: :tandem,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      start_permanent: Mix.env() == :prod,
      compilers: [:cargo | Mix.compilers()],
      deps: [],
      aliases: aliases()
    ]
  end

  def application do
    [
      mod: {Tandem.Application, []},
      extra_applications: [:logger, :crypto, :ssl, :sqlite3, :jiffy],
      # Loaded, not started: TandemWeb.Endpoint runs Yaws embedded.
      included_applications: [:yaws]
    ]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  defp aliases do
    [
      "phx.server": ["run --no-halt"]
    ]
  end
end
