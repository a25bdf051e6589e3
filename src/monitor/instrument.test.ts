// The counters fed where events happen (instrument.ts), read back from the parsed exposition: a refusal counted under
// its reason on the real request store (SQLite), and each way a blob source fails counted under its own result label,
// through the same fallback fetch the node uses (real HTTP peers, real KZG commitments).
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { test } from 'node:test'
import parsePrometheus from 'parse-prometheus-text-format'
import { hexToBytes, toBlobs, toHex, type Hex } from 'viem'
import type { BlobSource } from '../chain/beacon.ts'
import { blobToCommitment, commitmentToVersionedHash } from '../chain/kzg.ts'
import { fetchVerifiedBlobsWithFallback, peerArchiveBlobSource } from '../chain/peerBlobs.ts'
import { openDatabase } from '../store/database.ts'
import { createRequestStore } from '../store/requests.ts'
import { blobFetchObserver, instrumentRequestStore } from './instrument.ts'
import { createMetrics, type Metrics } from './metrics.ts'

/** Every sample of `name` as `label=value,… → value`, sorted. */
async function samples(metrics: Metrics, name: string): Promise<string[]> {
  const family = parsePrometheus(await metrics.registry.metrics()).find((f) => f.name === name)
  assert.ok(family, `${name} is exported`)
  return family.metrics
    .map((m) => `${Object.entries(m.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',')} → ${m.value}`)
    .sort()
}

test('metrics: a refused request is counted under its refusal reason, a fulfilled one under "none"', async () => {
  const metrics = createMetrics({ processMetrics: false })
  const store = instrumentRequestStore(createRequestStore(openDatabase(':memory:')), metrics)
  const base = { requester: '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Hex, blockNumber: 10n, measurementId: null, settingsDigest: null, fulfillTx: null, decidedAt: 1 }
  store.record({ ...base, requestId: 1n, decision: 'refused', reason: 'measurement_not_allowed', message: 'not on the allow-list' })
  store.record({ ...base, requestId: 2n, decision: 'refused', reason: 'measurement_not_allowed', message: 'not on the allow-list' })
  store.record({ ...base, requestId: 3n, decision: 'refused', reason: 'report_data_mismatch', message: 'report data does not bind the key' })
  store.record({ ...base, requestId: 4n, decision: 'fulfilled', reason: null, message: null, fulfillTx: `0x${'ab'.repeat(32)}` })
  assert.deepEqual(await samples(metrics, 'keymanager_onboarding_decisions_total'), [
    'decision=fulfilled,reason=none → 1',
    'decision=refused,reason=measurement_not_allowed → 2',
    'decision=refused,reason=report_data_mismatch → 1',
  ])
  // The store behind the counter recorded each of them.
  assert.deepEqual(
    store.recent(10).map((r) => [r.requestId, r.decision, r.reason]),
    [
      [4n, 'fulfilled', null],
      [3n, 'refused', 'report_data_mismatch'],
      [2n, 'refused', 'measurement_not_allowed'],
      [1n, 'refused', 'measurement_not_allowed'],
    ],
  )
})

const blob = hexToBytes(toBlobs({ data: toHex('keymanager blob fetch metrics') })[0]!)
const versionedHash = toHex(commitmentToVersionedHash(blobToCommitment(blob)))
const at = { blockNumber: 1n, blockHash: `0x${'00'.repeat(32)}` as const, blockTimestamp: 0n, versionedHashes: [versionedHash] }

/** A peer's host listener answering every `/blobs/…` with `body` (status 200). */
async function peer(body: Uint8Array) {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(body)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() }
}

test('metrics: each failing blob source is counted under its failure, the source that served under ok', async () => {
  const metrics = createMetrics({ processMetrics: false })
  const forged = Uint8Array.from(blob)
  forged[100] = 1
  const lying = await peer(forged)
  const honest = await peer(blob)
  // The beacon node has pruned the blob (serves nothing), a peer serves other bytes, a peer is down, a peer has it:
  // the order and names the node wires (src/cli/serve.ts: the blob source, then each peer).
  const pruned: BlobSource = { fetchBlobs: async () => [] }
  const sources = [pruned, peerArchiveBlobSource(lying.url), peerArchiveBlobSource('http://127.0.0.1:9'), peerArchiveBlobSource(honest.url)]
  try {
    const observe = blobFetchObserver(['beacon', 'peer', 'peer', 'peer'], metrics)
    assert.deepEqual(await fetchVerifiedBlobsWithFallback(sources, at, observe), [blob])
    assert.deepEqual(await samples(metrics, 'keymanager_blob_fetches_total'), [
      'source=beacon,result=not_found → 1',
      'source=peer,result=hash_mismatch → 1',
      'source=peer,result=ok → 1',
      'source=peer,result=unreachable → 1',
    ])
    // When every source fails, each failure is still counted (and the fetch fails with the mismatch: it names a liar).
    await assert.rejects(fetchVerifiedBlobsWithFallback(sources.slice(0, 3), at, observe), { name: 'BlobHashMismatchError' })
    assert.deepEqual(await samples(metrics, 'keymanager_blob_fetches_total'), [
      'source=beacon,result=not_found → 2',
      'source=peer,result=hash_mismatch → 2',
      'source=peer,result=ok → 1',
      'source=peer,result=unreachable → 2',
    ])
  } finally {
    lying.close()
    honest.close()
  }
})
