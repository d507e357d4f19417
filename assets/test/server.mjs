// Starts the real server (mix run --no-halt) on a free port with a fresh
// DATA_DIR for a test file, mints tokens with `mix tandem.token`, and stops it.
import { spawn, execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import net from "node:net"

const root = new URL("../../", import.meta.url).pathname

async function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

export async function startServer() {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), "tandem-js-"))
  const env = { ...process.env, PORT: String(port), DATA_DIR: dataDir, MIX_ENV: "dev" }
  const proc = spawn("mix", ["run", "--no-halt"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
  let log = ""
  proc.stdout.on("data", (d) => (log += d))
  proc.stderr.on("data", (d) => (log += d))
  const deadline = Date.now() + 60_000
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`)
      if (res.ok) break
    } catch {}
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error("server did not start:\n" + log)
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    url: `ws://127.0.0.1:${port}/socket`,
    http: `http://127.0.0.1:${port}`,
    token(user, ...args) {
      const out = execFileSync("mix", ["tandem.token", user, ...args], { cwd: root, env }).toString()
      return out.trim().split("\n").pop()
    },
    async stop() {
      proc.kill("SIGTERM")
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on("exit", r)))
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
