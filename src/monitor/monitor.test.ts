// The monitor on real stores (SQLite in memory): the outbox as the status page and the metrics show it (nonces, fees,
// age, stuck transactions), the chain card (verified head, finality lag, peers), pending requests and decisions, each
// rendered from the snapshot by the page's own components and read back from the parsed exposition.
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

type ChainViewStatus = { head: { blockNumber: string; timestamp: number } | null; lagSeconds: number | null }
type DecisionRow = { requestId: string; requester: Address; decision: string; reason: string | null; message: string | null; fulfillTx: Hex | null }

function setup(options: { chainView?: ChainViewStatus; peers?: { url: string }[]; requests?: DecisionRow[] } = {}) {
  const db = openDatabase(':memory:')
  const store = createOutboxStore(db)
  const cursor = createCursorStore(db)
  const metrics = createMetrics({ processMetrics: false })
  const node = {
    state: 'ready',
    generation: 1,
    async status() {
      return {
        state: 'ready',
        generation: 1,
        xPub: null,
        fingerprint: null,
        registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
        chainId: 31337,
        chainView: options.chainView ?? { mode: 'light-client', head: null, lagSeconds: null },
        requests: options.requests ?? [],
      }
    },
  }
  const monitor = createMonitor({
    metrics,
    node: node as never,
    cursor,
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
    peers: options.peers ?? [],
    logger,
    now: () => NOW,
  })
  return { store, cursor, metrics, monitor }
}

/** The `<dd>` of the field labelled `label` in the page section `id`, tags stripped. */
function field(html: string, id: string, label: string): string {
  const section = html.slice(html.indexOf(`id="${id}"`))
  const match = new RegExp(`<dt[^>]*>${label}</dt><dd>(.*?)</dd>`).exec(section)
  assert.ok(match, `field ${label} in #${id}`)
  return match[1]!.replace(/<[^>]+>/g, '')
}

/** The body rows of the table `id`, each cell's text (tags stripped). */
function tableRows(html: string, id: string): string[][] {
  const section = html.slice(html.indexOf(`id="${id}"`))
  const body = section.slice(section.indexOf('<tbody>'), section.indexOf('</tbody>'))
  return [...body.matchAll(/<tr>(.*?)<\/tr>/g)].map((row) => [...row[1]!.matchAll(/<td>(.*?)<\/td>/g)].map((cell) => cell[1]!.replace(/<[^>]+>/g, '')))
}

async function gauges(metrics: ReturnType<typeof createMetrics>) {
  const families = parsePrometheus(await metrics.registry.metrics())
  return (name: string) => Number(families.find((f) => f.name === name)!.metrics[0]!.value)
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

test('default: the chain card shows the verified head and the finality lag in blocks and seconds; the gauges export them', async () => {
  const { metrics, monitor } = setup({ chainView: { head: { blockNumber: '90', timestamp: NOW - 156 }, lagSeconds: 156 } })
  monitor.onHead(103n)
  const snapshot = await monitor.snapshot()
  assert.deepEqual(
    { verifiedHead: snapshot.chain.verifiedHead, blocks: snapshot.chain.finalityLagBlocks, seconds: snapshot.chain.finalityLagSeconds },
    { verifiedHead: '90', blocks: 13, seconds: 156 },
  )
  const html = await StatusContent({ snapshot }).toString()
  assert.equal(field(html, 'chain', 'Chain head'), '103')
  assert.equal(field(html, 'chain', 'Verified head'), '90')
  assert.equal(field(html, 'chain', 'Finality lag'), '13 blocks, 2 min')
  const gauge = await gauges(metrics)
  assert.equal(gauge('keymanager_verified_head_block'), 90)
  assert.equal(gauge('keymanager_finality_lag_blocks'), 13)
  assert.equal(gauge('keymanager_finality_lag_seconds'), 156)
})

test('edge: no verified header yet shows a dash; a view one block past the watcher head is no lag', async () => {
  const before = setup()
  before.monitor.onHead(103n)
  const html = await StatusContent({ snapshot: await before.monitor.snapshot() }).toString()
  assert.equal(field(html, 'chain', 'Verified head'), '—')
  assert.equal(field(html, 'chain', 'Finality lag'), '—')

  const ahead = setup({ chainView: { head: { blockNumber: '104', timestamp: NOW - 3 }, lagSeconds: 3 } })
  ahead.monitor.onHead(103n)
  const snapshot = await ahead.monitor.snapshot()
  assert.equal(snapshot.chain.finalityLagBlocks, 0)
  assert.equal(field(await StatusContent({ snapshot }).toString(), 'chain', 'Finality lag'), '0 blocks, 3 s')
})

test('default: the chain card lists each configured peer, or says none is', async () => {
  const peers = [{ url: 'http://km-b.internal:8081' }, { url: 'https://km-c.example/' }]
  const withPeers = await StatusContent({ snapshot: await setup({ peers }).monitor.snapshot() }).toString()
  assert.equal(field(withPeers, 'chain', 'Peers'), 'http://km-b.internal:8081https://km-c.example/')
  assert.equal(field(await StatusContent({ snapshot: await setup().monitor.snapshot() }).toString(), 'chain', 'Peers'), 'none configured')
})

test('default: a request seen on chain and not yet onboarded is a pending row, counted and exported', async () => {
  const { cursor, metrics, monitor } = setup()
  const request = {
    requestId: 42n,
    requester: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address,
    pubkey64: `0x${'11'.repeat(64)}` as Hex,
    quoteBlobHash: `0x01${'22'.repeat(31)}` as Hex,
    refBlockNumber: 99n,
    refBlockHash: hash('33'),
    blockNumber: 100n,
    blockHash: hash('44'),
    transactionHash: hash('55'),
  }
  cursor.advance({ number: 100n, hash: hash('44') }, [{ kind: 'OnboardRequested', request }], [])
  const snapshot = await monitor.snapshot()
  const html = await StatusContent({ snapshot }).toString()
  assert.equal(field(html, 'funds', 'Pending requests'), '1')
  const [row, ...others] = tableRows(html, 'pending')
  assert.deepEqual(others, [])
  assert.equal(row![0], '42')
  assert.equal(row![1], '0x3C44CdDd…4293BC')
  assert.equal(row![2], '100')
  assert.equal((await gauges(metrics))('keymanager_pending_requests'), 1)

  // Once answered on chain it is gone from the table.
  cursor.advance({ number: 101n, hash: hash('66') }, [{ kind: 'Onboarded', requestId: 42n, responseBlobHash: hash('77'), index: 0n, blockNumber: 101n, blockHash: hash('66'), transactionHash: hash('88') }], [])
  assert.deepEqual(tableRows(await StatusContent({ snapshot: await monitor.snapshot() }).toString(), 'pending'), [])
})

test('default: a refused decision shows with its reason and message in a red badge row', async () => {
  const requests: DecisionRow[] = [
    { requestId: '8', requester: '0x90F79bf6EB2c4f870365E785982E1f101E93b906', decision: 'refused', reason: 'measurement_not_allowed', message: 'measurement 0xabc… is not on the allow-list', fulfillTx: null },
    { requestId: '7', requester: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', decision: 'fulfilled', reason: null, message: null, fulfillTx: hash('99') },
  ]
  const html = await StatusContent({ snapshot: await setup({ requests }).monitor.snapshot() }).toString()
  const rows = tableRows(html, 'decisions')
  assert.deepEqual(rows[0], ['8', '0x90F79bf6…93b906', 'refused', 'measurement_not_allowed', 'measurement 0xabc… is not on the allow-list', '—'])
  assert.deepEqual(rows[1]!.slice(0, 4), ['7', '0x3C44CdDd…4293BC', 'fulfilled', '—'])
  assert.match(html, /<span class="badge bad">refused<\/span>/)
})
