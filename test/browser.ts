// Headless Chromium for browser tests: Debian's `chromium` (apt-get install chromium; .ci/run installs it) driven by
// playwright-core, which never downloads a browser of its own. A missing browser fails the test with this message:
// a browser test that skips itself would pass without testing anything.
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = process.env.KEYMANAGER_CHROMIUM ?? '/usr/bin/chromium'

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: run \`apt-get install chromium\` (Debian), or set KEYMANAGER_CHROMIUM to a Chromium binary`)
  }
  // The flags keep Chromium off the network: it reaches only the pages under test. Playwright gives each launch a new
  // empty profile directory.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}
