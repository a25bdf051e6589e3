import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { openDatabase } from './database.ts'
import { createBlobArchive } from './blobArchive.ts'
import { createRequestStore } from './requests.ts'

const dbFile = () => join(mkdtempSync(join(tmpdir(), 'km-archive-')), 'keymanager.sqlite')
const hash = (n: number) => `0x01${n.toString(16).padStart(62, '0')}` as const

test('default: the archive stores up to maxBytes, then says full and keeps what it has', () => {
  const archive = createBlobArchive(openDatabase(dbFile()), { maxBytes: 250 })
  assert.equal(archive.put(hash(1), new Uint8Array(100).fill(1), 1), 'stored')
  assert.equal(archive.put(hash(1), new Uint8Array(100).fill(1), 2), 'exists')
  assert.equal(archive.put(hash(2), new Uint8Array(100).fill(2), 3), 'stored')
  assert.equal(archive.put(hash(3), new Uint8Array(100).fill(3), 4), 'full')
  assert.equal(archive.put(hash(4), new Uint8Array(50).fill(4), 5), 'stored', 'exactly maxBytes fits')
  assert.deepEqual(archive.stats(), { blobs: 3, bytes: 250 })
  assert.equal(archive.get(hash(3)), undefined)
  assert.deepEqual(archive.get(hash(2)), new Uint8Array(100).fill(2))
  assert.throws(() => createBlobArchive(openDatabase(dbFile()), { maxBytes: -1 }), { name: 'RangeError' })
})

test('default: decisions about expired requests are dropped, fulfilled ones kept', () => {
  const requests = createRequestStore(openDatabase(dbFile()))
  const record = (id: bigint, blockNumber: bigint, decision: 'fulfilled' | 'refused' | 'pending') =>
    requests.record({ requestId: id, requester: '0x00000000000000000000000000000000000000aa', blockNumber, decision, reason: decision === 'refused' ? 'bad_envelope' : null, message: null, measurementId: null, settingsDigest: null, fulfillTx: null, decidedAt: 1 })
  for (let i = 0n; i < 10n; i++) record(i, 100n + i, 'refused')
  record(20n, 101n, 'fulfilled')
  record(21n, 101n, 'pending')
  assert.equal(requests.count(), 12)
  assert.equal(requests.pruneExpired(105n), 6, 'refused 0-4 and the pending one, mined before block 105')
  assert.equal(requests.count(), 6)
  assert.equal(requests.get(20n)?.decision, 'fulfilled')
  assert.equal(requests.get(4n), undefined)
  assert.equal(requests.get(5n)?.decision, 'refused')
})
