// The monitor on real stores (SQLite in memory): the outbox as the status page and the metrics show it (nonces, fees,
// age, stuck transactions), the watcher lag, and the page's outbox table rendered from that snapshot.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import parsePrometheus from 'parse-prometheus-text-format'
import pino from 'pino'
import type { Address, Hex } from 'viem'
import { StatusContent } from '../app/status/page.tsx'
import { createBlobArchive } from '../store/blobArchive.ts'
import { createCursorStore } from '../store/cursor.ts'
import { openDatabase } from '../store/database.ts'
import { createMetaStore } from '../store/meta.ts'
import { createOutboxStore, type OutboxParams } from '../store/outbox.ts'
import { createAlerts } from './alerts.ts'
import { createMetrics } from './metrics.ts'
import { createMonitor } from './monitor.ts'

const ACCOUNT: Address = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const NOW = 1_800_000_000
const logger = pino({ level: 'silent' })
const params = (gwei: bigint, blob?: bigint): OutboxParams => ({
  chainId: 31337,
  to: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  data: '0x',
  gas: '100000',
  maxFeePerGas: (gwei * 10n ** 9n).toString(),
  maxPriorityFeePerGas: 10n ** 9n + '',
  ...(blob !== undefined ? { maxFeePerBlobGas: (blob * 10n ** 9n).toString() } : {}),
})

function setup() {
  const db = openDatabase(':memory:')
  const store = createOutboxStore(db)
  const metrics = createMetrics({ processMetrics: false })
  const node = {
    state: 'ready',
    generation: 1,
    async status() {
      return { state: 'ready', generation: 1, xPub: null, fingerprint: null, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3', chainId: 31337, requests: [] }
    },
  }
  const monitor = createMonitor({
    metrics,
    node: node as never,
    cursor: createCursorStore(db),
    blobs: createBlobArchive(db),
    outbox: { store, account: ACCOUNT, bumpAfterBlocks: 3 },
    checkPlatform: async () => ({ ok: false, reason: 'not checked', message: 'not checked', checkedAt: NOW }) as never,
    alerts: createAlerts({
      settings: { collateralExpiryDays: 7, minGasBalanceWei: 0n, tcbRecoveryNoticeDays: 30 },
      logger,
      metrics,
      meta: createMetaStore(db),
      now: () => NOW,
    }),
    peers: [],
    logger,
    now: () => NOW,
  })
  return { store, metrics, monitor }
}

const hash = (byte: string) => `0x${byte.repeat(32)}` as Hex

test('default: the outbox shows each open tx with its nonce and fees, and one broadcast bumpAfterBlocks ago as stuck', async () => {
  const { store, metrics, monitor } = setup()
  const stuckId = store.insert({ account: ACCOUNT, nonce: 7, label: 'fulfillOnboard', params: params(30n, 2n), blobs: null, sidecarVersion: null, rawTx: '0x01', txHash: hash('aa'), now: NOW - 600 })
  store.markSent(stuckId, 100n, NOW - 590)
  const freshId = store.insert({ account: ACCOUNT, nonce: 8, label: 'confirmOnboard', params: params(40n), blobs: null, sidecarVersion: null, rawTx: '0x02', txHash: hash('bb'), now: NOW - 20 })
  store.markSent(freshId, 102n, NOW - 20)
  const mined = store.insert({ account: ACCOUNT, nonce: 6, label: 'requestOnboard', params: params(30n), blobs: null, sidecarVersion: null, rawTx: '0x03', txHash: hash('cc'), now: NOW - 900 })
  store.markMined(mined, { hash: hash('cc'), blockNumber: 90n, blockHash: hash('dd'), status: 'success' }, NOW - 880)
  monitor.onHead(103n)

  const snapshot = await monitor.snapshot()
  assert.deepEqual(
    snapshot.outbox!.entries.map((e) => [e.nonce, e.label, e.stuck, e.ageSeconds, e.maxFeePerGas, e.maxFeePerBlobGas, e.txHash]),
    [
      [7, 'fulfillOnboard', true, 600, '30000000000', '2000000000', hash('aa')],
      [8, 'confirmOnboard', false, 20, '40000000000', null, hash('bb')],
    ],
  )

  const families = parsePrometheus(await metrics.registry.metrics())
  const gauge = (name: string) => Number(families.find((f) => f.name === name)!.metrics[0]!.value)
  assert.equal(gauge('keymanager_outbox_depth'), 2)
  assert.equal(gauge('keymanager_outbox_stuck_txs'), 1)
  assert.equal(gauge('keymanager_outbox_oldest_age_seconds'), 600)

  const html = await StatusContent({ snapshot: await monitor.snapshot() }).toString()
  const outbox = html.slice(html.indexOf('id="outbox"'))
  const rows = [...outbox.matchAll(/<tr><td>(\d+)<\/td><td>([a-zA-Z]+)<\/td><td><span class="badge (\w+)"[^>]*>(\w+)<\/span><\/td><td>([^<]+)<\/td><td>([^<]+)<\/td><td>(?:<span class="none">—<\/span>|([^<]+))<\/td>/g)]
  assert.deepEqual(
    rows.map((m) => m.slice(1, 8)),
    [
      ['7', 'fulfillOnboard', 'bad', 'stuck', '30 gwei', '1 gwei', '2 gwei'],
      ['8', 'confirmOnboard', 'warn', 'sent', '40 gwei', '1 gwei', undefined],
    ],
  )
})

test('default: a node without a gas key shows no outbox and says why', async () => {
  const { monitor } = setup()
  const snapshot = { ...(await monitor.snapshot()), outbox: null, gas: null }
  const html = await StatusContent({ snapshot }).toString()
  assert.match(html, /No gas key: this node sends no transactions\./)
})
