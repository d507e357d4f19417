# The transport benchmark: `MIX_ENV=dev mix run bench/transport.exs`.
#
# Starts the server in this VM on PORT (default 4100) and drives it with the Rust load generator
# (native/tandem_loadgen, built here in release mode), which runs in its own OS process on one
# thread. Phases (PHASES, comma-separated; default "idle,fanout,edit"):
#   idle    IDLE connections (default 10,000), each joined to project/presence/cursors of one of
#           100 projects; prints the server's memory per connection and where it goes
#   hold    HOLD connections (default 19,900) held for HOLD_SECONDS (30), split over loadgen
#           processes of at most 9,950 connections each (the fd limit of a process here is 20,000)
#   fanout  1 sender → 1,000 receivers in one project, 50 batches 40 ms apart
#   edit    1,000 editors in 100 projects, 2 batches/s each for 10 s: push → durable ack
# Load shares the machine: say what else ran when you quote the figures (BENCHMARKS.md).
Code.require_file("transport_memory.exs", __DIR__)

defmodule Bench.Transport do
  alias Bench.TransportMemory

  @loadgen "target/release/tandem-loadgen"

  def main do
    {_, 0} = System.cmd("cargo", ["build", "--release", "--quiet", "-p", "tandem_loadgen"])
    token = Tandem.Token.sign("bench", name: "bench", projects: %{"*" => "editor"}, ttl: 3_600)
    url = "ws://127.0.0.1:#{TandemWeb.Endpoint.port()}/socket/websocket?vsn=2.0.0&token=#{token}"
    IO.puts("transport benchmark on #{url |> String.split("?") |> hd()}, #{machine()}")

    for phase <- String.split(System.get_env("PHASES", "idle,fanout,edit"), ",") do
      IO.puts("\n== #{phase}")
      phase(phase, url)
    end
  end

  defp phase("idle", url) do
    n = env("IDLE", 10_000)
    before = settle_and_snapshot()
    crowd = start_crowd(url, n, "idle")
    # Let connection and channel processes hibernate (after 1 s idle).
    Process.sleep(4_000)
    after_ = TransportMemory.snapshot()
    kb = TransportMemory.report(before, after_, n)
    IO.puts("RESULT memory_per_idle_connection_kb=#{kb} connections=#{n}")

    if System.get_env("SAMPLE"),
      do: TransportMemory.sample([":yaws_websockets.init/1", "TandemWeb.Channel.Server.init/1"])

    stop_crowd(crowd)
  end

  defp phase("hold", url) do
    n = env("HOLD", 19_900)
    seconds = env("HOLD_SECONDS", 30)
    before = settle_and_snapshot()
    crowd = start_crowd(url, n, "hold")
    Process.sleep(seconds * 1_000)

    connections =
      Tandem.Metrics.value(:connections_opened) - Tandem.Metrics.value(:connections_closed)

    kb = TransportMemory.report(before, TransportMemory.snapshot(), n)
    held = stop_crowd(crowd)

    IO.puts(
      "RESULT held=#{held} of=#{n} seconds=#{seconds} open_on_server=#{connections} kb_per_connection=#{kb}"
    )
  end

  defp phase("fanout", url), do: run_loadgen(["fanout", "--url", url])
  defp phase("edit", url), do: run_loadgen(["edit", "--url", url])

  # Who used the CPU while a latency phase ran (from the loadgen's START to its last line):
  # this VM, the loadgen, everything else; and the longest mailboxes meanwhile.
  defp run_loadgen(args) do
    port = open(args)
    :erlang.system_flag(:scheduler_wall_time, true)
    store = spawn_link(fn -> trace_store_calls() end)
    Process.register(store, :bench_store)
    queues = spawn_link(fn -> watch_queues(%{}) end)
    Process.register(queues, :bench_queues)
    snapshot = &{cpu_ticks(&1), :erlang.statistics(:scheduler_wall_time)}
    %{start: start, finish: finish} = collect(port, snapshot, %{})
    report_cpu(start, finish)
    send(queues, {:report, self()})

    send(store, {:report, self()})

    receive do
      {:store, line} -> IO.puts("  store appends (journal commit, call to reply): " <> line)
    end

    receive do
      {:queues, maxima} ->
        IO.puts("  longest mailboxes (sampled every 5 ms): #{inspect(maxima)}")
    end
  end

  defp report_cpu({start, walls_before}, {finish, walls_after}) do
    share = fn key ->
      Float.round((finish[key] - start[key]) / max(finish.total - start.total, 1) * 100, 1)
    end

    busy =
      Enum.zip(Enum.sort(walls_before), Enum.sort(walls_after))
      |> Enum.filter(fn {{id, _, _}, _} -> id <= System.schedulers_online() end)
      |> Enum.map(fn {{_, a0, t0}, {_, a1, t1}} ->
        Float.round((a1 - a0) / max(t1 - t0, 1) * 100)
      end)

    IO.puts(
      "  CPU of the machine (2 cores = 100%): server #{share.(:server)}%, loadgen #{share.(:loadgen)}%, " <>
        "others #{share.(:others)}%, idle #{share.(:idle)}%; schedulers busy #{inspect(busy)}%"
    )
  end

  # What the schedulers did (microstate accounting): Erlang code, port drivers (sockets, the
  # SQLite driver), garbage collection, polling, sleeping.
  defp report_microstates(threads) do
    totals =
      for %{type: :scheduler, counters: counters} <- threads, reduce: %{} do
        acc -> Map.merge(acc, counters, fn _, a, b -> a + b end)
      end

    all = max(Enum.sum(Map.values(totals)), 1)

    shares =
      totals
      |> Enum.sort_by(&(-elem(&1, 1)))
      |> Enum.map_join(", ", fn {state, n} -> "#{state} #{Float.round(n / all * 100, 1)}%" end)

    IO.puts("  scheduler time: #{shares}")
  end

  # Jiffies from /proc: this VM, the loadgen (as it reported), the rest of the machine, idle.
  defp cpu_ticks(loadgen) do
    [_cpu | fields] = File.read!("/proc/stat") |> String.split("\n") |> hd() |> String.split()
    [user, nice, system, idle, iowait | rest] = Enum.map(fields, &String.to_integer/1)
    total = user + nice + system + idle + iowait + Enum.sum(rest)
    server = process_ticks(System.pid())
    busy = total - idle - iowait

    %{
      total: total,
      idle: idle + iowait,
      server: server,
      loadgen: loadgen,
      others: busy - server - loadgen
    }
  end

  defp process_ticks(pid) do
    stat = File.read!("/proc/#{pid}/stat")
    # Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    [_, after_name] = String.split(stat, ") ", parts: 2)
    fields = String.split(after_name)
    String.to_integer(Enum.at(fields, 11)) + String.to_integer(Enum.at(fields, 12))
  end

  # How long each `append` call to the store took (receipt to reply, traced), so that the
  # journal's share of a latency can be told from the transport's.
  defp trace_store_calls do
    :erlang.trace(Process.whereis(Tandem.Store.SQLite), true, [
      :receive,
      :send,
      :monotonic_timestamp
    ])

    trace_store_calls(%{}, [])
  end

  defp trace_store_calls(open, done) do
    receive do
      {:trace_ts, _, :receive, {:"$gen_call", {_, tag}, {:append, _, _, _, _}}, at} ->
        trace_store_calls(Map.put(open, tag, at), done)

      {:trace_ts, _, :send, {tag, _reply}, _to, at} when is_map_key(open, tag) ->
        {started, open} = Map.pop(open, tag)

        trace_store_calls(open, [
          :erlang.convert_time_unit(at - started, :native, :microsecond) | done
        ])

      {:trace_ts, _, _, _, _} ->
        trace_store_calls(open, done)

      {:trace_ts, _, _, _, _, _} ->
        trace_store_calls(open, done)

      :reset ->
        trace_store_calls(open, [])

      :freeze ->
        :erlang.trace(Process.whereis(Tandem.Store.SQLite), false, [:receive, :send])
        trace_store_calls(%{}, done)

      {:report, to} ->
        sorted = Enum.sort(done)

        at = fn p ->
          if sorted == [],
            do: 0,
            else: Enum.at(sorted, min(length(sorted) - 1, floor(p * length(sorted)))) / 1000
        end

        send(
          to,
          {:store, "count=#{length(sorted)} p50=#{at.(0.5)} p99=#{at.(0.99)} max=#{at.(1.0)} ms"}
        )
    end
  end

  # The longest mailboxes of the store, the rooms and the pub/sub during a phase.
  defp watch_queues(maxima) do
    receive do
      {:report, to} -> send(to, {:queues, maxima})
      :reset -> watch_queues(%{})
      :freeze -> receive(do: ({:report, to} -> send(to, {:queues, maxima})))
    after
      5 ->
        rooms =
          Tandem.Rooms.Supervisor |> DynamicSupervisor.which_children() |> Enum.map(&elem(&1, 1))

        lengths = %{
          store: queue_len(Process.whereis(Tandem.Store.SQLite)),
          rooms: rooms |> Enum.map(&queue_len/1) |> Enum.max(fn -> 0 end)
        }

        watch_queues(Map.merge(maxima, lengths, fn _, a, b -> max(a, b) end))
    end
  end

  defp queue_len(pid) do
    case pid && Process.info(pid, :message_queue_len) do
      {:message_queue_len, n} -> n
      _ -> 0
    end
  end

  # A crowd of idle connections in the same 100 projects, shared evenly by as many loadgen
  # processes as the fd limit needs (20,000 per process here, so at most 9,950 each).
  defp start_crowd(url, n, prefix) do
    processes = div(n + 9_949, 9_950)
    started = System.monotonic_time(:millisecond)

    ports =
      for i <- 0..(processes - 1) do
        {first, last} = {div(n * i, processes), div(n * (i + 1), processes)}

        open(
          ["idle", "--url", url, "--connections", "#{last - first}", "--offset", "#{first}"] ++
            ["--projects", "100", "--prefix", prefix]
        )
      end

    for {port, i} <- Enum.with_index(ports) do
      {:ok, line} = await_line(port, "READY")
      IO.puts("  loadgen #{i}: #{line}")
    end

    IO.puts("  #{n} connections joined in #{System.monotonic_time(:millisecond) - started} ms")
    ports
  end

  # Closes the crowd and waits until the server has digested it (channels gone, presence
  # leaves broadcast, mailboxes empty), so that its teardown does not land in the next phase.
  defp stop_crowd(ports) do
    held =
      Enum.map(ports, fn port ->
        Port.command(port, "close\n")
        {:ok, "CLOSED held=" <> held} = await_line(port, "CLOSED")
        String.to_integer(held)
      end)
      |> Enum.sum()

    started = System.monotonic_time(:millisecond)
    settle()

    IO.puts(
      "  crowd closed; server quiet after #{System.monotonic_time(:millisecond) - started} ms"
    )

    held
  end

  defp settle do
    queued =
      Enum.sum(
        for pid <- Process.list(), {_, n} <- [Process.info(pid, :message_queue_len)], do: n
      )

    open = Tandem.Metrics.value(:connections_opened) - Tandem.Metrics.value(:connections_closed)

    if queued > 10 or open > 0 do
      Process.sleep(200)
      settle()
    else
      Process.sleep(1_000)
    end
  end

  defp open(args) do
    Port.open({:spawn_executable, @loadgen}, [
      :binary,
      :exit_status,
      :stderr_to_stdout,
      {:line, 4096},
      args: args
    ])
  end

  defp await_line(port, prefix) do
    receive do
      {^port, {:data, {:eol, line}}} ->
        if String.starts_with?(line, prefix) do
          {:ok, line}
        else
          IO.puts("  | " <> line)
          await_line(port, prefix)
        end

      {^port, {:exit_status, status}} ->
        raise "loadgen exited with #{status} before #{prefix}"
    end
  end

  # Prints the loadgen's lines until it exits; `snapshot.(loadgen_ticks)` is taken when the
  # loadgen reports its CPU time at the START of its measured part and at its end.
  defp collect(port, snapshot, marks) do
    receive do
      {^port, {:data, {:eol, "START ticks=" <> ticks}}} ->
        send(:bench_queues, :reset)
        send(:bench_store, :reset)
        :erlang.system_flag(:microstate_accounting, :reset)
        :erlang.system_flag(:microstate_accounting, true)
        collect(port, snapshot, Map.put(marks, :start, snapshot.(String.to_integer(ticks))))

      {^port, {:data, {:eol, "CPU ticks=" <> ticks}}} ->
        send(:bench_queues, :freeze)
        send(:bench_store, :freeze)
        report_microstates(:erlang.statistics(:microstate_accounting))
        :erlang.system_flag(:microstate_accounting, false)
        collect(port, snapshot, Map.put(marks, :finish, snapshot.(String.to_integer(ticks))))

      {^port, {:data, {:eol, line}}} ->
        IO.puts("  " <> line)
        collect(port, snapshot, marks)

      {^port, {:exit_status, 0}} ->
        marks

      {^port, {:exit_status, status}} ->
        raise "loadgen exited with #{status}"
    end
  end

  defp settle_and_snapshot do
    Process.sleep(2_000)
    for pid <- Process.list(), do: :erlang.garbage_collect(pid)
    TransportMemory.snapshot()
  end

  defp env(name, default), do: String.to_integer(System.get_env(name, "#{default}"))

  defp machine do
    "#{System.schedulers_online()} schedulers, OTP #{System.otp_release()}, load average " <>
      (File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" "))
  end
end

Bench.Transport.main()
