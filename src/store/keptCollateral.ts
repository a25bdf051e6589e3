import type { Hex } from 'viem'
import type { Collateral } from '../tee/collateral.ts'
import { canonicalCollateralJson, canonicalJsonHash, MAX_KEPT_COLLATERAL_BYTES } from '../tee/keptCollateral.ts'
import type { Db } from './database.ts'

/** What `keep` did: stored a new collateral, reused one stored before (same hash), or kept nothing (over the size cap). */
export type KeepResult = 'stored' | 'deduplicated' | 'too_large'

/** A kept record as stored (docs/protocol.md#node-state); `collateral` is its canonical JSON text. */
export type KeptRow = { quoteBlobHash: Hex; collateralHash: Hex; judgedAt: number; collateral: string }

/**
 * Collateral kept with the decisions this node acted on (docs/protocol.md#node-state): each distinct collateral once, by
 * content hash, and per decision (the quote's blob hash) which one it used and when. Callers keep only the collateral
 * of quotes they answered (a fulfillOnboard signed), so what is kept grows with transactions this node paid for, never
 * with requests anyone can post; and one collateral over `MAX_KEPT_COLLATERAL_BYTES` is not kept.
 */
export function createKeptCollateralStore(db: Db) {
  const putCollateral = db.prepare<[string, string, number]>('INSERT OR IGNORE INTO kept_collateral (hash, collateral, stored_at) VALUES (?, ?, ?)')
  const putDecision = db.prepare<[string, string, number]>(
    'INSERT OR REPLACE INTO decision_collateral (quote_blob_hash, collateral_hash, judged_at) VALUES (?, ?, ?)',
  )
  const stats = db.prepare<[], { collaterals: number; decisions: number }>(
    'SELECT (SELECT COUNT(*) FROM kept_collateral) AS collaterals, (SELECT COUNT(*) FROM decision_collateral) AS decisions',
  )
  const reader = keptCollateralReader(db)
  // A helper answers a batch's quotes with the same collateral (one per platform type, refreshed about daily): its
  // content hash (keccak of ~16 KB, about as costly as the quote verification itself) is taken once, not per answer.
  let last: { json: string; hash: Hex } | undefined
  return {
    keep(quoteBlobHash: Hex, collateral: Collateral, judgedAt: number, now: number): KeepResult {
      const json = canonicalCollateralJson(collateral)
      if (Buffer.byteLength(json) > MAX_KEPT_COLLATERAL_BYTES) return 'too_large'
      if (last?.json !== json) last = { json, hash: canonicalJsonHash(json) }
      const hash = last.hash
      let stored = false
      db.transaction(() => {
        stored = putCollateral.run(hash, json, now).changes === 1
        putDecision.run(quoteBlobHash.toLowerCase(), hash, judgedAt)
      })()
      return stored ? 'stored' : 'deduplicated'
    },
    get: reader.get,
    /** How many distinct collaterals are kept, and for how many decisions. */
    stats(): { collaterals: number; decisions: number } {
      return stats.get()!
    },
  }
}
export type KeptCollateralStore = ReturnType<typeof createKeptCollateralStore>

/**
 * Reads kept collateral by the quote's blob hash; works on a read-only database, and on one from a build that kept none
 * (no such tables: nothing kept).
 */
export function keptCollateralReader(db: Db): { get(quoteBlobHash: Hex): KeptRow | undefined } {
  const exists = db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('kept_collateral', 'decision_collateral')").get()!
  if (exists.n !== 2) return { get: () => undefined }
  const select = db.prepare<[string], { collateral_hash: string; judged_at: number; collateral: string }>(
    `SELECT d.collateral_hash, d.judged_at, k.collateral FROM decision_collateral d JOIN kept_collateral k ON k.hash = d.collateral_hash
     WHERE d.quote_blob_hash = ?`,
  )
  return {
    get(quoteBlobHash: Hex): KeptRow | undefined {
      const row = select.get(quoteBlobHash.toLowerCase())
      return row ? { quoteBlobHash: quoteBlobHash.toLowerCase() as Hex, collateralHash: row.collateral_hash as Hex, judgedAt: row.judged_at, collateral: row.collateral } : undefined
    },
  }
}
