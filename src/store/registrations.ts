import type { Hex } from 'viem'
import type { Db } from './database.ts'

export type RegistrationStatus = 'prepared' | 'requested' | 'completed' | 'expired'

export type Registration = {
  address: Hex
  pubkey64: Hex
  /** The ephemeral secret key sealed by the seal provider; null with the `none` provider (kept in memory only). */
  sealedKey: Uint8Array | null
  refBlockNumber: bigint
  refBlockHash: Hex
  requestId: bigint | null
  txHash: Hex | null
  status: RegistrationStatus
  createdAt: number
  updatedAt: number
}

type Row = {
  address: string
  pubkey64: string
  sealed_key: Buffer | null
  ref_block_number: number
  ref_block_hash: string
  request_id: string | null
  tx_hash: string | null
  status: string
  created_at: number
  updated_at: number
}

function fromRow(row: Row): Registration {
  return {
    address: row.address as Hex,
    pubkey64: row.pubkey64 as Hex,
    sealedKey: row.sealed_key ? new Uint8Array(row.sealed_key) : null,
    refBlockNumber: BigInt(row.ref_block_number),
    refBlockHash: row.ref_block_hash as Hex,
    requestId: row.request_id === null ? null : BigInt(row.request_id),
    txHash: row.tx_hash as Hex | null,
    status: row.status as RegistrationStatus,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

/** This node's own registrations (docs/protocol.md#register), keyed by the ephemeral key's address. */
export function createRegistrationStore(db: Db) {
  const insert = db.prepare(
    `INSERT INTO registrations (address, pubkey64, sealed_key, ref_block_number, ref_block_hash, request_id, tx_hash,
       status, created_at, updated_at)
     VALUES (@address, @pubkey64, @sealed_key, @ref_block_number, @ref_block_hash, NULL, NULL, 'prepared', @now, @now)`,
  )
  const byAddress = db.prepare<[string], Row>('SELECT * FROM registrations WHERE address = ?')
  const latestOpen = db.prepare<[], Row>(
    `SELECT * FROM registrations WHERE status IN ('prepared', 'requested') ORDER BY created_at DESC, rowid DESC LIMIT 1`,
  )
  const setRequested = db.prepare<[string | null, string | null, number, string]>(
    `UPDATE registrations SET request_id = COALESCE(?, request_id), tx_hash = COALESCE(?, tx_hash), status = 'requested',
       updated_at = ? WHERE address = ?`,
  )
  const latestCompleted = db.prepare<[], Row>(
    `SELECT * FROM registrations WHERE status = 'completed' AND request_id IS NOT NULL ORDER BY updated_at DESC, rowid DESC LIMIT 1`,
  )
  const setStatus = db.prepare<[string, number, string]>('UPDATE registrations SET status = ?, updated_at = ? WHERE address = ?')
  return {
    insert(r: { address: Hex; pubkey64: Hex; sealedKey: Uint8Array | null; refBlockNumber: bigint; refBlockHash: Hex; now: number }) {
      insert.run({
        address: r.address.toLowerCase(),
        pubkey64: r.pubkey64,
        sealed_key: r.sealedKey,
        ref_block_number: Number(r.refBlockNumber),
        ref_block_hash: r.refBlockHash,
        now: r.now,
      })
    },
    get(address: Hex): Registration | undefined {
      const row = byAddress.get(address.toLowerCase())
      return row ? fromRow(row) : undefined
    },
    latestOpen(): Registration | undefined {
      const row = latestOpen.get()
      return row ? fromRow(row) : undefined
    },
    /** The registration this node became a member with: its key is the node key (docs/protocol.md#members-and-node-keys). */
    latestCompleted(): Registration | undefined {
      const row = latestCompleted.get()
      return row ? fromRow(row) : undefined
    },
    markRequested(address: Hex, requestId: bigint | null, txHash: Hex | null, now: number) {
      setRequested.run(requestId === null ? null : requestId.toString(), txHash, now, address.toLowerCase())
    },
    setStatus(address: Hex, status: RegistrationStatus, now: number) {
      setStatus.run(status, now, address.toLowerCase())
    },
  }
}
export type RegistrationStore = ReturnType<typeof createRegistrationStore>
