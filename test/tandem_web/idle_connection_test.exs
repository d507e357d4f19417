defmodule TandemWeb.IdleConnectionTest do
  @moduledoc """
  Idle detection of `TandemWeb.Connection` (test config: idle timeout
  1.5 s, grace 0.3 s): a client that answers pings stays connected even if
  it sends nothing else, and an idle connection hibernates.
  """
  use ExUnit.Case, async: false

  import Tandem.Eventually
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
    sock = open()

    new_connection = fn ->
      case Enum.reject(connections(), &MapSet.member?(before, &1)) do
        [pid] -> pid
        _ -> nil
      end
    end

    pid = eventually(new_connection)
    assert is_pid(pid)

    # Answering the server's pings (and nothing else) keeps the connection
    # open however long a loaded machine takes to hibernate it.
    hibernating = fn ->
      Process.info(pid, :current_function) == {:current_function, {:erlang, :hibernate, 3}} or
        answer_a_ping(sock)
    end

    assert eventually(hibernating, 10_000)
  end

  defp answer_a_ping(sock) do
    with {:ping, payload} <- WS.recv(sock, 10), do: WS.send_frame(sock, 10, payload)
    false
  end

  defp connections do
    for pid <- Process.list(),
        {:dictionary, dict} <- [Process.info(pid, :dictionary)],
        dict[:"$initial_call"] == {:yaws_websockets, :init, 1},
        do: pid
  end
end
