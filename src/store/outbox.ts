import type { Address, Hex } from 'viem'
import type { Db } from './database.ts'

/** signed: stored, maybe not yet broadcast; sent: broadcast at least once; mined: a receipt exists; dropped: the nonce was used by another tx. */
export type OutboxStatus = 'signed' | 'sent' | 'mined' | 'dropped'

/** The fields a signed transaction was built from, as JSON-safe strings (bigints in decimal). */
export type OutboxParams = {
  chainId: number
  to: Address
  data: Hex
  gas: string
  maxFeePerGas: string
  maxPriorityFeePerGas: string
  maxFeePerBlobGas?: string
}

export type OutboxEntry = {
  id: number
  account: Address
  nonce: number
  label: string
  params: OutboxParams
  /** The raw blobs (131072 bytes each, concatenated): sidecars are re-derived from them for a fee bump. */
  blobs: Uint8Array | null
  /** The network form to broadcast: for a blob tx, the wrapper with its sidecar (docs/protocol.md#blob-transactions). */
  rawTx: Hex
  /** Blob txs: the wrapper version of `rawTx` (0 pre-Osaka, 1 EIP-7594 cell proofs); null for other txs. */
  sidecarVersion: number | null
  txHashes: Hex[]
  status: OutboxStatus
  broadcastBlock: bigint | null
  minedHash: Hex | null
  minedBlock: bigint | null
  minedBlockHash: Hex | null
  receiptStatus: 'success' | 'reverted' | null
  createdAt: number
}

type Row = {
  id: number
  account: string
  nonce: number
  label: string
  params: string
  blobs: Buffer | null
  raw_tx: string
  sidecar_version: number | null
  tx_hashes: string
  status: string
  broadcast_block: number | null
  mined_hash: string | null
  mined_block: number | null
  mined_block_hash: string | null
  receipt_status: string | null
  created_at: number
}

function fromRow(row: Row): OutboxEntry {
  return {
    id: row.id,
    account: row.account as Address,
    nonce: row.nonce,
    label: row.label,
    params: JSON.parse(row.params) as OutboxParams,
    blobs: row.blobs ? new Uint8Array(row.blobs) : null,
    rawTx: row.raw_tx as Hex,
    sidecarVersion: row.sidecar_version,
    txHashes: JSON.parse(row.tx_hashes) as Hex[],
    status: row.status as OutboxStatus,
    broadcastBlock: row.broadcast_block === null ? null : BigInt(row.broadcast_block),
    minedHash: row.mined_hash as Hex | null,
    minedBlock: row.mined_block === null ? null : BigInt(row.mined_block),
    minedBlockHash: row.mined_block_hash as Hex | null,
    receiptStatus: row.receipt_status as OutboxEntry['receiptStatus'],
    createdAt: row.created_at,
  }
}

/** The tx outbox table (docs/protocol.md#node-state). Every write is its own FULL-synchronous transaction. */
export function createOutboxStore(db: Db) {
  const maxNonce = db.prepare<[string], { n: number | null }>('SELECT MAX(nonce) AS n FROM outbox WHERE account = ?')
  const insert = db.prepare(
    `INSERT INTO outbox (account, nonce, label, params, blobs, raw_tx, sidecar_version, tx_hashes, status, created_at, updated_at)
     VALUES (@account, @nonce, @label, @params, @blobs, @raw_tx, @sidecar_version, @tx_hashes, 'signed', @now, @now)`,
  )
  const byId = db.prepare<[number], Row>('SELECT * FROM outbox WHERE id = ?')
  const open = db.prepare<[string], Row>(`SELECT * FROM outbox WHERE account = ? AND status IN ('signed', 'sent') ORDER BY nonce`)
  const minedToRecheck = db.prepare<[string, number, number], Row>(
    `SELECT * FROM outbox WHERE account = ? AND status = 'mined' AND (mined_block >= ? OR nonce >= ?) ORDER BY nonce`,
  )
  const all = db.prepare<[string], Row>('SELECT * FROM outbox WHERE account = ? ORDER BY nonce')
  const labelled = db.prepare<[string, string], Row>('SELECT * FROM outbox WHERE account = ? AND label = ? ORDER BY nonce')
  const setSent = db.prepare<[number, number, number]>(`UPDATE outbox SET status = 'sent', broadcast_block = ?, updated_at = ? WHERE id = ?`)
  const replace = db.prepare<[string, string, number | null, string, number, number, number]>(
    `UPDATE outbox SET params = ?, raw_tx = ?, sidecar_version = ?, tx_hashes = ?, status = 'sent', broadcast_block = ?, updated_at = ? WHERE id = ?`,
  )
  const rewrap = db.prepare<[string, number, number, number]>(`UPDATE outbox SET raw_tx = ?, sidecar_version = ?, updated_at = ? WHERE id = ?`)
  const setMined = db.prepare<[string, number, string, string, number, number]>(
    `UPDATE outbox SET status = 'mined', mined_hash = ?, mined_block = ?, mined_block_hash = ?, receipt_status = ?, updated_at = ? WHERE id = ?`,
  )
  const unmine = db.prepare<[number, number]>(
    `UPDATE outbox SET status = 'sent', mined_hash = NULL, mined_block = NULL, mined_block_hash = NULL, receipt_status = NULL,
       broadcast_block = NULL, updated_at = ? WHERE id = ?`,
  )
  const setDropped = db.prepare<[number, number]>(`UPDATE outbox SET status = 'dropped', updated_at = ? WHERE id = ?`)

  return {
    /** The next nonce this store would assign: one past the highest it ever stored (or `floor` if higher). */
    nextNonce(account: Address, floor: number): number {
      const n = maxNonce.get(account.toLowerCase())?.n
      return Math.max(n === null || n === undefined ? 0 : n + 1, floor)
    },
    insert(e: {
      account: Address
      nonce: number
      label: string
      params: OutboxParams
      blobs: Uint8Array | null
      rawTx: Hex
      sidecarVersion: number | null
      txHash: Hex
      now: number
    }): number {
      const result = insert.run({
        account: e.account.toLowerCase(),
        nonce: e.nonce,
        label: e.label,
        params: JSON.stringify(e.params),
        blobs: e.blobs,
        raw_tx: e.rawTx,
        sidecar_version: e.sidecarVersion,
        tx_hashes: JSON.stringify([e.txHash]),
        now: e.now,
      })
      return Number(result.lastInsertRowid)
    },
    get(id: number): OutboxEntry | undefined {
      const row = byId.get(id)
      return row ? fromRow(row) : undefined
    },
    open(account: Address): OutboxEntry[] {
      return open.all(account.toLowerCase()).map(fromRow)
    },
    /**
     * Mined entries a reorg may have taken away: mined at or above `block`, or with a nonce at or above `chainNonce`
     * (the account's nonce on chain), which cannot be mined on the canonical chain however deep the reorg was.
     */
    minedToRecheck(account: Address, block: bigint, chainNonce: number): OutboxEntry[] {
      return minedToRecheck.all(account.toLowerCase(), Number(block), chainNonce).map(fromRow)
    },
    all(account: Address): OutboxEntry[] {
      return all.all(account.toLowerCase()).map(fromRow)
    },
    /** One label's entries: what a flow looks up in its own history without reading every stored tx and its blobs. */
    labelled(account: Address, label: string): OutboxEntry[] {
      return labelled.all(account.toLowerCase(), label).map(fromRow)
    },
    markSent(id: number, block: bigint, now: number) {
      setSent.run(Number(block), now, id)
    },
    replace(id: number, params: OutboxParams, rawTx: Hex, sidecarVersion: number | null, txHashes: Hex[], block: bigint, now: number) {
      replace.run(JSON.stringify(params), rawTx, sidecarVersion, JSON.stringify(txHashes), Number(block), now, id)
    },
    /** The same signed tx in another blob wrapper (its hash is unchanged). */
    rewrap(id: number, rawTx: Hex, sidecarVersion: number, now: number) {
      rewrap.run(rawTx, sidecarVersion, now, id)
    },
    markMined(id: number, r: { hash: Hex; blockNumber: bigint; blockHash: Hex; status: 'success' | 'reverted' }, now: number) {
      setMined.run(r.hash, Number(r.blockNumber), r.blockHash, r.status, now, id)
    },
    /** A reorg took the mined tx away: it is pending again and will be rebroadcast. */
    unmine(id: number, now: number) {
      unmine.run(now, id)
    },
    markDropped(id: number, now: number) {
      setDropped.run(now, id)
    },
  }
}
export type OutboxStore = ReturnType<typeof createOutboxStore>
