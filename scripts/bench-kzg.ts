// Blob sidecar cost (docs/protocol.md#blob-transactions): the KZG work to send one full blob as an EIP-7594 v1 sidecar
// (128 cell proofs) against the pre-Osaka v0 sidecar (one blob proof), both after the commitment, in the same run and
// process, rounds alternated, each keeping its best. Also the trusted-setup load, which a node pays once, on its
// first blob. `scripts/bench.ts` calls `benchKzg`; run alone: node --import tsx scripts/bench-kzg.ts
import { randomBytes } from 'node:crypto'
import { toBlobs } from 'viem'
import { blobToCommitment, computeBlobProof, computeCellProofs, getKzg, verifyCellProofs } from '../src/chain/kzg.ts'

export type KzgBench = { setupLoadMs: number; v0ProofMs: number; cellProofsMs: number; ratio: number; cellVerifyMs: number }

function best(rounds: number, fn: () => unknown): number {
  let min = Infinity
  for (let i = 0; i < rounds; i++) {
    const start = performance.now()
    fn()
    min = Math.min(min, performance.now() - start)
  }
  return min
}

export function benchKzg(rounds = 5): KzgBench {
  const started = performance.now()
  getKzg()
  const setupLoadMs = performance.now() - started
  // A full blob of random data: KZG cost grows with the nonzero field elements.
  const blob = toBlobs({ data: new Uint8Array(randomBytes(126_975)), to: 'bytes' })[0]!
  const commitment = blobToCommitment(blob)
  let v0ProofMs = Infinity
  let cellProofsMs = Infinity
  for (let i = 0; i < rounds; i++) {
    v0ProofMs = Math.min(v0ProofMs, best(1, () => computeBlobProof(blob, commitment)))
    cellProofsMs = Math.min(cellProofsMs, best(1, () => computeCellProofs(blob)))
  }
  const proofs = computeCellProofs(blob)
  const cellVerifyMs = best(rounds, () => verifyCellProofs([blob], [commitment], proofs))
  return { setupLoadMs, v0ProofMs, cellProofsMs, ratio: cellProofsMs / v0ProofMs, cellVerifyMs }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = benchKzg()
  console.log(JSON.stringify(r))
}
