// The OpenAPI documents against the apps they describe: every route either listener serves is documented with its
// method (and nothing else is), and the committed docs/openapi/*.json are what `npm run openapi` writes today.
// (test/operator.test.ts validates the documents as OpenAPI 3.1 and parses live answers with their schemas.)
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import pino from 'pino'
import { createBlobArchive } from '../store/blobArchive.ts'
import { openDatabase } from '../store/database.ts'
import { createMetrics } from '../monitor/metrics.ts'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { createHostApp } from './host.ts'
import { hostOpenApiDocument, podOpenApiDocument } from './openapi.ts'
import { createPodApp } from './pod.ts'

const logger = pino({ level: 'silent' })
const unused = () => {
  throw new Error('not called: the test reads the route table only')
}

function podApp() {
  const master = createMasterSecret(new Uint8Array(32).fill(1))
  return createPodApp({
    node: { state: 'ready', generation: 1, master: () => master },
    chainId: 31337,
    registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    settingsDigest: `0x${'d1'.repeat(32)}`,
    appIds: {},
    identity: { devnet: false, staticNames: {}, reverseLookup: async () => [] },
    quoteProvider: { getQuote: unused },
    version: '0.0.0-test',
    logger,
  } as unknown as Parameters<typeof createPodApp>[0])
}

function hostApp() {
  return createHostApp({
    node: { bootstrap: unused, register: unused, complete: unused, helpByRef: unused, status: unused, state: 'ready' },
    blobs: createBlobArchive(openDatabase(':memory:')),
    token: 't'.repeat(32),
    logger,
    monitor: { snapshot: unused },
    metrics: createMetrics({ processMetrics: false }),
  } as unknown as Parameters<typeof createHostApp>[0])
}

/** `METHOD /path/{param}` for every route handler an app registered (middleware, registered for every method, left out). */
function servedRoutes(app: { routes: { method: string; path: string }[] }): string[] {
  const routes = app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`)
  return [...new Set(routes)].sort()
}

function documentedRoutes(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
    .sort()
}

test('default: every route of the pod listener is in its OpenAPI document, and only those', () => {
  assert.deepEqual(servedRoutes(podApp()), documentedRoutes(podOpenApiDocument() as never))
})

test('default: every route of the host listener is in its OpenAPI document, and only those', () => {
  assert.deepEqual(servedRoutes(hostApp()), documentedRoutes(hostOpenApiDocument() as never))
})

test('default: docs/openapi/*.json are current (npm run openapi)', () => {
  for (const [name, doc] of [['pod', podOpenApiDocument()], ['host', hostOpenApiDocument()]] as const) {
    const committed = readFileSync(new URL(`../../docs/openapi/${name}.json`, import.meta.url), 'utf8')
    assert.equal(committed, JSON.stringify(doc, null, 2) + '\n', `docs/openapi/${name}.json is stale: run npm run openapi`)
  }
})
