defmodule Mix.Tasks.Compile.Cargo do
  @shortdoc "Builds the tandem_nif Rust library into priv/native"
  @moduledoc """
  Builds `native/tandem_nif` with cargo and installs the shared library as
  `priv/native/libtandem_nif.so`, where `Tandem.Native` loads it.

  Hand-written because the Elixir half of rustler lives on Hex, which is
  unreachable here. It lives outside `elixirc_paths` and is required by
  `mix.exs`, so it exists before Elixir compiles `lib/` (a compiler defined in
  `lib/` cannot run first, and one listed after `:elixir` runs too late for
  `@on_load`). It rebuilds only when the content of the Rust sources changes
  (a digest, not mtimes), and installs by copy-then-rename so that a running
  VM never sees a half-written library.
  """
  use Mix.Task.Compiler

  @crate "tandem_nif"
  @library "libtandem_nif.so"

  @impl true
  def run(_args) do
    root = File.cwd!()
    target = Path.join([root, "priv", "native", @library])
    manifest = Path.join(Mix.Project.manifest_path(), "compile.cargo")
    digest = source_digest(root)

    if File.exists?(target) and File.read(manifest) == {:ok, digest} do
      {:noop, []}
    else
      build(root, target)
      File.mkdir_p!(Path.dirname(manifest))
      File.write!(manifest, digest)
      # priv/ may not have existed when Mix linked it into _build.
      Mix.Project.build_structure()
      {:ok, []}
    end
  end

  defp build(root, target) do
    cargo =
      System.find_executable("cargo") ||
        Mix.raise("cargo not found: install Rust with rustup, then run scripts/setup")

    Mix.shell().info("Compiling #{@crate} (cargo build --release)")

    case System.cmd(cargo, ["build", "--release", "--quiet", "-p", @crate],
           cd: root,
           stderr_to_stdout: true,
           into: IO.stream(:stdio, :line)
         ) do
      {_, 0} -> :ok
      {_, status} -> Mix.raise("cargo build of #{@crate} failed with status #{status}")
    end

    built = Path.join([cargo_target_dir(root), "release", @library])
    File.mkdir_p!(Path.dirname(target))
    tmp = target <> ".tmp"
    File.cp!(built, tmp)
    File.rename!(tmp, target)
  end

  defp cargo_target_dir(root) do
    System.get_env("CARGO_TARGET_DIR") || Path.join(root, "target")
  end

  defp source_digest(root) do
    files =
      Path.wildcard(Path.join(root, "native/*/src/**/*.rs")) ++
        Path.wildcard(Path.join(root, "native/*/Cargo.toml")) ++
        Enum.filter(
          [Path.join(root, "Cargo.toml"), Path.join(root, "Cargo.lock")],
          &File.exists?/1
        )

    files
    |> Enum.sort()
    |> Enum.reduce(:crypto.hash_init(:sha256), fn file, acc ->
      acc |> :crypto.hash_update(file) |> :crypto.hash_update(File.read!(file))
    end)
    |> :crypto.hash_final()
    |> Base.encode16(case: :lower)
  end

  @impl true
  def clean do
    File.rm_rf!(Path.join(["priv", "native"]))
    :ok
  end
end
