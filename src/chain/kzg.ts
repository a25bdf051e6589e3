// The only module that imports c-kzg (docs/protocol.md#limits: keep KZG in one place, so EIP-7594 cell proofs can be added here).
import { createRequire } from 'node:module'
import { sha256 } from '@noble/hashes/sha2.js'
import { defineKzg, type Kzg } from 'viem'

type CKzg = {
  loadTrustedSetup(precompute: number, path?: string): void
  blobToKzgCommitment(blob: Uint8Array): Uint8Array
  computeBlobKzgProof(blob: Uint8Array, commitment: Uint8Array): Uint8Array
  verifyBlobKzgProof(blob: Uint8Array, commitment: Uint8Array, proof: Uint8Array): boolean
}

let loaded: { ckzg: CKzg; kzg: Kzg } | undefined

function load(): { ckzg: CKzg; kzg: Kzg } {
  if (loaded) return loaded
  const require = createRequire(import.meta.url)
  const ckzg = require('c-kzg') as CKzg
  // Mainnet trusted setup shipped inside c-kzg; viem's setupKzg(cKzg, path) is broken with c-kzg 4 (TOOLCHAIN.md).
  ckzg.loadTrustedSetup(0)
  loaded = { ckzg, kzg: defineKzg(ckzg) }
  return loaded
}

/** viem's KZG interface backed by c-kzg with the mainnet trusted setup (loaded once per process, ~1.4 s). */
export function getKzg(): Kzg {
  return load().kzg
}

/** KZG commitment of one 131072-byte blob. */
export function blobToCommitment(blob: Uint8Array): Uint8Array {
  return load().ckzg.blobToKzgCommitment(blob)
}

/** EIP-4844 versioned hash: 0x01 ‖ sha256(commitment)[1:]. */
export function commitmentToVersionedHash(commitment: Uint8Array): Uint8Array {
  const hash = sha256(commitment)
  hash[0] = 0x01
  return hash
}
