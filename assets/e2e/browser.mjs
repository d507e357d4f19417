// Headless Chromium (Debian's package) driven by playwright-core, with the
// flags this kind of machine needs (no sandbox as root, no background
// networking: the network is closed), and helpers to open the editor.
import { chromium } from "playwright-core"

export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // playwright gives each launch a fresh, empty profile of its own.
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  })
  return {
    browser,
    async close() {
      await browser.close()
    },
  }
}

/** Opens the editor on `project` as `name` (dev sign-in) in its own context. */
export async function openEditor(browser, http, project, name) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 700 } })
  const page = await context.newPage()
  page.setDefaultTimeout(10_000)
  page.on("pageerror", (e) => console.error(`[${name}] page error:`, e.message))
  await page.goto(`${http}/?project=${encodeURIComponent(project)}&name=${encodeURIComponent(name)}`)
  await page.waitForFunction(() => window.tandem && window.tandem.online())
  return page
}

/** Waits until nothing is pending and the page's layers settle on a state. */
export async function settled(page) {
  await page.waitForFunction(() => window.tandem.online() && window.tandem.pending() === 0)
  return page.evaluate(() => ({ layers: window.tandem.layers(), checksum: window.tandem.checksum() }))
}
