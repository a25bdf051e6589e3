import { parseCollateral, type CachedCollateral, type Collateral } from '../tee/collateral.ts'
import type { Db } from './database.ts'

/** A `CollateralCache` whose calls are synchronous (better-sqlite3). */
export type SqliteCollateralCache = {
  get(key: string): CachedCollateral | undefined
  put(key: string, collateral: Collateral, expiresAt: number): void
}

/**
 * DCAP collateral fetched from a PCCS, kept across restarts (docs/protocol.md#node-state, docs/protocol.md#tee-providers) under `collateralCacheKey` keys. An
 * entry past its `expiresAt` is never returned and is deleted on the next write. Stored collateral is re-validated
 * on read: a row that no longer parses is a miss, never an error. Collateral is public data; it is still verified
 * in full on every use.
 */
export function createCollateralCache(db: Db, { now = () => Math.floor(Date.now() / 1000) }: { now?: () => number } = {}): SqliteCollateralCache {
  const select = db.prepare<[string, number], { collateral: string; expires_at: number }>(
    'SELECT collateral, expires_at FROM collateral_cache WHERE key = ? AND expires_at > ?',
  )
  const upsert = db.prepare<[string, string, number, number]>(
    `INSERT INTO collateral_cache (key, collateral, expires_at, stored_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET collateral = excluded.collateral, expires_at = excluded.expires_at, stored_at = excluded.stored_at`,
  )
  const prune = db.prepare<[number]>('DELETE FROM collateral_cache WHERE expires_at <= ?')
  return {
    get(key: string): CachedCollateral | undefined {
      const row = select.get(key, now())
      if (!row) return undefined
      try {
        return { collateral: parseCollateral(JSON.parse(row.collateral)), expiresAt: row.expires_at }
      } catch {
        return undefined
      }
    },
    put(key: string, collateral: Collateral, expiresAt: number): void {
      if (!Number.isSafeInteger(expiresAt)) throw new RangeError(`expiresAt must be unix seconds, got ${expiresAt}`)
      const at = now()
      db.transaction(() => {
        prune.run(at)
        upsert.run(key, JSON.stringify(collateral), expiresAt, at)
      })()
    },
  }
}
