import type { Hex } from 'viem'
import type { Db } from './database.ts'

export type RequestDecision = 'fulfilled' | 'refused' | 'pending'

export type RequestRecord = {
  requestId: bigint
  requester: Hex
  blockNumber: bigint
  decision: RequestDecision
  reason: string | null
  message: string | null
  measurementId: Hex | null
  /** The newcomer's settingsDigest from its envelope (bound by its quote once the report data matched). */
  settingsDigest: Hex | null
  fulfillTx: Hex | null
  decidedAt: number
}

type Row = {
  request_id: string
  requester: string
  block_number: number
  decision: string
  reason: string | null
  message: string | null
  measurement_id: string | null
  settings_digest: string | null
  fulfill_tx: string | null
  decided_at: number
}

function fromRow(row: Row): RequestRecord {
  return {
    requestId: BigInt(row.request_id),
    requester: row.requester as Hex,
    blockNumber: BigInt(row.block_number),
    decision: row.decision as RequestDecision,
    reason: row.reason,
    message: row.message,
    measurementId: row.measurement_id as Hex | null,
    settingsDigest: row.settings_digest as Hex | null,
    fulfillTx: row.fulfill_tx as Hex | null,
    decidedAt: row.decided_at,
  }
}

/** Each onboarding request this node judged as a helper, with the decision and its reason (docs/protocol.md#node-state). */
export function createRequestStore(db: Db) {
  const upsert = db.prepare(
    `INSERT INTO requests (request_id, requester, block_number, decision, reason, message, measurement_id, settings_digest, fulfill_tx, decided_at)
     VALUES (@request_id, @requester, @block_number, @decision, @reason, @message, @measurement_id, @settings_digest, @fulfill_tx, @decided_at)
     ON CONFLICT (request_id) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
       message = excluded.message, measurement_id = COALESCE(excluded.measurement_id, requests.measurement_id),
       settings_digest = COALESCE(excluded.settings_digest, requests.settings_digest),
       fulfill_tx = COALESCE(excluded.fulfill_tx, requests.fulfill_tx), decided_at = excluded.decided_at`,
  )
  const get = db.prepare<[string], Row>('SELECT * FROM requests WHERE request_id = ?')
  const recent = db.prepare<[number], Row>('SELECT * FROM requests ORDER BY decided_at DESC, CAST(request_id AS INTEGER) DESC LIMIT ?')
  const prune = db.prepare<[number]>("DELETE FROM requests WHERE decision <> 'fulfilled' AND block_number < ?")
  const count = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM requests')
  return {
    record(r: RequestRecord): void {
      upsert.run({
        request_id: r.requestId.toString(),
        requester: r.requester.toLowerCase(),
        block_number: Number(r.blockNumber),
        decision: r.decision,
        reason: r.reason,
        message: r.message,
        measurement_id: r.measurementId,
        settings_digest: r.settingsDigest,
        fulfill_tx: r.fulfillTx,
        decided_at: r.decidedAt,
      })
    },
    get(requestId: bigint): RequestRecord | undefined {
      const row = get.get(requestId.toString())
      return row ? fromRow(row) : undefined
    },
    recent(limit: number): RequestRecord[] {
      return recent.all(limit).map(fromRow)
    },
    /**
     * Forgets every decision but `fulfilled` about requests mined before `beforeBlock` (the caller passes head −
     * requestTtl: those requests have expired on chain, nobody can act on them any more). Returns how many went.
     * Fulfilled ones stay: they are what `audit` and operators look back on, and each cost a helper a transaction.
     */
    pruneExpired(beforeBlock: bigint): number {
      return prune.run(Number(beforeBlock)).changes
    },
    count(): number {
      return count.get()!.n
    },
  }
}
export type RequestStore = ReturnType<typeof createRequestStore>
