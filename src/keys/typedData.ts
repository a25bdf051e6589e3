// EIP-712 digests of the three typed messages the registry checks (docs/protocol.md#registry-contract), so they match what wallets and
// viem's `signTypedData` produce. Sign the digest with `signDigest`.
// The onboarding digests go through viem's `hashTypedData` (rare, and its encoder handles the uint256[]).
// `attestationDigest` is on the /attest hot path: viem's hashTypedData costs ~130 µs a call (it re-validates and
// re-hashes the domain each time), so the domain separator is cached per (chainId, registry) and the two-field
// struct is hashed directly; tests pin it against viem's signTypedData and a by-hand encoding.
// The digests are pure encodings: batch rules (non-empty, no duplicates) are the contract's and the helper's.
import { domainSeparator, hashTypedData, type Address, type TypedDataDomain } from 'viem'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
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
  /** The pod name (docs/protocol.md#keys-and-derivations). */
  hostname: string
  /** 32 bytes chosen by the pod. */
  appData: Uint8Array | `0x${string}`
}

const ATTESTATION_TYPEHASH = keccak_256(utf8ToBytes('Attestation(string hostname,bytes32 appData)'))
const EIP712_PREFIX = new Uint8Array([0x19, 0x01])
/** Domain separators by `chainId:registry`; a node serves one or two registries, the cap only bounds misuse. */
const separators = new Map<string, Uint8Array>()
const MAX_CACHED_SEPARATORS = 64

function cachedDomainSeparator(args: DomainArgs): Uint8Array {
  const domain = keyManagerDomain(args)
  const key = `${domain.chainId}:${domain.verifyingContract.toLowerCase()}`
  let separator = separators.get(key)
  if (separator === undefined) {
    separator = hexToBytes(domainSeparator({ domain }).slice(2))
    if (separators.size >= MAX_CACHED_SEPARATORS) separators.clear()
    separators.set(key, separator)
  }
  return separator
}

/** Digest of `Attestation(string hostname,bytes32 appData)`, signed by M for `/attest/:appdata`. */
export function attestationDigest(args: AttestationArgs): Uint8Array {
  if (typeof args.hostname !== 'string') {
    throw new TypeError(`hostname must be a string, got ${describeValue(args.hostname)}`)
  }
  const appData = bytesFrom(args.appData, 32, 'appData')
  // hashStruct = keccak256(typeHash ‖ keccak256(utf8(hostname)) ‖ appData): every field is one static word.
  const structHash = keccak_256(concatBytes(ATTESTATION_TYPEHASH, keccak_256(utf8ToBytes(args.hostname)), appData))
  return keccak_256(concatBytes(EIP712_PREFIX, cachedDomainSeparator(args), structHash))
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
