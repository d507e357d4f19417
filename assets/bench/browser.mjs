// Browser benchmark: the demo page's download sizes and its first load in
// headless Chromium against the real server (started here): navigation to
// the wasm engine ready and to the project joined (editable), over RUNS fresh
// browser contexts (empty cache each), then the cost of one local edit in
// the wasm engine on a document of LAYERS layers. Run scripts/build-web first.
import { readFileSync } from "node:fs"
import { gzipSync } from "node:zlib"
import { startServer } from "../test/server.mjs"
import { launch, openEditor } from "../e2e/browser.mjs"

const RUNS = Number(process.env.RUNS || 7)
const LAYERS = Number(process.env.LAYERS || 500)
const root = new URL("../../priv/static/", import.meta.url).pathname

const kb = (n) => `${(n / 1024).toFixed(1)} KB`
for (const file of ["wasm/tandem_wasm_bg.wasm", "wasm/tandem_wasm.js", "editor.js", "index.html", "editor.css"]) {
  const bytes = readFileSync(root + file)
  console.log(`${file}: ${kb(bytes.length)} raw, ${kb(gzipSync(bytes, { level: 9 }).length)} gzip -9`)
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const server = await startServer()
const chrome = await launch()
try {
  const marks = []
  for (let i = 0; i < RUNS; i++) {
    const page = await openEditor(chrome.browser, server.http, `bench-${i}`, `Bench ${i}`)
    marks.push(
      await page.evaluate(() => {
        const at = (name) => performance.getEntriesByName(name)[0].startTime
        const nav = performance.getEntriesByType("navigation")[0]
        return { dom: nav.domContentLoadedEventEnd, wasm: at("tandem:wasm-ready"), joined: at("tandem:joined") }
      }),
    )
    await page.context().close()
  }
  for (const key of ["dom", "wasm", "joined"]) {
    const xs = marks.map((m) => m[key])
    console.log(`first load, ${key}: median ${median(xs).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (${RUNS} runs)`)
  }

  const page = await openEditor(chrome.browser, server.http, "bench-edit", "Bench")
  const perEdit = await page.evaluate((layers) => {
    const { engine } = window.tandem
    for (let i = 0; i < layers; i++) engine.add_layer(`l${i}`, JSON.stringify({ name: `L${i}`, x: i, y: i, w: 10, h: 10 }))
    const n = 2000
    const t0 = performance.now()
    for (let i = 0; i < n; i++) engine.translate(`l${i % layers}`, 1, 1)
    const edit = (performance.now() - t0) / n
    const t1 = performance.now()
    for (let i = 0; i < 50; i++) engine.layers()
    return { edit, layers: (performance.now() - t1) / 50 }
  }, LAYERS)
  console.log(`local edit (translate) in wasm, ${LAYERS} layers: ${(perEdit.edit * 1000).toFixed(1)} µs each`)
  console.log(`layer list for rendering (engine.layers(), JSON), ${LAYERS} layers: ${perEdit.layers.toFixed(2)} ms`)
  await page.context().close()
} finally {
  await chrome.close()
  await server.stop()
}
