// End-to-end: the demo editor in two (or more) headless Chromium pages
// against the real server. Each test uses its own project.
import { test, before, after } from "node:test"
import assert from "node:assert/strict"
import { mkdirSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { startServer } from "../test/server.mjs"
import { launch, openEditor, settled } from "./browser.mjs"

let server, chrome
const root = new URL("../../", import.meta.url).pathname
let projects = 0
const project = () => `e2e-${process.pid}-${++projects}`

before(async () => {
  server = await startServer()
  chrome = await launch()
})
after(async () => {
  await chrome?.close()
  await server?.stop()
})

/** Waits until every page has nothing pending and all show the same state. */
async function converged(...pages) {
  const deadline = Date.now() + 15_000
  for (;;) {
    const states = await Promise.all(pages.map(settled))
    const same = states.every((s) => JSON.stringify(s) === JSON.stringify(states[0]))
    if (same) return states[0]
    if (Date.now() > deadline) assert.deepEqual(states[1], states[0], "pages did not converge")
    await new Promise((r) => setTimeout(r, 100))
  }
}

const names = (state) => state.layers.map((l) => l.name)
const select = (page, name) => page.click(`#layer-list li:text-is("${name}")`)

async function addLayer(page, name) {
  await page.fill("#name", name)
  await page.click("#add")
}

test("concurrent edits, including both reordering the same layers, converge", async () => {
  const p = project()
  const alice = await openEditor(chrome.browser, server.http, p, "Alice")
  const bob = await openEditor(chrome.browser, server.http, p, "Bob")
  for (const name of ["A", "B", "C", "D"]) await addLayer(alice, name)
  let state = await converged(alice, bob)
  assert.deepEqual(names(state), ["A", "B", "C", "D"])

  // Both reorder the same layers at once, and edit others.
  await Promise.all([
    (async () => {
      await select(alice, "A")
      await alice.click("#forward")
      await alice.click("#forward")
      await select(alice, "C")
      await alice.click("#backward")
      await alice.fill("#name", "")
      await alice.fill("#color", "#ff0000")
    })(),
    (async () => {
      await select(bob, "A")
      await bob.click("#forward")
      await select(bob, "D")
      await bob.click("#backward")
      await bob.click("#backward")
      await addLayer(bob, "E")
    })(),
  ])
  state = await converged(alice, bob)
  assert.equal(state.layers.length, 5)
  assert.deepEqual([...names(state)].sort(), ["A", "B", "C", "D", "E"])
  const zs = state.layers.map((l) => l.z)
  assert.equal(new Set(zs).size, zs.length, "sibling z values stay distinct")

  // Alice drags B by the mouse while Bob groups C and D.
  const before = state.layers.find((l) => l.name === "B")
  const canvas = await alice.locator("#canvas").boundingBox()
  await alice.evaluate(() => document.querySelectorAll(".remote-selection").forEach((n) => n.remove()))
  // Its bottom-left corner: the only part no other layer covers.
  const grab = [canvas.x + before.x + 5, canvas.y + before.y + before.h - 5]
  await alice.mouse.move(grab[0], grab[1])
  await alice.mouse.down()
  await alice.mouse.move(grab[0] + 50, grab[1] + 30, { steps: 4 })
  await alice.mouse.up()
  await select(bob, "C")
  await bob.click('#layer-list li:text-is("D")', { modifiers: ["Shift"] })
  await bob.click("#group")
  state = await converged(alice, bob)
  const moved = state.layers.find((l) => l.name === "B")
  assert.deepEqual([moved.x - before.x, moved.y - before.y], [50, 30])
  const group = state.layers.find((l) => l.name === "Group")
  const members = state.layers.filter((l) => l.parent === group.id).map((l) => l.name.trim())
  assert.deepEqual(members.sort(), ["C", "D"])

  // Bob resizes E by its handle.
  const e = state.layers.find((l) => l.name === "E")
  await select(bob, "E")
  const corner = [canvas.x + e.x + e.w, canvas.y + e.y + e.h]
  await bob.mouse.move(corner[0], corner[1])
  await bob.mouse.down()
  await bob.mouse.move(corner[0] + 40, corner[1] + 20, { steps: 3 })
  await bob.mouse.up()
  state = await converged(alice, bob)
  const resized = state.layers.find((l) => l.name === "E")
  assert.deepEqual([resized.w, resized.h], [e.w + 40, e.h + 20])
  await alice.context().close()
  await bob.context().close()
})

test("presence shows both users and drops one that closes its page", async () => {
  const p = project()
  const alice = await openEditor(chrome.browser, server.http, p, "Alice")
  const bob = await openEditor(chrome.browser, server.http, p, "Bob")
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => document.querySelectorAll("#avatars .avatar").length === 2)
    const shown = await page.$$eval("#avatars .avatar", (spans) => spans.map((s) => s.textContent).sort())
    assert.deepEqual(shown, ["Alice", "Bob"])
  }
  await bob.context().close()
  await alice.waitForFunction(() => [...document.querySelectorAll("#avatars .avatar")].map((s) => s.textContent).join() === "Alice")
  await alice.context().close()
})

test("a cursor moved in one page appears in the other", async () => {
  const p = project()
  const alice = await openEditor(chrome.browser, server.http, p, "Alice")
  const bob = await openEditor(chrome.browser, server.http, p, "Bob")
  await alice.waitForFunction(() => document.querySelectorAll("#avatars .avatar").length === 2)
  const box = await bob.locator("#canvas").boundingBox()
  await bob.mouse.move(box.x + 300, box.y + 200)
  await bob.mouse.move(box.x + 321, box.y + 234, { steps: 3 })
  const cursor = alice.locator(".cursor", { hasText: "Bob" })
  await cursor.waitFor()
  await alice.waitForFunction(() => {
    const c = document.querySelector(".cursor")
    return c && c.style.left === "321px" && c.style.top === "234px"
  })
  await alice.context().close()
  await bob.context().close()
})

test("undo in one page reverts only that page's edit", async () => {
  const p = project()
  const alice = await openEditor(chrome.browser, server.http, p, "Alice")
  const bob = await openEditor(chrome.browser, server.http, p, "Bob")
  await addLayer(alice, "Base")
  await converged(alice, bob)
  await select(alice, "Base")
  await alice.fill("#color", "#112233")
  await addLayer(bob, "Bobs")
  await converged(alice, bob)
  await alice.click("#canvas", { position: { x: 890, y: 550 } })
  await alice.keyboard.press("Control+z")
  let state = await converged(alice, bob)
  const base = state.layers.find((l) => l.name === "Base")
  assert.notEqual(base.color, "#112233", "Alice's recolor is undone")
  assert.deepEqual(names(state), ["Base", "Bobs"], "Bob's layer stays")
  await alice.click("#undo")
  state = await converged(alice, bob)
  assert.deepEqual(names(state), ["Bobs"], "Alice's add is undone, Bob's layer stays")
  await alice.click("#redo")
  state = await converged(alice, bob)
  assert.deepEqual([...names(state)].sort(), ["Base", "Bobs"])
  await alice.context().close()
  await bob.context().close()
})

test("a page taken offline keeps editing and converges when it comes back", async () => {
  const p = project()
  const alice = await openEditor(chrome.browser, server.http, p, "Alice")
  const bob = await openEditor(chrome.browser, server.http, p, "Bob")
  await addLayer(alice, "Shared")
  await converged(alice, bob)
  await bob.evaluate(() => window.tandem.goOffline())
  await bob.waitForSelector('#status[data-state="offline"]')
  await addLayer(bob, "Offline")
  await select(bob, "Shared")
  await bob.click("#forward")
  await bob.fill("#color", "#00aa00")
  // Shown at once, while nothing reaches the server.
  assert.ok((await bob.evaluate(() => window.tandem.layers().map((l) => l.name))).includes("Offline"))
  assert.ok((await bob.evaluate(() => window.tandem.pending())) > 0)
  await addLayer(alice, "Online")
  await select(alice, "Shared")
  await alice.click("#forward")
  await bob.evaluate(() => window.tandem.goOnline())
  const state = await converged(alice, bob)
  assert.deepEqual([...names(state)].sort(), ["Offline", "Online", "Shared"])
  assert.equal(state.layers.find((l) => l.name === "Shared").color, "#00aa00")
  await alice.context().close()
  await bob.context().close()
})

test("screenshot of the editor with two users", async () => {
  const p = project()
  const alice = await openEditor(chrome.browser, server.http, p, "Alice")
  const bob = await openEditor(chrome.browser, server.http, p, "Bob")
  const colors = { Header: "#4f8cff", Photo: "#f4a261", Caption: "#2a9d8f", Button: "#e76f51" }
  for (const [name, color] of Object.entries(colors)) {
    await alice.click("#canvas", { position: { x: 890, y: 550 } })
    await alice.fill("#color", color)
    await addLayer(alice, name)
  }
  await select(bob, "Photo")
  await select(alice, "Caption")
  await converged(alice, bob)
  const box = await bob.locator("#canvas").boundingBox()
  await bob.mouse.move(box.x + 520, box.y + 300, { steps: 2 })
  await alice.locator(".cursor", { hasText: "Bob" }).waitFor()
  await alice.locator('.remote-selection[data-user="bob"]').waitFor()
  // Into target/ (build output) unless SCREENSHOT names another file, e.g.
  // docs/screenshot.png to refresh the committed one.
  const path = resolve(root, process.env.SCREENSHOT || "target/e2e/screenshot.png")
  mkdirSync(dirname(path), { recursive: true })
  await alice.screenshot({ path })
  console.log(`screenshot: ${path}`)
  await alice.context().close()
  await bob.context().close()
})

test("a browser accepts the upgrade that carries the token in Sec-WebSocket-Protocol", async () => {
  const context = await chrome.browser.newContext()
  const page = await context.newPage()
  await page.goto(`${server.http}/healthz`)
  const token = server.token("eve", "--name", "Eve")
  const url = server.url + "/websocket?vsn=2.0.0"
  const outcome = await page.evaluate(
    ([url, token]) =>
      new Promise((resolve) => {
        // As phoenix.js does with authToken: base64 with the padding stripped.
        const offered = ["phoenix", "base64url.bearer.phx." + btoa(token).replace(/=/g, "")]
        const ws = new WebSocket(url, offered)
        ws.onopen = () => {
          ws.send(JSON.stringify([null, "1", "phoenix", "heartbeat", {}]))
        }
        ws.onmessage = (event) => resolve({ protocol: ws.protocol, reply: JSON.parse(event.data) })
        ws.onerror = () => resolve({ error: true })
      }),
    [url, token],
  )
  await context.close()
  assert.equal(outcome.protocol, "phoenix")
  assert.deepEqual(outcome.reply, [null, "1", "phoenix", "phx_reply", { status: "ok", response: {} }])
})
