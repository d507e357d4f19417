// The editor's ProjectSync against a scripted channel and engine: which push
// answers it acts on. No server; the engine stands in for tandem_wasm.
import { test } from "node:test"
import assert from "node:assert/strict"
import { ProjectSync } from "../editor/sync.js"

// A push whose answers the test delivers by hand.
class ScriptedPush {
  constructor(payload) {
    this.payload = payload
    this.handlers = {}
  }
  receive(status, callback) {
    this.handlers[status] = callback
    return this
  }
  answer(status, response) {
    this.handlers[status](response)
  }
}

function scripted() {
  const pushes = []
  const channel = {
    state: "joined",
    on() {},
    onError() {},
    onClose() {},
    push(event, payload) {
      const push = new ScriptedPush(payload)
      pushes.push(push)
      return push
    },
  }
  const socket = { channel: () => channel }
  const calls = []
  let pending = [{ batch_id: 1, diffs: [] }]
  const engine = {
    pending: () => JSON.stringify(pending),
    acknowledged: (id, seq) => calls.push(["acknowledged", id, seq]),
    rejected: (id) => calls.push(["rejected", id]),
    rekey: (id) => {
      calls.push(["rekey", id])
      pending = [{ batch_id: 2, diffs: [] }]
      return 2
    },
  }
  const sync = new ProjectSync(socket, "p", "me", engine, () => {})
  return { sync, pushes, calls }
}

test("a refusal of an earlier push of a batch pushed again since is ignored", () => {
  const { sync, pushes, calls } = scripted()
  sync.resend(1)
  sync.resend(1)
  assert.equal(pushes.length, 2)
  // The first push's answer says what the server knew before the second
  // arrived; the second may be sequenced, so the batch keeps its id.
  pushes[0].answer("error", { reason: "not_sequenced" })
  pushes[0].answer("timeout")
  assert.deepEqual(calls, [])
  assert.equal(pushes.length, 2, "nothing pushed again")
  // The latest push's own answer decides.
  pushes[1].answer("error", { reason: "not_sequenced" })
  assert.deepEqual(calls, [["rekey", 1]])
})

test("the answer to the latest push is acted on, and an ok is always taken", () => {
  const { sync, pushes, calls } = scripted()
  sync.resend(1)
  sync.resend(1)
  pushes[0].answer("ok", { seq: 7 })
  pushes[1].answer("error", { reason: "forbidden" })
  assert.deepEqual(calls, [
    ["acknowledged", 1, 7],
    ["rejected", 1],
  ])
})
