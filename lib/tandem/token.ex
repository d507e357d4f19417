defmodule Tandem.Token do
  @moduledoc """
  Signed access tokens in the spirit of `Phoenix.Token`: the claims are
  JSON, base64url-encoded, followed by an HMAC-SHA256 of them keyed by
  `SECRET_KEY_BASE` (`config :tandem, :secret_key_base`).

  Claims: `"sub"` (user id), `"name"`, `"exp"` (Unix seconds), and
  `"projects"`, a map from project id (or `"*"`) to role (`"editor"` or
  `"viewer"`). Hand-written because `Phoenix.Token` lives on Hex; it uses
  only OTP's `:crypto` and constant-time comparison.
  """

  @type claims :: %{String.t() => term()}

  @doc "Signs claims for `user_id`. Options: `:name`, `:projects` (map), `:ttl` seconds."
  @spec sign(String.t(), keyword()) :: String.t()
  def sign(user_id, opts \\ []) do
    claims = %{
      "sub" => user_id,
      "name" => Keyword.get(opts, :name, user_id),
      "exp" => System.os_time(:second) + Keyword.get(opts, :ttl, 86_400),
      "projects" => Keyword.get(opts, :projects, %{"*" => "editor"})
    }

    body = claims |> :jiffy.encode() |> IO.iodata_to_binary() |> Base.url_encode64(padding: false)
    body <> "." <> signature(body)
  end

  @doc "Verifies a token: `{:ok, claims}` or `{:error, :invalid | :expired}`."
  @spec verify(term()) :: {:ok, claims()} | {:error, :invalid | :expired}
  def verify(token) when is_binary(token) do
    with [body, sig] <- String.split(token, ".", parts: 2),
         true <- valid_signature?(body, sig) or :invalid,
         {:ok, json} <- Base.url_decode64(body, padding: false),
         %{"sub" => sub, "exp" => exp} = claims when is_binary(sub) and is_integer(exp) <-
           safe_decode(json) do
      if exp > System.os_time(:second), do: {:ok, claims}, else: {:error, :expired}
    else
      _ -> {:error, :invalid}
    end
  end

  def verify(_), do: {:error, :invalid}

  @doc "The role the claims grant on `project_id`: `\"editor\"`, `\"viewer\"` or `nil`."
  @spec role(claims(), String.t()) :: String.t() | nil
  def role(%{"projects" => projects}, project_id) when is_map(projects) do
    role = Map.get(projects, project_id) || Map.get(projects, "*")
    if role in ["editor", "viewer"], do: role
  end

  def role(_, _), do: nil

  defp safe_decode(json) do
    :jiffy.decode(json, [:return_maps])
  catch
    _, _ -> :error
  end

  # hash_equals/2 is constant-time but requires equal lengths.
  defp valid_signature?(body, sig) do
    expected = signature(body)
    byte_size(expected) == byte_size(sig) and :crypto.hash_equals(expected, sig)
  end

  defp signature(body) do
    :crypto.mac(:hmac, :sha256, secret(), body) |> Base.url_encode64(padding: false)
  end

  defp secret, do: Application.fetch_env!(:tandem, :secret_key_base)
end
