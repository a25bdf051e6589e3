// EIP-712 digests of the three typed messages the registry checks (DESIGN.md §7), hashed by viem's
// `hashTypedData` so they match what wallets and `signTypedData` produce. Sign the digest with `signDigest`.
// The digests are pure encodings: batch rules (non-empty, no duplicates) are the contract's and the helper's.
import { hashTypedData, type Address, type TypedDataDomain } from 'viem'
import { hexToBytes } from '@noble/hashes/utils.js'
import { assertAddress, bytesFrom, describeValue, parseUint, toHex0x } from './bytes.ts'

/** The EIP-712 types, exactly as the contract declares them (field order is part of the type hash). */
export const KEYMANAGER_TYPES = {
  Attestation: [
    { name: 'hostname', type: 'string' },
    { name: 'appData', type: 'bytes32' },
  ],
  OnboardResponse: [
    { name: 'requestIds', type: 'uint256[]' },
    { name: 'responseBlobHash', type: 'bytes32' },
    { name: 'generation', type: 'uint64' },
  ],
  OnboardReceipt: [
    { name: 'requestId', type: 'uint256' },
    { name: 'xPub', type: 'address' },
  ],
} as const

export type DomainArgs = {
  /** Chain id (≥ 1). */
  chainId: number | bigint
  /** The registry contract: EIP-712 `verifyingContract`. */
  registry: Address
}

/** `{name: "KeyManager", version: "1", chainId, verifyingContract: registry}`. */
export function keyManagerDomain({ chainId, registry }: DomainArgs) {
  const id = parseUint(chainId, { name: 'chainId', bits: 256, min: 1n })
  assertAddress(registry, 'registry')
  return { name: 'KeyManager', version: '1', chainId: id, verifyingContract: registry } as const satisfies TypedDataDomain
}

export type AttestationArgs = DomainArgs & {
  /** The pod name (DESIGN.md §2). */
  hostname: string
  /** 32 bytes chosen by the pod. */
  appData: Uint8Array | `0x${string}`
}

/** Digest of `Attestation(string hostname,bytes32 appData)`, signed by M for `/attest/:appdata`. */
export function attestationDigest(args: AttestationArgs): Uint8Array {
  if (typeof args.hostname !== 'string') {
    throw new TypeError(`hostname must be a string, got ${describeValue(args.hostname)}`)
  }
  const appData = toHex0x(bytesFrom(args.appData, 32, 'appData'))
  return hexToBytes(
    hashTypedData({
      domain: keyManagerDomain(args),
      types: KEYMANAGER_TYPES,
      primaryType: 'Attestation',
      message: { hostname: args.hostname, appData },
    }).slice(2),
  )
}

export type OnboardResponseArgs = DomainArgs & {
  requestIds: readonly (number | bigint)[]
  /** `blobhash(0)` of the fulfill transaction. */
  responseBlobHash: Uint8Array | `0x${string}`
  generation: number | bigint
}

/** Digest of `OnboardResponse(uint256[] requestIds,bytes32 responseBlobHash,uint64 generation)`, signed by M. */
export function onboardResponseDigest(args: OnboardResponseArgs): Uint8Array {
  if (!Array.isArray(args.requestIds)) {
    throw new TypeError(`requestIds must be an array, got ${describeValue(args.requestIds)}`)
  }
  const requestIds = args.requestIds.map((id, i) => parseUint(id, { name: `requestIds[${i}]`, bits: 256 }))
  const responseBlobHash = toHex0x(bytesFrom(args.responseBlobHash, 32, 'responseBlobHash'))
  const generation = parseUint(args.generation, { name: 'generation', bits: 64 })
  return hexToBytes(
    hashTypedData({
      domain: keyManagerDomain(args),
      types: KEYMANAGER_TYPES,
      primaryType: 'OnboardResponse',
      message: { requestIds, responseBlobHash, generation },
    }).slice(2),
  )
}

export type OnboardReceiptArgs = DomainArgs & {
  requestId: number | bigint
  /** The master address the newcomer decrypted (its xPub). */
  xPub: Address
}

/** Digest of `OnboardReceipt(uint256 requestId,address xPub)`, signed by the newcomer's ephemeral key. */
export function onboardReceiptDigest(args: OnboardReceiptArgs): Uint8Array {
  const requestId = parseUint(args.requestId, { name: 'requestId', bits: 256 })
  assertAddress(args.xPub, 'xPub')
  return hexToBytes(
    hashTypedData({
      domain: keyManagerDomain(args),
      types: KEYMANAGER_TYPES,
      primaryType: 'OnboardReceipt',
      message: { requestId, xPub: args.xPub },
    }).slice(2),
  )
}
