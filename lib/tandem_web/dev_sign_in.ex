defmodule TandemWeb.DevSignIn do
  @moduledoc """
  Development-only sign-in for the browser demo: `GET /dev/token?user=U&name=N`
  answers `{"token": T}`, a token for any project as editor, so the editor at
  `/` can be opened without running `mix tandem.token`. The router sends
  requests here only when `config :tandem, :dev_sign_in` is true, which only
  `config/dev.exs` sets: production never mints tokens for anyone who asks.
  """

  @doc "The Yaws response for a sign-in request with the given query parameters."
  @spec respond(%{String.t() => String.t()}) :: list()
  def respond(query) do
    user = non_empty(query["user"]) || "user-" <> Integer.to_string(:rand.uniform(1_000_000))
    name = non_empty(query["name"]) || user
    token = Tandem.Token.sign(user, name: name)
    body = :jiffy.encode(%{"token" => token, "user" => user, "name" => name})
    [{:status, 200}, {:content, ~c"application/json", body}]
  end

  @doc "Whether the route is mounted (dev config only)."
  @spec enabled?() :: boolean()
  def enabled?, do: Application.get_env(:tandem, :dev_sign_in, false) == true

  defp non_empty(nil), do: nil

  defp non_empty(value),
    do: if(String.trim(value) == "", do: nil, else: String.slice(value, 0, 64))
end
