import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Address, Hex } from 'viem'
import { createCursorStore, type WatchedEvent } from './cursor.ts'
import { openDatabase } from './database.ts'
import { createRequestStore } from './requests.ts'

const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}` as Hex
const addr = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address

function requested(requestId: number, requester: Address, blockNumber: number): WatchedEvent {
  return {
    kind: 'OnboardRequested',
    request: {
      requestId: BigInt(requestId),
      requester,
      pubkey64: `0x${'11'.repeat(64)}`,
      quoteBlobHash: hash(1000 + requestId),
      refBlockNumber: BigInt(blockNumber - 1),
      refBlockHash: hash(blockNumber - 1),
      blockNumber: BigInt(blockNumber),
      blockHash: hash(blockNumber),
      transactionHash: hash(2000 + requestId),
    },
  }
}

test('pruneExpired: unanswered requests mined before the bound go, except each requester\'s latest; answered and recent ones stay', () => {
  const cursor = createCursorStore(openDatabase(join(mkdtempSync(join(tmpdir(), 'km-cursor-')), 'db.sqlite')))
  const spammer = addr(0xbad)
  const newcomer = addr(0x1)
  const events: WatchedEvent[] = [
    ...Array.from({ length: 50 }, (_, i) => requested(i + 1, spammer, 10 + Math.floor(i / 10))), // ids 1-50, blocks 10-14
    requested(51, newcomer, 11), // the newcomer's only request: expired, unanswered, but its latest
    requested(52, addr(0x2), 12), // answered below
    requested(53, spammer, 30), // recent: not expired
  ]
  const onboarded: WatchedEvent = { kind: 'Onboarded', requestId: 52n, responseBlobHash: hash(3000), index: 0n, blockNumber: 13n, blockHash: hash(13), transactionHash: hash(4000) }
  cursor.advance({ number: 30n, hash: hash(30) }, [...events, onboarded], [])
  assert.equal(cursor.requests().length, 53)

  assert.equal(cursor.pruneExpired(20n), 50, 'the spammer\'s 50 expired requests (its latest, id 53, is recent)')
  assert.deepEqual(
    cursor.requests().map((r) => r.requestId),
    [51n, 52n, 53n],
  )
  assert.equal(cursor.latestRequestBy(newcomer)?.requestId, 51n)
  assert.equal(cursor.request(52n)?.onboarded?.responseBlobHash, hash(3000))
  assert.equal(cursor.pruneExpired(20n), 0, 'a second pass finds nothing')

  // Once the spammer's latest expires too, it stays (its requester's latest); nothing else of its goes.
  assert.equal(cursor.pruneExpired(40n), 0)
  assert.deepEqual(cursor.pendingRequests().map((r) => r.requestId), [51n, 53n])
})

test('security: the open-request caps evict a flood\'s own rows and refused ones, never a newcomer\'s only request', () => {
  const db = openDatabase(':memory:')
  const cursor = createCursorStore(db, { maxOpenPerRequester: 10, maxOpenRequests: 6 })
  const requests = createRequestStore(db)
  const spammer = addr(0xbad)
  const newcomer = addr(0x1)
  const open = () => cursor.pendingRequests().map((r) => r.requestId)

  // One key's flood: the per-requester cap keeps its 10 latest, the total cap 6 of those (its latest among them).
  const flood = Array.from({ length: 30 }, (_, i) => requested(i + 1, spammer, 10 + i))
  const first = cursor.advance({ number: 40n, hash: hash(40) }, flood, [])
  assert.deepEqual(first, { perRequester: 20, refused: 0, levelled: 4, open: 6, overCap: 0 })
  assert.deepEqual(open(), [25n, 26n, 27n, 28n, 29n, 30n])

  // A newcomer's request, then more flood: the flood's own rows make room, the newcomer's stays.
  assert.deepEqual(cursor.advance({ number: 41n, hash: hash(41) }, [requested(31, newcomer, 41)], []), { perRequester: 0, refused: 0, levelled: 1, open: 6, overCap: 0 })
  cursor.advance({ number: 42n, hash: hash(42) }, Array.from({ length: 20 }, (_, i) => requested(32 + i, spammer, 42)), [])
  assert.ok(open().includes(31n), 'the newcomer\'s request is kept')
  assert.equal(cursor.openCount(), 6)
  assert.equal(cursor.latestRequestBy(newcomer)?.requestId, 31n)

  // Many keys, one request each: levelling finds nothing to take from anyone's latest. Requests this node refused
  // for good go first (a temporary refusal stays); the rest are kept over the cap, not dropped.
  const keys = Array.from({ length: 8 }, (_, i) => requested(100 + i, addr(0x100 + i), 50))
  for (const [i, reason] of ['report_data_mismatch', 'collateral_unavailable'].entries()) {
    requests.record({ requestId: BigInt(100 + i), requester: addr(0x100 + i), blockNumber: 50n, decision: 'refused', reason, message: null, measurementId: null, settingsDigest: null, fulfillTx: null, decidedAt: 0 })
  }
  const many = cursor.advance({ number: 50n, hash: hash(50) }, keys, [])
  assert.ok(many && many.overCap > 0 && many.open === 6 + 8 - many.refused - many.levelled, JSON.stringify(many))
  assert.ok(open().includes(31n), 'the newcomer\'s request is still kept')
  assert.ok(!open().includes(100n), 'a request refused for good is evicted')
  assert.ok(open().includes(101n), 'a temporarily refused one is not')
  for (const k of keys.slice(1)) assert.ok(open().includes((k as { request: { requestId: bigint } }).request.requestId))
  assert.deepEqual(cursor.pendingRequests().filter((r) => r.requester === spammer).length, 1, 'the flood is down to its latest')
})
