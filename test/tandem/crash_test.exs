defmodule Tandem.CrashTest do
  @moduledoc """
  The durability promise, tested the hard way: a separate OS process runs the
  application and acknowledges batches from concurrent writers; it is killed
  with SIGKILL mid-stream, restarted on the same DATA_DIR, and every batch it
  acknowledged must be there.
  """
  use ExUnit.Case, async: false

  @moduletag timeout: 120_000

  defp start_driver(data_dir, args, env) do
    mix = System.find_executable("mix")

    Port.open({:spawn_executable, mix}, [
      :binary,
      :exit_status,
      {:line, 65_536},
      args: ["run", "test/support/crash_driver.exs" | args],
      env: [
        {~c"MIX_ENV", ~c"test"},
        {~c"DATA_DIR", String.to_charlist(data_dir)},
        # The driver runs the whole application: keep its endpoint off ours.
        {~c"PORT", ~c"#{free_port()}"} | env
      ]
    ])
  end

  defp free_port do
    {:ok, listen} = :gen_tcp.listen(0, [])
    {:ok, port} = :inet.port(listen)
    :gen_tcp.close(listen)
    port
  end

  defp read_lines(port, acc, until) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        acc = [line | acc]
        if until.(acc), do: Enum.reverse(acc), else: read_lines(port, acc, until)

      {^port, {:data, {:noeol, _}}} ->
        read_lines(port, acc, until)

      {^port, {:exit_status, status}} ->
        flunk("driver exited with #{status}: #{Enum.join(Enum.reverse(acc), "\n")}")
    after
      60_000 -> flunk("driver went silent")
    end
  end

  defp acks(lines) do
    for "ACK " <> rest <- lines do
      [seq, checksum, id] = String.split(rest, " ")
      {String.to_integer(seq), checksum, id}
    end
  end

  defp os_pid(lines),
    do:
      Enum.find_value(lines, fn
        "PID " <> pid -> pid
        _ -> nil
      end)

  defp crash_and_check(snapshot_every) do
    data_dir = Path.join(System.tmp_dir!(), "tandem-crash-#{System.unique_integer([:positive])}")
    env = [{~c"ROOM_SNAPSHOT_EVERY", ~c"#{snapshot_every}"}, {~c"ROOM_LOG_BATCHES", ~c"100000"}]

    writer = start_driver(data_dir, ["write", "crashy"], env)
    lines = read_lines(writer, [], fn acc -> length(acc) > 400 end)
    System.cmd("kill", ["-9", os_pid(lines)])
    # Acks printed before the kill landed are acknowledged too: drain them.
    lines = lines ++ drain(writer)
    acked = acks(lines)
    assert length(acked) >= 400

    {max_seq, max_checksum, _} = Enum.max_by(acked, &elem(&1, 0))
    checker = start_driver(data_dir, ["check", "crashy", "#{max_seq}", max_checksum], env)

    out =
      read_lines(checker, [], fn acc -> Enum.any?(acc, &String.starts_with?(&1, "VERIFY")) end)

    Port.close(checker)

    state =
      out
      |> Enum.find_value(fn
        "STATE " <> j -> j
        _ -> nil
      end)
      |> :jiffy.decode([:return_maps])

    verify =
      out
      |> Enum.find_value(fn
        "VERIFY " <> j -> j
        _ -> nil
      end)
      |> :jiffy.decode([:return_maps])

    # Count: every acknowledged batch survived whole, its object and its
    # attribute (later, unacknowledged ones may have survived too).
    for {_, _, id} <- acked do
      [_, n] = String.split(id, "-")
      assert state["snapshot"][id]["n"] == String.to_integer(n), "lost #{id}"
    end

    assert map_size(state["snapshot"]) >= length(acked)
    assert state["seq"] >= max_seq
    # Checksum: the recovered history has exactly the state acknowledged at max_seq.
    assert verify["ok"] == true or (snapshot_every < 1_000_000 and state["seq"] > max_seq)
    if state["seq"] == max_seq, do: assert(state["checksum"] == max_checksum)
    File.rm_rf!(data_dir)
  end

  defp drain(port) do
    receive do
      {^port, {:data, {:eol, line}}} -> [line | drain(port)]
      {^port, {:data, {:noeol, _}}} -> drain(port)
      {^port, {:exit_status, _}} -> []
    after
      5_000 -> []
    end
  end

  test "no acknowledged batch is lost to SIGKILL (journal only)" do
    crash_and_check(1_000_000)
  end

  test "no acknowledged batch is lost to SIGKILL (snapshots and journal)" do
    crash_and_check(97)
  end
end
