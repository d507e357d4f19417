defmodule TandemWeb.DevSignInTest do
  @moduledoc "The browser demo's dev-only sign-in route, over real HTTP on loopback."
  use ExUnit.Case, async: false

  defp get(path) do
    port = Application.fetch_env!(:tandem, :port)
    {:ok, sock} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
    :ok = :gen_tcp.send(sock, "GET #{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    response = read_all(sock, "")
    [head, body] = String.split(response, "\r\n\r\n", parts: 2)
    [_, status | _] = String.split(head, " ")
    {String.to_integer(status), body}
  end

  defp read_all(sock, acc) do
    case :gen_tcp.recv(sock, 0, 5_000) do
      {:ok, data} -> read_all(sock, acc <> data)
      {:error, :closed} -> acc
    end
  end

  setup do
    before = Application.get_env(:tandem, :dev_sign_in)
    on_exit(fn -> Application.put_env(:tandem, :dev_sign_in, before) end)
  end

  test "is not mounted unless :dev_sign_in is true (only config/dev.exs sets it)" do
    Application.delete_env(:tandem, :dev_sign_in)
    assert {404, _} = get("/dev/token?user=mallory")
    Application.put_env(:tandem, :dev_sign_in, "yes")
    assert {404, _} = get("/dev/token?user=mallory")
  end

  test "mints a verifiable editor token for the given user and name when enabled" do
    Application.put_env(:tandem, :dev_sign_in, true)
    assert {200, body} = get("/dev/token?user=ada&name=Ada%20L")
    %{"token" => token, "user" => "ada", "name" => "Ada L"} = :jiffy.decode(body, [:return_maps])
    assert {:ok, claims} = Tandem.Token.verify(token)
    assert claims["sub"] == "ada" and claims["name"] == "Ada L"
    assert Tandem.Token.role(claims, "any-project") == "editor"
  end
end
