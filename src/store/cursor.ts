import type { Address, Hex } from 'viem'
import type { OnboardRequest } from '../chain/registry.ts'
import { DEFAULT_MAX_OPEN_PER_REQUESTER, DEFAULT_MAX_OPEN_REQUESTS } from '../config.ts'
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

/** Caps on the unanswered requests the store keeps (host settings `watcher.*`, docs/protocol.md#limits). */
export type OpenRequestCaps = { maxOpenPerRequester: number; maxOpenRequests: number }

/** What one `advance` evicted to stay under the caps, and what is left. */
export type CapEviction = { perRequester: number; refused: number; levelled: number; open: number; overCap: number }

/** Refusal reasons that are not final (src/node/auto.ts TEMPORARY_REFUSALS): a request refused so is judged again. */
const NOT_FINAL = ['collateral_unavailable', 'measurement_not_yet_active', 'rate_limited', 'temporarily_unavailable', 'stale_chain_view']

/**
 * The chain watcher's persisted state (docs/protocol.md#node-state "chain cursor"): processed block hashes (the highest is the
 * cursor) and the registry events seen, keyed by request id so that processing twice changes nothing.
 *
 * Anyone can post onboarding requests, each naming any key (its requester is that key's address), so the rows they leave
 * are capped (docs/protocol.md#limits). Each `advance` that stored a request evicts unanswered rows, in this order, until
 * the caps hold:
 * 1. per requester, all but its `maxOpenPerRequester` latest: only a requester's own later requests push out its
 *    earlier ones. Someone who copies a newcomer's key into requests of their own can push out the newcomer's request
 *    this way, but those requests already spend the newcomer's verification budget (the same delay, documented at
 *    docs/protocol.md#limits), and an answer to any of them is encrypted to the newcomer's key;
 * 2. past `maxOpenRequests` in all: first the requests this node has already refused for good (it will not judge them
 *    again, so nobody loses anything), oldest first;
 * 3. then levelling: the rows that are the deepest in their own requester's history go first (every requester's
 *    oldest of many before anyone's second-latest, and never anyone's latest), so a flood from few keys pays for
 *    itself and a newcomer with one open request is never pushed out by other keys' requests;
 * 4. what is left is one unjudged request per requester. Those are never evicted: the cap is then exceeded, logged,
 *    and the node judges them (step 2 then frees their rows). Many keys cost nothing to make, but each request is a
 *    paid registry call (gas for its storage plus a blob), so this backlog grows only as fast as someone pays for it,
 *    and expiry pruning drops it after requestTtl.
 */
export function createCursorStore(db: Db, caps: OpenRequestCaps = { maxOpenPerRequester: DEFAULT_MAX_OPEN_PER_REQUESTER, maxOpenRequests: DEFAULT_MAX_OPEN_REQUESTS }) {
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

  const openCount = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM watched_requests WHERE onboarded_block IS NULL')
  // Step 1: a requester's unanswered rows beyond its latest `?`.
  const trimRequester = db.prepare<[string, string, number]>(
    `DELETE FROM watched_requests WHERE requester = ? AND onboarded_block IS NULL AND request_id NOT IN (
       SELECT request_id FROM watched_requests WHERE requester = ? AND onboarded_block IS NULL
       ORDER BY block_number DESC, CAST(request_id AS INTEGER) DESC LIMIT ?)`,
  )
  // Step 2: unanswered rows this node refused for good, oldest first, at most `?`.
  const evictRefused = db.prepare<[number]>(
    `DELETE FROM watched_requests WHERE request_id IN (
       SELECT w.request_id FROM watched_requests w JOIN requests r ON r.request_id = w.request_id
       WHERE w.onboarded_block IS NULL AND r.decision = 'refused' AND COALESCE(r.reason, '') NOT IN (${NOT_FINAL.map((r) => `'${r}'`).join(', ')})
       ORDER BY w.block_number, CAST(w.request_id AS INTEGER) LIMIT ?)`,
  )
  // Step 3: levelling, at most `?` rows, never a requester's latest (rank 1).
  const evictLevelled = db.prepare<[number]>(
    `DELETE FROM watched_requests WHERE request_id IN (
       SELECT request_id FROM (
         SELECT request_id, block_number, ROW_NUMBER() OVER (PARTITION BY requester ORDER BY block_number DESC, CAST(request_id AS INTEGER) DESC) AS rank
         FROM watched_requests WHERE onboarded_block IS NULL)
       WHERE rank > 1 ORDER BY rank DESC, block_number, CAST(request_id AS INTEGER) LIMIT ?)`,
  )

  /** Steps 1-4 above, for the requesters that just stored requests. */
  function enforceCaps(requesters: Set<string>): CapEviction | undefined {
    let perRequester = 0
    for (const requester of requesters) perRequester += trimRequester.run(requester, requester, caps.maxOpenPerRequester).changes
    let open = openCount.get()!.n
    let refused = 0
    let levelled = 0
    if (open > caps.maxOpenRequests) {
      refused = evictRefused.run(open - caps.maxOpenRequests).changes
      open -= refused
    }
    if (open > caps.maxOpenRequests) {
      levelled = evictLevelled.run(open - caps.maxOpenRequests).changes
      open -= levelled
    }
    const overCap = Math.max(0, open - caps.maxOpenRequests)
    return perRequester + refused + levelled + overCap > 0 ? { perRequester, refused, levelled, open, overCap } : undefined
  }

  const advance = db.transaction((to: { number: bigint; hash: Hex }, events: WatchedEvent[], eventBlocks: { number: bigint; hash: Hex }[]) => {
    const requesters = new Set<string>()
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
        requesters.add(r.requester.toLowerCase())
      } else if (e.kind === 'Onboarded') {
        setOnboarded.run(Number(e.blockNumber), e.transactionHash, e.responseBlobHash, Number(e.index), e.blockHash, e.requestId.toString())
      }
    }
    for (const b of eventBlocks) putBlock.run(Number(b.number), b.hash)
    putBlock.run(Number(to.number), to.hash)
    prune.run(Number(to.number) - KEEP_BLOCKS)
    return requesters.size > 0 ? enforceCaps(requesters) : undefined
  })

  return {
    caps,
    cursor(): { number: bigint; hash: Hex } | undefined {
      const row = head.get()
      return row ? { number: BigInt(row.number), hash: row.hash as Hex } : undefined
    },
    /** Stored block hashes, highest first. */
    blocks(): { number: bigint; hash: Hex }[] {
      return blocksDesc.all().map((r) => ({ number: BigInt(r.number), hash: r.hash as Hex }))
    },
    /**
     * Records the events of a processed range and moves the cursor to `to`, atomically, then holds the caps on
     * unanswered requests; returns what that evicted (undefined when nothing was and the caps hold).
     */
    advance: advance as (to: { number: bigint; hash: Hex }, events: WatchedEvent[], eventBlocks: { number: bigint; hash: Hex }[]) => CapEviction | undefined,
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
    /** How many requests are stored with no `Onboarded` event. */
    openCount(): number {
      return openCount.get()!.n
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
