defmodule TandemWeb.IdleConnectionTest do
  @moduledoc """
  Idle detection of `TandemWeb.Connection` (test config: idle timeout
  1.5 s, grace 0.3 s): a client that answers pings stays connected even if
  it sends nothing else, and an idle connection hibernates.
  """
  use ExUnit.Case, async: false

  alias TandemWeb.WSClient, as: WS

  defp open do
    {:ok, sock} = WS.connect("vsn=2.0.0&token=#{Tandem.Token.sign("ida", name: "Ida")}")
    sock
  end

  test "a client that only answers pings is kept past the idle timeout and grace" do
    sock = open()

    for _ <- 1..2 do
      assert {:ping, payload} = WS.recv(sock, 3_000)
      WS.send_frame(sock, 10, payload)
    end

    WS.send_json(sock, [nil, "1", "phoenix", "heartbeat", %{}])
    assert [nil, "1", "phoenix", "phx_reply", %{"status" => "ok"}] = WS.recv_json(sock)
  end

  test "an idle connection process hibernates" do
    before = MapSet.new(connections())
    _sock = open()
    Process.sleep(200)
    [pid] = connections() |> Enum.reject(&MapSet.member?(before, &1))
    Process.sleep(1_200)
    assert {:current_function, {:erlang, :hibernate, 3}} = Process.info(pid, :current_function)
  end

  defp connections do
    for pid <- Process.list(),
        {:dictionary, dict} <- [Process.info(pid, :dictionary)],
        dict[:"$initial_call"] == {:yaws_websockets, :init, 1},
        do: pid
  end
end
