defmodule Bench.TransportMemory do
  @moduledoc """
  Where the memory of a crowd of connections goes: the BEAM's own
  categories (`:erlang.memory/0`) and, per kind of process, the sum of
  `Process.info(pid, :memory)` (heap, stack, mailbox, process struct), plus
  the ETS tables of the transport. `snapshot/0` before and after the crowd
  connects; `report/3` prints the difference per connection.
  """

  @doc "A snapshot of the VM's memory, split by process kind and table."
  def snapshot do
    processes =
      Process.list()
      |> Enum.map(fn pid -> {kind(pid), memory(pid)} end)
      |> Enum.group_by(&elem(&1, 0), &elem(&1, 1))
      |> Map.new(fn {kind, sizes} -> {kind, {length(sizes), Enum.sum(sizes)}} end)

    tables =
      for table <- :ets.all(), name = table_name(table), reduce: %{} do
        acc ->
          bytes = (:ets.info(table, :memory) || 0) * :erlang.system_info(:wordsize)
          Map.update(acc, name, bytes, &(&1 + bytes))
      end

    %{vm: Map.new(:erlang.memory()), processes: processes, tables: tables}
  end

  @doc "Prints what `after_` holds beyond `before`, per connection."
  def report(before, after_, connections) do
    per = fn bytes -> Float.round(bytes / connections / 1024, 2) end

    IO.puts("  BEAM memory per connection (KB, #{connections} connections):")

    for key <- [:total, :processes, :ets, :binary, :system] do
      delta = after_.vm[key] - before.vm[key]
      IO.puts("    #{String.pad_trailing(to_string(key), 28)} #{per.(delta)}")
    end

    IO.puts("  processes by kind (count delta, KB per connection):")

    for kind <- Enum.uniq(Map.keys(after_.processes) ++ Map.keys(before.processes)) |> Enum.sort() do
      {n1, b1} = Map.get(after_.processes, kind, {0, 0})
      {n0, b0} = Map.get(before.processes, kind, {0, 0})

      if abs(b1 - b0) > connections * 10 do
        IO.puts("    #{String.pad_trailing(kind, 40)} #{n1 - n0}\t#{per.(b1 - b0)}")
      end
    end

    IO.puts("  ETS tables (KB per connection):")

    for {name, b1} <- Enum.sort(after_.tables),
        delta = b1 - Map.get(before.tables, name, 0),
        abs(delta) > connections * 10 do
      IO.puts("    #{String.pad_trailing(name, 40)} #{per.(delta)}")
    end

    per.(after_.vm.total - before.vm.total)
  end

  @doc "Process.info of one process of each kind of `kinds` (to see what a kind holds)."
  def sample(kinds) do
    by_kind = Process.list() |> Enum.group_by(&kind/1)

    for kind <- kinds, pid = by_kind |> Map.get(kind, []) |> Enum.at(-1) do
      keys = [
        :current_function,
        :memory,
        :heap_size,
        :total_heap_size,
        :stack_size,
        :message_queue_len,
        :links,
        :monitors,
        :monitored_by,
        :binary,
        :dictionary
      ]

      info = Map.new(Process.info(pid, keys))
      state = :sys.get_state(pid)
      counts = Map.new([:links, :monitors, :monitored_by, :binary], &{&1, length(info[&1])})
      IO.puts("  sample #{kind}: #{inspect(Map.merge(info, counts), limit: 30)}")
      IO.puts("    state words: #{:erts_debug.size(state)} flat #{:erts_debug.flat_size(state)}")

      parts = if is_tuple(state), do: Tuple.to_list(state), else: Map.to_list(state)

      for {part, i} <- Enum.with_index(parts), :erts_debug.size(part) > 20 do
        IO.puts(
          "      [#{i}] #{:erts_debug.size(part)} words: #{inspect(part, limit: 8, printable_limit: 60)}"
        )
      end
    end
  end

  defp memory(pid) do
    case Process.info(pid, :memory) do
      {:memory, bytes} -> bytes
      nil -> 0
    end
  end

  defp kind(pid) do
    case Process.info(pid, [:registered_name, :dictionary, :initial_call]) do
      nil ->
        "dead"

      info ->
        cond do
          is_atom(info[:registered_name]) and info[:registered_name] != [] ->
            "named " <> inspect(info[:registered_name])

          call = info[:dictionary][:"$initial_call"] ->
            initial(call)

          true ->
            initial(info[:initial_call])
        end
    end
  end

  defp initial({m, f, a}), do: "#{inspect(m)}.#{f}/#{a}"
  defp initial(other), do: inspect(other)

  defp table_name(table) do
    case :ets.info(table, :name) do
      :undefined -> nil
      # Registry partitions: one line per registry, not per partition.
      name when is_atom(name) -> inspect(name) |> String.replace(~r/\d+$/, "")
      _ -> nil
    end
  end
end
