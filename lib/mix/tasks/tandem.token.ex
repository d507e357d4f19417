defmodule Mix.Tasks.Tandem.Token do
  @shortdoc "Prints a signed access token"
  @moduledoc """
  Prints a token that lets a client connect:

      mix tandem.token USER [--name NAME] [--project ID|*] [--role editor|viewer] [--ttl SECONDS]

  `--project` may be repeated; the default is every project (`*`) as an
  editor for a day. The token is the last line of the output.
  """
  use Mix.Task

  @switches [name: :string, project: :keep, role: :string, ttl: :integer]

  @impl true
  def run(args) do
    Mix.Task.run("app.config")

    case OptionParser.parse(args, strict: @switches) do
      {opts, [user], []} ->
        role = Keyword.get(opts, :role, "editor")
        unless role in ["editor", "viewer"], do: Mix.raise("--role must be editor or viewer")
        projects = for {:project, id} <- opts, into: %{}, do: {id, role}
        projects = if projects == %{}, do: %{"*" => role}, else: projects

        token =
          Tandem.Token.sign(user,
            name: Keyword.get(opts, :name, user),
            projects: projects,
            ttl: Keyword.get(opts, :ttl, 86_400)
          )

        Mix.shell().info(token)

      _ ->
        Mix.raise(
          "usage: mix tandem.token USER [--name N] [--project ID|*] [--role editor|viewer] [--ttl S]"
        )
    end
  end
end
