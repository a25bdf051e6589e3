// The only module that imports c-kzg (docs/protocol.md#limits: KZG lives in one place). The trusted setup takes ~1.4 s
// to load, so it is loaded on first use (a blob made or checked), never at start-up: a sidecar that restarts with
// nothing to send or fetch does not pay for it. `isKzgLoaded()` lets tests check that.
import { createRequire } from 'node:module'
import { sha256 } from '@noble/hashes/sha2.js'
import { defineKzg, type Kzg } from 'viem'

/** EIP-7594: a blob is extended to 128 cells; a v1 sidecar carries one proof per cell. */
export const CELLS_PER_EXT_BLOB = 128

type CKzg = {
  loadTrustedSetup(precompute: number, path?: string): void
  blobToKzgCommitment(blob: Uint8Array): Uint8Array
  computeBlobKzgProof(blob: Uint8Array, commitment: Uint8Array): Uint8Array
  verifyBlobKzgProof(blob: Uint8Array, commitment: Uint8Array, proof: Uint8Array): boolean
  computeCells(blob: Uint8Array): Uint8Array[]
  computeCellsAndKzgProofs(blob: Uint8Array): [Uint8Array[], Uint8Array[]]
  verifyCellKzgProofBatch(commitments: Uint8Array[], cellIndices: number[], cells: Uint8Array[], proofs: Uint8Array[]): boolean
}

let loaded: { ckzg: CKzg; kzg: Kzg } | undefined

function load(): { ckzg: CKzg; kzg: Kzg } {
  if (loaded) return loaded
  const require = createRequire(import.meta.url)
  const ckzg = require('c-kzg') as CKzg
  // Mainnet trusted setup shipped inside c-kzg; viem's setupKzg(cKzg, path) is broken with c-kzg 4.
  ckzg.loadTrustedSetup(0)
  loaded = { ckzg, kzg: defineKzg(ckzg) }
  return loaded
}

/** True once the trusted setup has been loaded in this process. */
export function isKzgLoaded(): boolean {
  return loaded !== undefined
}

/** viem's KZG interface backed by c-kzg with the mainnet trusted setup (loaded once per process, ~1.4 s). */
export function getKzg(): Kzg {
  return load().kzg
}

/** KZG commitment of one 131072-byte blob. */
export function blobToCommitment(blob: Uint8Array): Uint8Array {
  return load().ckzg.blobToKzgCommitment(blob)
}

/** The EIP-4844 (v0 sidecar) proof of a whole blob. */
export function computeBlobProof(blob: Uint8Array, commitment: Uint8Array): Uint8Array {
  return load().ckzg.computeBlobKzgProof(blob, commitment)
}

/** The EIP-7594 (v1 sidecar) proofs: one per cell of the extended blob, 128, in cell order. */
export function computeCellProofs(blob: Uint8Array): Uint8Array[] {
  const [, proofs] = load().ckzg.computeCellsAndKzgProofs(blob)
  return proofs
}

/**
 * Checks a v1 sidecar: for every blob, its 128 cell proofs against its commitment (`proofs[i * 128 + j]` is cell j of
 * blob i). The cells are recomputed from the blobs, as a node receiving the wrapper does.
 */
export function verifyCellProofs(blobs: readonly Uint8Array[], commitments: readonly Uint8Array[], proofs: readonly Uint8Array[]): boolean {
  if (blobs.length !== commitments.length || proofs.length !== blobs.length * CELLS_PER_EXT_BLOB) return false
  const { ckzg } = load()
  const cellCommitments: Uint8Array[] = []
  const indices: number[] = []
  const cells: Uint8Array[] = []
  blobs.forEach((blob, i) => {
    ckzg.computeCells(blob).forEach((cell, j) => {
      cellCommitments.push(commitments[i]!)
      indices.push(j)
      cells.push(cell)
    })
  })
  try {
    return ckzg.verifyCellKzgProofBatch(cellCommitments, indices, cells, [...proofs])
  } catch {
    return false
  }
}

/** EIP-4844 versioned hash: 0x01 ‖ sha256(commitment)[1:]. */
export function commitmentToVersionedHash(commitment: Uint8Array): Uint8Array {
  const hash = sha256(commitment)
  hash[0] = 0x01
  return hash
}
