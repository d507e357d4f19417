// Transport benchmark: `node assets/bench/transport.mjs` (server started here, on loopback).
// Prints memory per idle connection with three topics joined, fan-out latency from one sender to
// 1,000 receivers, and edit (push → ack) latency with 1,000 clients in 100 projects at 2 batches/s.
// The load generator shares the machine's 2 cores with the server: figures include its cost, and
// its JSON parsing inflates them. BENCHMARKS.md quotes `MIX_ENV=dev mix run bench/transport.exs`
// (native/tandem_loadgen: one thread, minimal parsing) instead; this one stays as a cross-check.
import WebSocket from "ws"
import { startServer } from "../test/server.mjs"

const N_IDLE = Number(process.env.IDLE_CONNECTIONS || 2000)
const server = await startServer()
const token = server.token("bench")
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] }

async function metric(name) {
  const text = await (await fetch(`${server.http}/metrics`)).text()
  return Number(text.split("\n").find((l) => l.startsWith(`tandem_${name} `)).split(" ")[1])
}

function client() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url}/websocket?vsn=2.0.0&token=${token}`)
    const pending = new Map()
    const handlers = []
    let ref = 0
    const joinRefs = {}
    ws.on("message", (data) => {
      const [jr, r, topic, event, payload] = JSON.parse(data)
      if (event === "phx_reply" && pending.has(r)) { pending.get(r)(payload); pending.delete(r) }
      handlers.forEach((h) => h(topic, event, payload))
    })
    ws.on("open", () => resolve({
      ws,
      on: (h) => handlers.push(h),
      push(topic, event, payload) {
        const r = String(++ref)
        if (event === "phx_join") joinRefs[topic] = r
        return new Promise((res) => { pending.set(r, res); ws.send(JSON.stringify([joinRefs[topic] ?? null, r, topic, event, payload])) })
      },
    }))
    ws.on("error", reject)
  })
}

async function joinAll(c, project, i) {
  const cid = `c${i}-${Math.random()}`
  const j = await c.push(`project:${project}`, "phx_join", { protocol: 1, client_id: cid, last_seq: null })
  await c.push(`presence:${project}`, "phx_join", { client_id: cid })
  await c.push(`cursors:${project}`, "phx_join", { client_id: cid })
  return j
}

try {
  // 1. Memory per idle connection (three topics joined).
  await sleep(500)
  const before = await metric("vm_memory_bytes")
  const idle = []
  for (let i = 0; i < N_IDLE; i++) {
    const c = await client()
    await joinAll(c, `idle-${i % 100}`, i)
    idle.push(c)
  }
  await sleep(3000) // let connection processes hibernate
  const after = await metric("vm_memory_bytes")
  console.log(`memory per idle connection, 3 topics joined (${N_IDLE} connections): ${Math.round((after - before) / N_IDLE / 1024)} KB`)
  idle.forEach((c) => c.ws.close())
  await sleep(1000)

  // 2. Fan-out: one sender, 1,000 receivers in one project.
  const receivers = []
  for (let i = 0; i < 1000; i++) {
    const c = await client()
    await c.push("project:fan", "phx_join", { protocol: 1, client_id: `r${i}`, last_seq: null })
    receivers.push(c)
  }
  const sentAt = new Map()
  const lat = []
  receivers.forEach((c) => c.on((topic, event, p) => { if (event === "batch" && sentAt.has(p.batch_id)) lat.push(performance.now() - sentAt.get(p.batch_id)) }))
  const sender = await client()
  await sender.push("project:fan", "phx_join", { protocol: 1, client_id: "sender", last_seq: null })
  for (let b = 1; b <= 50; b++) {
    sentAt.set(b, performance.now())
    sender.push("project:fan", "diffs", { batch_id: b, diffs: [{ op: "add", id: `f${b}`, attrs: { name: "x" } }] })
    await sleep(40)
  }
  await sleep(2000)
  console.log(`fan-out 1 → 1,000: ${lat.length} deliveries, p50 ${pct(lat, 0.5).toFixed(1)} ms, p99 ${pct(lat, 0.99).toFixed(1)} ms`)
  receivers.forEach((c) => c.ws.close()); sender.ws.close()
  await sleep(1000)

  // 3. Edit latency: 1,000 clients in 100 projects, 2 batches/s each, 10 s.
  const editors = []
  for (let i = 0; i < 1000; i++) {
    const c = await client()
    await c.push(`project:edit-${i % 100}`, "phx_join", { protocol: 1, client_id: `e${i}`, last_seq: null })
    c.project = `project:edit-${i % 100}`
    editors.push(c)
  }
  const acks = []
  let batch = 0
  const started = performance.now()
  await Promise.all(editors.map(async (c, i) => {
    await sleep(Math.random() * 500)
    for (let k = 1; performance.now() - started < 10_000; k++) {
      const t = performance.now()
      batch++
      const reply = await c.push(c.project, "diffs", { batch_id: k, diffs: [{ op: "set", id: "none", key: "x", value: k }] })
      if (reply.status === "ok") acks.push(performance.now() - t)
      await sleep(500 - (performance.now() - t))
    }
  }))
  console.log(`edit latency, 1,000 clients / 100 projects / 2 batches/s: ${acks.length} acks, p50 ${pct(acks, 0.5).toFixed(1)} ms, p99 ${pct(acks, 0.99).toFixed(1)} ms`)
  editors.forEach((c) => c.ws.close())
} finally {
  await server.stop()
}
