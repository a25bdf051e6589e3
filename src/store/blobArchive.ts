import type { Hex } from 'viem'
import type { Db } from './database.ts'

/** What `put` did: stored it, had it already, or left it out because the archive holds `maxBytes` already. */
export type ArchivePut = 'stored' | 'exists' | 'full'

/**
 * The blobs the node acted on, by versioned hash (docs/protocol.md#limits); callers store only blobs already checked
 * against their hash. At most `maxBytes` of blob data: past it, `put` stores nothing and says `full` (the caller logs
 * it); what is archived is never evicted, since peers and audits may need it after beacon nodes pruned it.
 */
export function createBlobArchive(db: Db, options: { maxBytes?: number } = {}) {
  const maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a byte count, got ${maxBytes}`)
  const put = db.prepare<[string, Uint8Array, number]>(
    'INSERT OR IGNORE INTO blobs (versioned_hash, data, stored_at) VALUES (?, ?, ?)',
  )
  const get = db.prepare<[string], { data: Buffer }>('SELECT data FROM blobs WHERE versioned_hash = ?')
  const has = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM blobs WHERE versioned_hash = ?')
  // length() of a BLOB reads its size from the record header, not the blob itself.
  const stats = db.prepare<[], { blobs: number; bytes: number }>('SELECT COUNT(*) AS blobs, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM blobs')
  return {
    put(versionedHash: Hex, data: Uint8Array, now: number): ArchivePut {
      const key = versionedHash.toLowerCase()
      if (has.get(key)) return 'exists'
      if (stats.get()!.bytes + data.length > maxBytes) return 'full'
      put.run(key, data, now)
      return 'stored'
    },
    maxBytes,
    get(versionedHash: Hex): Uint8Array | undefined {
      const row = get.get(versionedHash.toLowerCase())
      return row ? new Uint8Array(row.data) : undefined
    },
    /** How many blobs the archive keeps and their total size. */
    stats(): { blobs: number; bytes: number } {
      return stats.get()!
    },
  }
}
export type BlobArchive = ReturnType<typeof createBlobArchive>
