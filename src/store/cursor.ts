import type { Address, Hex } from 'viem'
import type { OnboardRequest } from '../chain/registry.ts'
import type { Db } from './database.ts'

/** Block hashes kept below the cursor, to find where a reorg forked. */
const KEEP_BLOCKS = 512

/** The `Onboarded` event of a request: where its answer is (docs/protocol.md#complete). */
export type OnboardedRecord = { responseBlobHash: Hex; index: bigint; blockNumber: bigint; blockHash: Hex; transactionHash: Hex }

export type WatchedRequest = OnboardRequest & { onboardedBlock: bigint | null; onboardedTx: Hex | null; onboarded: OnboardedRecord | null }

type RequestRow = {
  request_id: string
  event: string
  block_number: number
  onboarded_block: number | null
  onboarded_tx: string | null
  onboarded_blob_hash: string | null
  onboarded_index: number | null
  onboarded_block_hash: string | null
}

function fromRow(row: RequestRow): WatchedRequest {
  const e = JSON.parse(row.event) as Record<string, string>
  return {
    requestId: BigInt(row.request_id),
    requester: e.requester as Address,
    pubkey64: e.pubkey64 as Hex,
    quoteBlobHash: e.quoteBlobHash as Hex,
    refBlockNumber: BigInt(e.refBlockNumber!),
    refBlockHash: e.refBlockHash as Hex,
    blockNumber: BigInt(row.block_number),
    blockHash: e.blockHash as Hex,
    transactionHash: e.transactionHash as Hex,
    onboardedBlock: row.onboarded_block === null ? null : BigInt(row.onboarded_block),
    onboardedTx: row.onboarded_tx as Hex | null,
    onboarded:
      row.onboarded_block === null || row.onboarded_blob_hash === null || row.onboarded_index === null || row.onboarded_block_hash === null
        ? null
        : {
            responseBlobHash: row.onboarded_blob_hash as Hex,
            index: BigInt(row.onboarded_index),
            blockNumber: BigInt(row.onboarded_block),
            blockHash: row.onboarded_block_hash as Hex,
            transactionHash: row.onboarded_tx as Hex,
          },
  }
}

export type WatchedEvent =
  | { kind: 'OnboardRequested'; request: OnboardRequest }
  | { kind: 'Onboarded'; requestId: bigint; responseBlobHash: Hex; index: bigint; blockNumber: bigint; blockHash: Hex; transactionHash: Hex }
  | { kind: 'Bootstrapped'; blockNumber: bigint }

/**
 * The chain watcher's persisted state (docs/protocol.md#node-state "chain cursor"): processed block hashes (the highest is the
 * cursor) and the registry events seen, keyed by request id so that processing twice changes nothing.
 */
export function createCursorStore(db: Db) {
  const head = db.prepare<[], { number: number; hash: string }>('SELECT number, hash FROM chain_blocks ORDER BY number DESC LIMIT 1')
  const blocksDesc = db.prepare<[], { number: number; hash: string }>('SELECT number, hash FROM chain_blocks ORDER BY number DESC')
  const putBlock = db.prepare<[number, string]>('INSERT INTO chain_blocks (number, hash) VALUES (?, ?) ON CONFLICT (number) DO UPDATE SET hash = excluded.hash')
  const prune = db.prepare<[number]>('DELETE FROM chain_blocks WHERE number < ?')
  const putRequest = db.prepare<[string, string, number, string]>(
    'INSERT OR IGNORE INTO watched_requests (request_id, event, block_number, requester) VALUES (?, ?, ?, ?)',
  )
  const setOnboarded = db.prepare<[number, string, string, number, string, string]>(
    `UPDATE watched_requests SET onboarded_block = ?, onboarded_tx = ?, onboarded_blob_hash = ?, onboarded_index = ?, onboarded_block_hash = ?
     WHERE request_id = ? AND onboarded_block IS NULL`,
  )
  const dropBlocks = db.prepare<[number]>('DELETE FROM chain_blocks WHERE number > ?')
  const dropRequests = db.prepare<[number]>('DELETE FROM watched_requests WHERE block_number > ?')
  const dropOnboarded = db.prepare<[number]>(
    `UPDATE watched_requests SET onboarded_block = NULL, onboarded_tx = NULL, onboarded_blob_hash = NULL, onboarded_index = NULL,
       onboarded_block_hash = NULL WHERE onboarded_block > ?`,
  )
  const latestBy = db.prepare<[string], RequestRow>(
    'SELECT * FROM watched_requests WHERE requester = ? ORDER BY block_number DESC, CAST(request_id AS INTEGER) DESC LIMIT 1',
  )
  const pending = db.prepare<[], RequestRow>('SELECT * FROM watched_requests WHERE onboarded_block IS NULL ORDER BY CAST(request_id AS INTEGER)')
  const byId = db.prepare<[string], RequestRow>('SELECT * FROM watched_requests WHERE request_id = ?')
  const all = db.prepare<[], RequestRow>('SELECT * FROM watched_requests ORDER BY CAST(request_id AS INTEGER)')
  // Unanswered requests mined before `?` (expired on chain), except each requester's latest: a newcomer finds its own
  // request by its key (latestRequestBy), and that row stays until a newer one replaces it.
  const pruneUnanswered = db.prepare<[number]>(
    // Each requester's latest is found in one pass (a window function), not by a lookup per row: a correlated
    // subquery took 4 s over one spammer's 10,000 rows, on the help path.
    `DELETE FROM watched_requests WHERE onboarded_block IS NULL AND block_number < ? AND request_id NOT IN (
       SELECT request_id FROM (
         SELECT request_id, ROW_NUMBER() OVER (PARTITION BY requester ORDER BY block_number DESC, CAST(request_id AS INTEGER) DESC) AS rank
         FROM watched_requests)
       WHERE rank = 1)`,
  )

  return {
    cursor(): { number: bigint; hash: Hex } | undefined {
      const row = head.get()
      return row ? { number: BigInt(row.number), hash: row.hash as Hex } : undefined
    },
    /** Stored block hashes, highest first. */
    blocks(): { number: bigint; hash: Hex }[] {
      return blocksDesc.all().map((r) => ({ number: BigInt(r.number), hash: r.hash as Hex }))
    },
    /** Records the events of a processed range and moves the cursor to `to`, atomically. */
    advance: db.transaction((to: { number: bigint; hash: Hex }, events: WatchedEvent[], eventBlocks: { number: bigint; hash: Hex }[]) => {
      for (const e of events) {
        if (e.kind === 'OnboardRequested') {
          const r = e.request
          const event = JSON.stringify({
            requester: r.requester,
            pubkey64: r.pubkey64,
            quoteBlobHash: r.quoteBlobHash,
            refBlockNumber: r.refBlockNumber.toString(),
            refBlockHash: r.refBlockHash,
            blockHash: r.blockHash,
            transactionHash: r.transactionHash,
          })
          putRequest.run(r.requestId.toString(), event, Number(r.blockNumber), r.requester.toLowerCase())
        } else if (e.kind === 'Onboarded') {
          setOnboarded.run(Number(e.blockNumber), e.transactionHash, e.responseBlobHash, Number(e.index), e.blockHash, e.requestId.toString())
        }
      }
      for (const b of eventBlocks) putBlock.run(Number(b.number), b.hash)
      putBlock.run(Number(to.number), to.hash)
      prune.run(Number(to.number) - KEEP_BLOCKS)
    }),
    /** Forgets everything above `block` (a reorg forked there): those blocks are processed again. */
    rollback: db.transaction((block: bigint) => {
      dropBlocks.run(Number(block))
      dropRequests.run(Number(block))
      dropOnboarded.run(Number(block))
    }),
    /** Requests seen on chain with no `Onboarded` event yet. */
    pendingRequests(): WatchedRequest[] {
      return pending.all().map(fromRow)
    },
    request(requestId: bigint): WatchedRequest | undefined {
      const row = byId.get(requestId.toString())
      return row ? fromRow(row) : undefined
    },
    /** The latest request seen from `requester` (the newcomer's registration key). */
    latestRequestBy(requester: Address): WatchedRequest | undefined {
      const row = latestBy.get(requester.toLowerCase())
      return row ? fromRow(row) : undefined
    },
    requests(): WatchedRequest[] {
      return all.all().map(fromRow)
    },
    /**
     * Forgets requests mined before `beforeBlock` that were never answered (they expired on chain: nobody can fulfil
     * them), keeping each requester's latest, so a flood of requests leaves about one TTL's worth of rows
     * (docs/protocol.md#limits). Returns how many went.
     */
    pruneExpired(beforeBlock: bigint): number {
      return pruneUnanswered.run(Number(beforeBlock)).changes
    },
  }
}
export type CursorStore = ReturnType<typeof createCursorStore>
