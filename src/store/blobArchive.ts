import type { Hex } from 'viem'
import type { Db } from './database.ts'

/** Every blob the node used, by versioned hash; callers store only blobs already checked against their hash. */
export function createBlobArchive(db: Db) {
  const put = db.prepare<[string, Uint8Array, number]>(
    'INSERT OR IGNORE INTO blobs (versioned_hash, data, stored_at) VALUES (?, ?, ?)',
  )
  const get = db.prepare<[string], { data: Buffer }>('SELECT data FROM blobs WHERE versioned_hash = ?')
  // length() of a BLOB reads its size from the record header, not the blob itself.
  const stats = db.prepare<[], { blobs: number; bytes: number }>('SELECT COUNT(*) AS blobs, COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM blobs')
  return {
    put(versionedHash: Hex, data: Uint8Array, now: number): void {
      put.run(versionedHash.toLowerCase(), data, now)
    },
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
