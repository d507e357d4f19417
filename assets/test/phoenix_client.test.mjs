// Conformance: the official `phoenix` npm client, unmodified, against the real server.
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import { Socket, Presence } from "phoenix"
import WebSocket from "ws"
import { startServer } from "./server.mjs"

let server
const sockets = []
before(async () => { server = await startServer() })
after(async () => { sockets.forEach((s) => s.disconnect()); await server.stop() })

function connect(user, extra = {}, tokenArgs = []) {
  const socket = new Socket(server.url, {
    transport: WebSocket,
    params: { token: server.token(user, "--name", user.toUpperCase(), ...tokenArgs) },
    reconnectAfterMs: () => 100,
    rejoinAfterMs: () => 100,
    ...extra,
  })
  socket.connect()
  sockets.push(socket)
  return socket
}

const joined = (channel) =>
  new Promise((resolve, reject) =>
    channel.join().receive("ok", resolve).receive("error", reject).receive("timeout", () => reject("timeout")))

const pushed = (channel, event, payload) =>
  new Promise((resolve, reject) =>
    channel.push(event, payload).receive("ok", resolve).receive("error", reject).receive("timeout", () => reject("timeout")))

const next = (channel, event) => new Promise((resolve) => { const ref = channel.on(event, (p) => { channel.off(event, ref); resolve(p) }) })

const uid = () => Math.random().toString(36).slice(2)

test("join, push with reply, and the batch broadcast reach every member", async () => {
  const project = "js-" + uid()
  const a = connect("ana").channel(`project:${project}`, { protocol: 1, client_id: uid(), last_seq: null })
  const b = connect("ben").channel(`project:${project}`, { protocol: 1, client_id: uid(), last_seq: null })
  const joinReply = await joined(a)
  assert.equal(joinReply.seq, 0)
  assert.deepEqual(joinReply.snapshot, {})
  await joined(b)

  const seen = next(b, "batch")
  const ack = await pushed(a, "diffs", { batch_id: 1, diffs: [{ op: "add", id: "r1", attrs: { name: "R", z: "80" } }] })
  assert.equal(ack.seq, 1)
  const batch = await seen
  assert.equal(batch.seq, 1)
  assert.equal(batch.user_id, "ana")
  assert.equal(batch.checksum, ack.checksum)
  assert.deepEqual(batch.diffs[0].attrs, { name: "R", z: "80" })
})

test("a binary payload push is answered", async () => {
  const ch = connect("bin").channel("project:js-bin-" + uid(), { protocol: 1, client_id: uid(), last_seq: null })
  await joined(ch)
  // {"batch_id":1,"diffs":[]} as MessagePack
  const bytes = Uint8Array.from([0x82, 0xa8, ...Buffer.from("batch_id"), 0x01, 0xa5, ...Buffer.from("diffs"), 0x90])
  const ack = await pushed(ch, "diffs", bytes.buffer)
  assert.equal(ack.seq, 1)
})

test("errors are replies: invalid batches, unknown events, wrong protocol", async () => {
  const socket = connect("err")
  const ch = socket.channel("project:js-err-" + uid(), { protocol: 1, client_id: uid(), last_seq: null })
  await joined(ch)
  await assert.rejects(pushed(ch, "diffs", { batch_id: "x", diffs: [] }), (e) => e.reason === "malformed")
  await assert.rejects(pushed(ch, "explode", {}), (e) => e.reason === "unknown_event")
  const old = socket.channel("project:js-old-" + uid(), { protocol: 99, client_id: uid() })
  await assert.rejects(joined(old), (e) => e.reason === "unsupported_protocol")
})

test("a viewer may read but not edit", async () => {
  const project = "js-view-" + uid()
  const ch = connect("val", {}, ["--project", project, "--role", "viewer"])
    .channel(`project:${project}`, { protocol: 1, client_id: uid(), last_seq: null })
  await joined(ch)
  await assert.rejects(pushed(ch, "diffs", { batch_id: 1, diffs: [] }), (e) => e.reason === "forbidden")
  const other = connect("vic", {}, ["--project", "elsewhere"]).channel(`project:${project}`, { protocol: 1, client_id: uid() })
  await assert.rejects(joined(other), (e) => e.reason === "forbidden")
})

test("Presence syncs two users and drops one that leaves", async () => {
  const topic = "presence:js-" + uid()
  const one = connect("pat").channel(topic, { client_id: "tab-1" })
  const twoSocket = connect("quinn")
  const two = twoSocket.channel(topic, { client_id: "tab-2" })
  const presence = new Presence(one)
  const users = () => presence.list((id, { metas }) => `${id}:${metas.length}`).sort()
  const until = (want) => new Promise((resolve) => {
    const check = () => JSON.stringify(users()) === JSON.stringify(want) && resolve()
    presence.onSync(check); check()
  })
  await joined(one)
  await joined(two)
  await until(["pat:1", "quinn:1"])
  await pushed(two, "update", { selection: ["r1"] })
  twoSocket.disconnect()
  await until(["pat:1"])
})

test("heartbeats are answered and the client rejoins after the server drops it", async () => {
  const socket = connect("hal", { heartbeatIntervalMs: 100 })
  const project = "js-re-" + uid()
  const ch = socket.channel(`project:${project}`, { protocol: 1, client_id: uid(), last_seq: null })
  await joined(ch)
  await new Promise((r) => setTimeout(r, 350)) // several heartbeats went by
  assert.equal(socket.isConnected(), true)
  // Drop the connection under the client's feet: it reconnects and rejoins.
  const rejoined = new Promise((resolve) => ch.on("phx_reply", () => {}) && socket.onOpen(resolve))
  socket.conn.close(4000, "test drop")
  await rejoined
  const ack = await pushed(ch, "diffs", { batch_id: 1, diffs: [] })
  assert.equal(ack.seq, 1)
})

test("cursor moves reach the others, coalesced", async () => {
  const topic = "cursors:js-" + uid()
  const a = connect("cur").channel(topic, { client_id: "ca" })
  const b = connect("sor").channel(topic, { client_id: "cb" })
  await joined(a)
  await joined(b)
  const moves = []
  b.on("moved", (m) => moves.push(m))
  for (let i = 0; i < 50; i++) a.push("move", { x: i, y: 2 * i })
  await new Promise((r) => setTimeout(r, 300))
  assert.ok(moves.length >= 1 && moves.length < 50, `coalesced: ${moves.length}`)
  assert.deepEqual(moves.at(-1), { user_id: "cur", client_id: "ca", x: 49, y: 98 })
})

test("authToken: the token travels in Sec-WebSocket-Protocol and the server selects phoenix", async () => {
  const socket = new Socket(server.url, {
    transport: WebSocket,
    authToken: server.token("tia", "--name", "TIA"),
    reconnectAfterMs: () => 100,
  })
  const opened = new Promise((resolve, reject) => {
    socket.onOpen(resolve)
    socket.onError(reject)
  })
  socket.connect()
  sockets.push(socket)
  await opened
  assert.equal(socket.conn.protocol, "phoenix")
  const ch = socket.channel("project:js-auth-" + uid(), { protocol: 1, client_id: uid(), last_seq: null })
  const reply = await joined(ch)
  assert.equal(reply.seq, 0)
})

test("authToken with a forged token is refused at the upgrade", async () => {
  const socket = new Socket(server.url, { transport: WebSocket, authToken: "forged.token", reconnectAfterMs: () => 60_000 })
  const failed = new Promise((resolve) => socket.onError(resolve))
  socket.connect()
  sockets.push(socket)
  await failed
  assert.equal(socket.isConnected(), false)
})
