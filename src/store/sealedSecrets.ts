import type { Db } from './database.ts'

export type SealedSecretRow = { generation: number; xPub: string; sealed: Uint8Array; createdAt: number }

type Row = { generation: number; x_pub: string; sealed: Buffer; created_at: number }
const fromRow = (row: Row): SealedSecretRow => ({ generation: row.generation, xPub: row.x_pub, sealed: new Uint8Array(row.sealed), createdAt: row.created_at })

/** Sealed master secrets by generation (docs/protocol.md#node-state). The bytes are ciphertext from a seal provider, never the secret. */
export function createSealedSecretStore(db: Db) {
  const insert = db.prepare<[number, string, Uint8Array, number]>(
    'INSERT INTO sealed_secrets (generation, x_pub, sealed, created_at) VALUES (?, ?, ?, ?)',
  )
  // A generation's secret never changes: a second put of the same generation keeps the first row.
  const put = db.prepare<[number, string, Uint8Array, number]>(
    'INSERT INTO sealed_secrets (generation, x_pub, sealed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (generation) DO NOTHING',
  )
  const latest = db.prepare<[], Row>('SELECT generation, x_pub, sealed, created_at FROM sealed_secrets ORDER BY generation DESC LIMIT 1')
  const all = db.prepare<[], Row>('SELECT generation, x_pub, sealed, created_at FROM sealed_secrets ORDER BY generation')
  const remove = db.prepare<[number]>('DELETE FROM sealed_secrets WHERE generation = ?')
  return {
    insert(row: SealedSecretRow): void {
      insert.run(row.generation, row.xPub, row.sealed, row.createdAt)
    },
    put(row: SealedSecretRow): void {
      put.run(row.generation, row.xPub, row.sealed, row.createdAt)
    },
    latest(): SealedSecretRow | undefined {
      const row = latest.get()
      return row ? fromRow(row) : undefined
    },
    all(): SealedSecretRow[] {
      return all.all().map(fromRow)
    },
    /** A purged generation (docs/protocol.md#onboarding-across-generations): its sealed copy goes too. */
    delete(generation: number): void {
      remove.run(generation)
    },
  }
}
export type SealedSecretStore = ReturnType<typeof createSealedSecretStore>
