// The network form of a blob transaction (docs/protocol.md#blob-transactions). A type-3 tx has two encodings:
//   canonical (what is signed, hashed and mined): 0x03 ‖ rlp(tx_payload_body)
//   network (what eth_sendRawTransaction takes):  0x03 ‖ rlp([tx_payload_body, blobs, commitments, proofs])        v0, EIP-4844
//                                                  0x03 ‖ rlp([tx_payload_body, 1, blobs, commitments, cell_proofs])  v1, EIP-7594
// v1 carries 128 cell proofs per blob, `cell_proofs[i * 128 + j]` for cell j of blob i. Since Osaka (Fusaka) the
// mempools of reth and Nethermind refuse v0. viem 2.57 serialises only v0 and cannot parse v1, so the wrapper is
// built here on viem's RLP helpers around the canonical tx viem signs. The tx hash is keccak256 of the canonical
// form, whichever wrapper carries it: re-wrapping a signed tx (v0 → v1) keeps its hash and needs no key.
import { bytesToHex, fromRlp, hexToBytes, isHex, keccak256, toRlp, type Address, type Hex, type LocalAccount } from 'viem'
import { ChainError } from './errors.ts'
import { CELLS_PER_EXT_BLOB, blobToCommitment, commitmentToVersionedHash, computeBlobProof, computeCellProofs } from './kzg.ts'

export const BYTES_PER_BLOB = 131072

/** 0: EIP-4844 (one proof per blob), 1: EIP-7594 (128 cell proofs per blob). */
export type SidecarVersion = 0 | 1

export type BlobSidecars = {
  version: SidecarVersion
  blobs: Hex[]
  commitments: Hex[]
  /** v0: one per blob; v1: 128 per blob, blob-major. */
  proofs: Hex[]
  /** What `blobhash(i)` returns inside the tx, one per blob. */
  versionedHashes: Hex[]
}

/** A network-form blob transaction that is not what the wrapper format allows. */
export class BlobWrapperError extends ChainError {
  override name = 'BlobWrapperError'
  constructor(detail: string) {
    super('bad_request', 'Malformed blob transaction wrapper.', { metaMessages: [`detail: ${detail}`] })
  }
}

/** Commitments, proofs and versioned hashes for `blobs` in the given sidecar version (KZG: ~65 ms v0, ~240 ms v1 per blob). */
export function buildBlobSidecars(blobs: readonly Hex[], version: SidecarVersion): BlobSidecars {
  const commitments: Hex[] = []
  const proofs: Hex[] = []
  const versionedHashes: Hex[] = []
  for (const blob of blobs) {
    const bytes = hexToBytes(blob)
    const commitment = blobToCommitment(bytes)
    commitments.push(bytesToHex(commitment))
    versionedHashes.push(bytesToHex(commitmentToVersionedHash(commitment)))
    if (version === 0) proofs.push(bytesToHex(computeBlobProof(bytes, commitment)))
    else for (const proof of computeCellProofs(bytes)) proofs.push(bytesToHex(proof))
  }
  return { version, blobs: [...blobs], commitments, proofs, versionedHashes }
}

/** The network form of a signed canonical type-3 tx (`0x03 ‖ rlp(body)`) with its sidecars. */
export function wrapBlobTransaction(canonical: Hex, sidecars: BlobSidecars): Hex {
  const body = canonicalBody(canonical)
  const expectedProofs = sidecars.blobs.length * (sidecars.version === 1 ? CELLS_PER_EXT_BLOB : 1)
  if (sidecars.commitments.length !== sidecars.blobs.length || sidecars.proofs.length !== expectedProofs)
    throw new RangeError(`a v${sidecars.version} sidecar of ${sidecars.blobs.length} blobs needs as many commitments and ${expectedProofs} proofs`)
  const fields = [sidecars.blobs, sidecars.commitments, sidecars.proofs]
  const rlp = toRlp(sidecars.version === 1 ? [body, '0x01', ...fields] : [body, ...fields])
  return `0x03${rlp.slice(2)}`
}

/** The tx hash of a canonical or network-form type-3 tx: keccak256 of the canonical form. */
export function blobTransactionHash(raw: Hex): Hex {
  return keccak256(unwrapBlobTransaction(raw).canonical)
}

/**
 * Splits a network-form blob tx into its canonical form and sidecars. Strict: type byte 3, canonical RLP, a 4-field
 * (v0) or 5-field list with version 1 (v1), 131072-byte blobs, 48-byte commitments and proofs in the right numbers.
 * KZG proofs are not checked here (`verifyCellProofs` does that).
 */
export function unwrapBlobTransaction(raw: Hex): { canonical: Hex; hash: Hex; sidecars: BlobSidecars } {
  if (!isHex(raw, { strict: true }) || !raw.startsWith('0x03')) throw new BlobWrapperError('not a type-3 transaction')
  let decoded: unknown
  try {
    decoded = fromRlp(`0x${raw.slice(4)}`, 'hex')
  } catch {
    throw new BlobWrapperError('not RLP')
  }
  if (!Array.isArray(decoded)) throw new BlobWrapperError('not an RLP list')
  if (toRlp(decoded as Hex[]) !== `0x${raw.slice(4)}`) throw new BlobWrapperError('non-canonical RLP')
  let version: SidecarVersion
  let rest: unknown[]
  if (decoded.length === 4) [version, rest] = [0, decoded.slice(1)]
  else if (decoded.length === 5) {
    if (decoded[1] !== '0x01') throw new BlobWrapperError(`wrapper version ${String(decoded[1])}, expected 0x01`)
    ;[version, rest] = [1, decoded.slice(2)]
  } else throw new BlobWrapperError(`a wrapper has 4 (v0) or 5 (v1) fields, got ${decoded.length}`)
  const body = decoded[0]
  if (!Array.isArray(body)) throw new BlobWrapperError('tx_payload_body is not a list')
  const [blobs, commitments, proofs] = rest.map((field, i) => {
    if (!Array.isArray(field) || field.some((item) => typeof item !== 'string'))
      throw new BlobWrapperError(`${['blobs', 'commitments', 'proofs'][i]} is not a list of byte strings`)
    return field as Hex[]
  }) as [Hex[], Hex[], Hex[]]
  const sized = (items: Hex[], bytes: number, name: string) => {
    items.forEach((item, i) => {
      if ((item.length - 2) / 2 !== bytes) throw new BlobWrapperError(`${name}[${i}] is ${(item.length - 2) / 2} bytes, expected ${bytes}`)
    })
  }
  sized(blobs, BYTES_PER_BLOB, 'blobs')
  sized(commitments, 48, 'commitments')
  sized(proofs, 48, 'proofs')
  const perBlob = version === 1 ? CELLS_PER_EXT_BLOB : 1
  if (blobs.length === 0 || commitments.length !== blobs.length || proofs.length !== blobs.length * perBlob)
    throw new BlobWrapperError(`${blobs.length} blobs, ${commitments.length} commitments and ${proofs.length} proofs do not fit a v${version} sidecar`)
  const canonical: Hex = `0x03${toRlp(body as Hex[]).slice(2)}`
  const versionedHashes = commitments.map((c) => bytesToHex(commitmentToVersionedHash(hexToBytes(c))))
  return { canonical, hash: keccak256(canonical), sidecars: { version, blobs, commitments, proofs, versionedHashes } }
}

/** True when `raw` is a network-form blob tx (a wrapper), false for a canonical one or any other type. */
export function isWrappedBlobTransaction(raw: Hex): boolean {
  if (!raw.startsWith('0x03')) return false
  try {
    const decoded = fromRlp(`0x${raw.slice(4)}`, 'hex')
    return Array.isArray(decoded) && Array.isArray(decoded[0])
  } catch {
    return false
  }
}

function canonicalBody(canonical: Hex): Hex[] {
  if (!isHex(canonical, { strict: true }) || !canonical.startsWith('0x03')) throw new BlobWrapperError('the signed tx is not type 3')
  const body = fromRlp(`0x${canonical.slice(4)}`, 'hex')
  // A canonical type-3 body is the 14-field list [chain_id, …, blob_versioned_hashes, y_parity, r, s].
  if (!Array.isArray(body) || body.length !== 14 || Array.isArray(body[0])) throw new BlobWrapperError('the signed tx is not a canonical type-3 body')
  return body as Hex[]
}

/** The fields of a type-3 tx, as the outbox and the host sender build them. */
export type BlobTransactionFields = {
  chainId: number
  nonce: number
  to: Address
  data: Hex
  value?: bigint | undefined
  gas: bigint
  maxFeePerGas: bigint
  maxPriorityFeePerGas: bigint
  maxFeePerBlobGas: bigint
}

/** Signs the canonical tx with a viem local account and wraps it: the raw network form and the tx hash. */
export async function signBlobTransaction(
  account: LocalAccount,
  fields: BlobTransactionFields,
  sidecars: BlobSidecars,
): Promise<{ raw: Hex; hash: Hex }> {
  const canonical = await account.signTransaction({
    type: 'eip4844',
    chainId: fields.chainId,
    nonce: fields.nonce,
    to: fields.to,
    data: fields.data,
    value: fields.value ?? 0n,
    gas: fields.gas,
    maxFeePerGas: fields.maxFeePerGas,
    maxPriorityFeePerGas: fields.maxPriorityFeePerGas,
    maxFeePerBlobGas: fields.maxFeePerBlobGas,
    blobVersionedHashes: sidecars.versionedHashes,
  })
  return { raw: wrapBlobTransaction(canonical, sidecars), hash: keccak256(canonical) }
}
