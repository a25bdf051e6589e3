import type { Db } from './database.ts'

export type SealedSecretRow = { generation: number; xPub: string; sealed: Uint8Array; createdAt: number }

/** Sealed master secrets by generation. The bytes are ciphertext from a seal provider, never the secret. */
export function createSealedSecretStore(db: Db) {
  const insert = db.prepare<[number, string, Uint8Array, number]>(
    'INSERT INTO sealed_secrets (generation, x_pub, sealed, created_at) VALUES (?, ?, ?, ?)',
  )
  const latest = db.prepare<[], { generation: number; x_pub: string; sealed: Buffer; created_at: number }>(
    'SELECT generation, x_pub, sealed, created_at FROM sealed_secrets ORDER BY generation DESC LIMIT 1',
  )
  return {
    insert(row: SealedSecretRow): void {
      insert.run(row.generation, row.xPub, row.sealed, row.createdAt)
    },
    latest(): SealedSecretRow | undefined {
      const row = latest.get()
      if (!row) return undefined
      return { generation: row.generation, xPub: row.x_pub, sealed: new Uint8Array(row.sealed), createdAt: row.created_at }
    },
  }
}
export type SealedSecretStore = ReturnType<typeof createSealedSecretStore>
