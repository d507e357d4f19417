defmodule TandemWeb.SocketTest do
  @moduledoc "The endpoint over real WebSockets on loopback, frame by frame."
  use ExUnit.Case, async: true

  alias TandemWeb.WSClient, as: WS

  defp token(opts \\ []), do: Tandem.Token.sign("sam", Keyword.merge([name: "Sam"], opts))

  defp open(vsn \\ "2.0.0", opts \\ []) do
    {:ok, sock} = WS.connect("vsn=#{vsn}&token=#{token(opts)}")
    sock
  end

  defp project, do: "sock-#{System.unique_integer([:positive])}"

  defp join(sock, topic, join_ref, payload \\ %{}) do
    WS.send_json(sock, [join_ref, join_ref, topic, "phx_join", payload])
    WS.recv_json(sock)
  end

  defp project_payload, do: %{"protocol" => 1, "client_id" => "c-#{System.unique_integer()}"}

  test "the upgrade needs a valid, unexpired token" do
    assert {:error, 403} = WS.connect("vsn=2.0.0")
    assert {:error, 403} = WS.connect("vsn=2.0.0&token=forged.token")
    assert {:error, 403} = WS.connect("vsn=2.0.0&token=#{token(ttl: -1)}")
    assert {:error, 400} = WS.connect("vsn=9.9&token=#{token()}")
  end

  test "a token among the offered subprotocols, as phoenix.js sends authToken, is accepted and phoenix selected" do
    offer = fn token ->
      encoded = Base.encode64(token, padding: false)
      [{"Sec-WebSocket-Protocol", "phoenix, base64url.bearer.phx.#{encoded}"}]
    end

    assert {:ok, sock, head} = WS.upgrade("vsn=2.0.0", offer.(token()))
    [status | lines] = head |> String.trim_trailing() |> String.split("\r\n")
    assert status == "HTTP/1.1 101 Switching Protocols"
    assert "Sec-WebSocket-Protocol: phoenix" in lines
    assert Enum.any?(lines, &String.starts_with?(&1, "Sec-WebSocket-Accept: "))
    assert Enum.all?(lines, &(&1 =~ ~r/^[A-Za-z-]+: /)), "every header line is a header"

    WS.send_json(sock, [nil, "1", "phoenix", "heartbeat", %{}])
    assert [nil, "1", "phoenix", "phx_reply", %{"status" => "ok"}] = WS.recv_json(sock)

    assert {:error, 403} = WS.connect("vsn=2.0.0", offer.("forged.token"))
    assert {:error, 403} = WS.connect("vsn=2.0.0", offer.(token(ttl: -1)))
    not_base64 = [{"Sec-WebSocket-Protocol", "phoenix, base64url.bearer.phx.%%%"}]
    assert {:error, 403} = WS.connect("vsn=2.0.0", not_base64)
  end

  test "upgrades from a foreign Origin are refused when an allow-list is set" do
    Application.put_env(:tandem, :check_origin, ["http://good.example"])
    on_exit(fn -> Application.put_env(:tandem, :check_origin, :any) end)

    assert {:error, 403} =
             WS.connect("vsn=2.0.0&token=#{token()}", [{"Origin", "http://evil.example"}])

    assert {:ok, _} =
             WS.connect("vsn=2.0.0&token=#{token()}", [{"Origin", "http://good.example"}])
  end

  test "V2 JSON: heartbeats are answered" do
    sock = open()
    WS.send_json(sock, [nil, "7", "phoenix", "heartbeat", %{}])

    assert [nil, "7", "phoenix", "phx_reply", %{"status" => "ok", "response" => %{}}] =
             WS.recv_json(sock)
  end

  test "V1 JSON: objects instead of arrays" do
    sock = open("1.0.0")
    WS.send_json(sock, %{topic: "phoenix", event: "heartbeat", payload: %{}, ref: "1"})

    assert %{
             "topic" => "phoenix",
             "event" => "phx_reply",
             "ref" => "1",
             "payload" => %{"status" => "ok"}
           } = WS.recv_json(sock)
  end

  test "V2 binary: a MessagePack batch pushed in a binary frame is sequenced" do
    sock = open()
    topic = "project:" <> project()
    assert [_, _, _, "phx_reply", %{"status" => "ok"}] = join(sock, topic, "1", project_payload())
    # {"batch_id":1,"diffs":[{"op":"add","id":"b","attrs":{}}]} in MessagePack
    batch =
      <<0x82, 0xA8, "batch_id", 1, 0xA5, "diffs", 0x91, 0x83, 0xA2, "op", 0xA3, "add", 0xA2, "id",
        0xA1, "b", 0xA5, "attrs", 0x80>>

    WS.send_binary(
      sock,
      <<0, 1, 1, byte_size(topic), 5, "1", "2", topic::binary, "diffs", batch::binary>>
    )

    frames = for _ <- 1..2, do: WS.recv_json(sock)
    assert Enum.any?(frames, &match?([nil, nil, ^topic, "batch", %{"seq" => 1}], &1))

    assert Enum.any?(
             frames,
             &match?(
               ["1", "2", ^topic, "phx_reply", %{"status" => "ok", "response" => %{"seq" => 1}}],
               &1
             )
           )
  end

  test "malformed frames get an error and the connection lives on" do
    sock = open()
    WS.send_text(sock, "{not json")
    assert [nil, nil, "phoenix", "phx_error", %{"reason" => "malformed"}] = WS.recv_json(sock)
    WS.send_text(sock, ~s({"an": "object"}))
    assert [_, _, "phoenix", "phx_error", _] = WS.recv_json(sock)
    WS.send_json(sock, [nil, "2", "phoenix", "heartbeat", %{}])
    assert [nil, "2", "phoenix", "phx_reply", %{"status" => "ok"}] = WS.recv_json(sock)
  end

  test "unknown topics and messages to unjoined topics are errors" do
    sock = open()

    assert [
             _,
             _,
             _,
             "phx_reply",
             %{"status" => "error", "response" => %{"reason" => "unmatched topic"}}
           ] = join(sock, "nowhere:1", "1")

    WS.send_json(sock, ["9", "3", "project:x", "diffs", %{}])
    assert [_, "3", _, "phx_reply", %{"status" => "error"}] = WS.recv_json(sock)
  end

  test "a socket may join a limited number of channels" do
    sock = open()
    p = project()

    for n <- 1..8 do
      assert [_, _, _, _, %{"status" => "ok"}] = join(sock, "cursors:#{p}-#{n}", "#{n}")
    end

    assert [_, _, _, _, %{"status" => "error", "response" => %{"reason" => "too_many_channels"}}] =
             join(sock, "cursors:#{p}-9", "9")
  end

  test "a flood is answered with rate_limited errors, not a disconnect" do
    sock = open()
    for n <- 1..130, do: WS.send_json(sock, [nil, "#{n}", "phoenix", "heartbeat", %{}])
    replies = for _ <- 1..130, do: WS.recv_json(sock)

    limited =
      Enum.count(
        replies,
        &match?(
          [_, _, _, _, %{"status" => "error", "response" => %{"reason" => "rate_limited"}}],
          &1
        )
      )

    assert limited >= 30
    Process.sleep(1_100)
    WS.send_json(sock, [nil, "x", "phoenix", "heartbeat", %{}])
    assert [nil, "x", _, _, %{"status" => "ok"}] = WS.recv_json(sock)
  end

  test "a duplicate join replaces the old channel; the old join_ref is then stale" do
    sock = open()
    topic = "project:" <> project()
    assert [_, _, _, _, %{"status" => "ok"}] = join(sock, topic, "1", project_payload())
    WS.send_json(sock, ["2", "2", topic, "phx_join", project_payload()])
    frames = for _ <- 1..2, do: WS.recv_json(sock)

    assert Enum.any?(frames, &match?(["1", _, ^topic, "phx_close", _], &1))

    assert Enum.any?(frames, &match?(["2", "2", ^topic, "phx_reply", %{"status" => "ok"}], &1))

    WS.send_json(sock, ["1", "5", topic, "sync", %{"since" => 0}])
    assert :timeout = WS.recv(sock, 300)
    WS.send_json(sock, ["2", "6", topic, "sync", %{"since" => 0}])
    assert ["2", "6", ^topic, "phx_reply", %{"status" => "ok"}] = WS.recv_json(sock)
  end

  test "a crashed channel becomes phx_error; the socket and its other channels live on" do
    sock = open()
    id = project()

    assert [_, _, _, _, %{"status" => "ok"}] =
             join(sock, "project:" <> id, "1", project_payload())

    assert [_, _, _, _, %{"status" => "ok"}] = join(sock, "cursors:" <> id, "2")
    Process.exit(Tandem.Rooms.whereis(id), :kill)
    assert ["1", _, "project:" <> ^id, "phx_error", _] = WS.recv_json(sock)
    WS.send_json(sock, ["2", "9", "cursors:" <> id, "move", %{"x" => "bad"}])
    assert ["2", "9", _, "phx_reply", %{"status" => "error"}] = WS.recv_json(sock)
  end

  describe "RFC 6455 through the endpoint's Yaws settings" do
    test "a message in fragments, with a ping between them, is one message" do
      sock = open()
      [first, second] = ["[null,\"4\",\"phoenix\",", "\"heartbeat\",{}]"]
      WS.send_frame(sock, 1, first, fin: false)
      WS.send_frame(sock, 9, "mid")
      WS.send_frame(sock, 0, second)
      assert {:pong, "mid"} = WS.recv(sock)
      assert [nil, "4", "phoenix", "phx_reply", %{"status" => "ok"}] = WS.recv_json(sock)
    end

    test "a ping is answered with a pong carrying its payload" do
      sock = open()
      WS.send_frame(sock, 9, "are you there")
      assert {:pong, "are you there"} = WS.recv(sock)
    end

    test "a close frame is answered with a close frame echoing its code" do
      sock = open()
      WS.send_frame(sock, 8, <<1000::16, "bye">>)
      assert {:close, 1000} = WS.recv(sock)
      assert :closed = WS.recv(sock)
    end

    test "a text frame that is not UTF-8 closes the connection with 1007" do
      sock = open()
      WS.send_frame(sock, 1, <<0xFF, 0xFE, 0xFD>>)
      assert {:close, 1007} = WS.recv(sock)
    end
  end

  test "frames over the size limit close the connection with 1009" do
    sock = open()
    WS.send_text(sock, String.duplicate("x", 70_000))
    assert {:close, 1009} = WS.recv(sock)
  end

  test "unmasked client frames are refused" do
    sock = open()
    WS.send_frame(sock, 1, ~s([null,"1","phoenix","heartbeat",{}]), masked: false)
    assert WS.recv(sock) in [:closed, {:close, 1002}]
  end

  test "an idle connection that does not answer pings is dropped" do
    sock = open()
    assert {:ping, _} = WS.recv(sock, 3_000)

    assert WS.recv(sock, 3_000) in [:closed, {:close, 1006}] or
             match?({:close, _}, WS.recv(sock, 100))
  end
end
