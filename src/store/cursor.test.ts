import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { Address, Hex } from 'viem'
import { createCursorStore, type WatchedEvent } from './cursor.ts'
import { openDatabase } from './database.ts'

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
