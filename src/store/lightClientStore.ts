import type { Db } from './database.ts'

export type LightClientStoreRow = { sealed: Uint8Array; finalizedSlot: number; updatedAt: number }

/**
 * The sealed light-client store (docs/protocol.md#verified-chain-view): a single row, replaced on every change. The bytes
 * are ciphertext from the node's seal provider; `finalizedSlot` is an unsealed copy for operators, never read back
 * as a fact.
 */
export function createLightClientStoreTable(db: Db) {
  const get = db.prepare<[], { sealed: Buffer; finalized_slot: number; updated_at: number }>(
    'SELECT sealed, finalized_slot, updated_at FROM light_client_store WHERE id = 1',
  )
  const put = db.prepare<[Uint8Array, number, number]>(
    `INSERT INTO light_client_store (id, sealed, finalized_slot, updated_at) VALUES (1, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET sealed = excluded.sealed, finalized_slot = excluded.finalized_slot, updated_at = excluded.updated_at`,
  )
  const clear = db.prepare('DELETE FROM light_client_store')
  return {
    get(): LightClientStoreRow | undefined {
      const row = get.get()
      if (!row) return undefined
      return { sealed: new Uint8Array(row.sealed), finalizedSlot: row.finalized_slot, updatedAt: row.updated_at }
    },
    put(row: LightClientStoreRow): void {
      put.run(row.sealed, row.finalizedSlot, row.updatedAt)
    },
    clear(): void {
      clear.run()
    },
  }
}
export type LightClientStoreTable = ReturnType<typeof createLightClientStoreTable>
