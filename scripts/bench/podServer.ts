// A pod listener in its own process for `npm run soak` and the bench: the production pod app (createPodApp behind the
// pod metrics wrapper, the dstack routes on it) with a ready master secret and simulated quotes, served by
// @hono/node-server as the sidecar serves it. No chain: what it measures is the pod-serving path a sidecar runs for
// as long as it lives. Prints {"port","pid"} on its first line.
import { serve } from '@hono/node-server'
import pino from 'pino'
import { randomBytes } from '@noble/hashes/utils.js'
import { createPodApp } from '../../src/app/pod.ts'
import { createDevnetPki } from '../../src/devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../../src/devnet/simulated.ts'
import { createMetrics } from '../../src/monitor/metrics.ts'
import { withPodMetrics } from '../../src/monitor/instrument.ts'
import { createMasterSecret } from '../../src/secret/masterSecret.ts'

const master = createMasterSecret(randomBytes(32))
const app = createPodApp({
  node: { state: 'ready', generation: 1, master: () => master },
  chainId: 31337,
  registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  settingsDigest: `0x${'d1'.repeat(32)}`,
  appIds: {},
  identity: { devnet: true, staticNames: {} },
  quoteProvider: simulatedQuoteProvider({ platform: createDevnetPki().mintPlatform(), measurement: simulatedMeasurement('soak') }),
  version: '0.0.0-soak',
  logger: pino({ level: 'warn' }),
})
serve({ fetch: withPodMetrics(app, createMetrics()).fetch, hostname: '127.0.0.1', port: 0 }, (info) =>
  process.stdout.write(`${JSON.stringify({ port: info.port, pid: process.pid })}\n`),
)
