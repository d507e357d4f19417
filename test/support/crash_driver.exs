# Runs inside a separate OS process for Tandem.CrashTest (see there).
#   write PROJECT  — writers submit batches forever, printing "ACK seq checksum object_id"
#                    for each acknowledged one.
#   check PROJECT SEQ CHECKSUM — prints the recovered room as JSON lines.
import Tandem.RoomHelpers

IO.puts("PID #{System.pid()}")

case System.argv() do
  ["write", project] ->
    for w <- 1..4 do
      spawn_link(fn ->
        Stream.iterate(1, &(&1 + 1))
        |> Enum.each(fn n ->
          id = "w#{w}-#{n}"
          {:ok, ack} = submit!(project, "writer-#{w}", n, [add(id), set(id, "n", n)])
          IO.puts("ACK #{ack["seq"]} #{ack["checksum"]} #{id}")
        end)
      end)
    end

    Process.sleep(:infinity)

  ["check", project, seq, checksum] ->
    {:ok, state, _} = Tandem.Room.join(project, %{client_id: "checker", last_seq: nil})
    {:ok, verdict} = Tandem.Room.verify(project, String.to_integer(seq), checksum)
    IO.puts("STATE " <> elem(state, 1))
    IO.puts("VERIFY " <> elem(verdict, 1))
end
