// EIP-712 digests of the typed messages the registry checks (docs/protocol.md#registry-contract, docs/protocol.md#generations), so they
// match what wallets and viem's `signTypedData` produce. Sign the digest with `signDigest`.
// The onboarding digests go through viem's `hashTypedData` (rare, and its encoder handles the uint256[]).
// `attestationDigest` is on the /attest hot path: viem's hashTypedData costs ~130 µs a call (it re-validates and
// re-hashes the domain each time), so the domain separator is cached per (chainId, registry) and the two-field
// struct is hashed directly; tests pin it against viem's signTypedData and a by-hand encoding.
// The digests are pure encodings: batch rules (non-empty, no duplicates) are the contract's and the helper's.
import { domainSeparator, hashStruct, hashTypedData, type Address, type Hex, type TypedDataDomain } from 'viem'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { assertAddress, assertBytes, bytesFrom, describeValue, parseHex, parseUint, toHex0x } from './bytes.ts'

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
  GenerationProposal: [
    { name: 'proposal', type: 'uint64' },
    { name: 'generation', type: 'uint64' },
    { name: 'masterPubkey', type: 'bytes' },
    { name: 'recipientIds', type: 'uint256[]' },
    { name: 'proposalBlobHash', type: 'bytes32' },
  ],
  GenerationAck: [
    { name: 'proposal', type: 'uint64' },
    { name: 'generation', type: 'uint64' },
    { name: 'xPub', type: 'address' },
  ],
  GuardianEscrow: [
    { name: 'generation', type: 'uint64' },
    { name: 'guardianSet', type: 'uint64' },
    { name: 'commitments', type: 'bytes' },
    { name: 'encryptedShares', type: 'bytes[]' },
  ],
  ShareRelease: [
    { name: 'requestId', type: 'uint256' },
    { name: 'generation', type: 'uint64' },
    { name: 'encryptedShare', type: 'bytes' },
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

// ---------------------------------------------------------------- generations (docs/protocol.md#generations)

function typedDigest(args: DomainArgs, primaryType: keyof typeof KEYMANAGER_TYPES, message: Record<string, unknown>): Uint8Array {
  return hexToBytes(hashTypedData({ domain: keyManagerDomain(args), types: KEYMANAGER_TYPES, primaryType, message } as never).slice(2))
}

/** Bytes of any length, as bytes or 0x-hex, normalized to lowercase 0x-hex. */
function bytesOrHex(value: unknown, name: string): Hex {
  if (typeof value === 'string') return toHex0x(parseHex(value, { name, prefix: 'required' }))
  assertBytes(value, undefined, name)
  return toHex0x(value)
}

export type GenerationProposalArgs = DomainArgs & {
  /** `proposalCount() + 1` when the proposal is made. */
  proposal: number | bigint
  /** `generation() + 1`. */
  generation: number | bigint
  /** The new master public key, 64 bytes uncompressed without the 0x04 prefix. */
  masterPubkey64: Uint8Array | `0x${string}`
  /** Every active member, ascending. */
  recipientIds: readonly (number | bigint)[]
  /** `blobhash(0)` of the proposal transaction (the rotate envelope). */
  proposalBlobHash: Uint8Array | `0x${string}`
}

/**
 * Digest of `GenerationProposal(uint64 proposal,uint64 generation,bytes masterPubkey,uint256[] recipientIds,bytes32 proposalBlobHash)`,
 * signed by the proposer's node key (the key of its onboarding request), never by a master key.
 */
export function generationProposalDigest(args: GenerationProposalArgs): Uint8Array {
  if (!Array.isArray(args.recipientIds)) {
    throw new TypeError(`recipientIds must be an array, got ${describeValue(args.recipientIds)}`)
  }
  return typedDigest(args, 'GenerationProposal', {
    proposal: parseUint(args.proposal, { name: 'proposal', bits: 64, min: 1n }),
    generation: parseUint(args.generation, { name: 'generation', bits: 64, min: 2n }),
    masterPubkey: toHex0x(bytesFrom(args.masterPubkey64, 64, 'masterPubkey64')),
    recipientIds: args.recipientIds.map((id, i) => parseUint(id, { name: `recipientIds[${i}]`, bits: 256 })),
    proposalBlobHash: toHex0x(bytesFrom(args.proposalBlobHash, 32, 'proposalBlobHash')),
  })
}

export type GenerationAckArgs = DomainArgs & {
  proposal: number | bigint
  generation: number | bigint
  /** Address of the proposed master key, which the member checked its decrypted secret against. */
  xPub: Address
}

/** Digest of `GenerationAck(uint64 proposal,uint64 generation,address xPub)`, signed by a member's node key. */
export function generationAckDigest(args: GenerationAckArgs): Uint8Array {
  assertAddress(args.xPub, 'xPub')
  return typedDigest(args, 'GenerationAck', {
    proposal: parseUint(args.proposal, { name: 'proposal', bits: 64, min: 1n }),
    generation: parseUint(args.generation, { name: 'generation', bits: 64, min: 2n }),
    xPub: args.xPub,
  })
}

export type GuardianEscrowArgs = DomainArgs & {
  generation: number | bigint
  guardianSet: number | bigint
  /** The Feldman commitments concatenated (33 bytes each, C_0 first): `packCommitments`. */
  commitments: Uint8Array | `0x${string}`
  /** One ECIES ciphertext per guardian, in the set's order. */
  encryptedShares: readonly (Uint8Array | `0x${string}`)[]
}

function escrowMessage(args: GuardianEscrowArgs) {
  if (!Array.isArray(args.encryptedShares)) {
    throw new TypeError(`encryptedShares must be an array, got ${describeValue(args.encryptedShares)}`)
  }
  return {
    generation: parseUint(args.generation, { name: 'generation', bits: 64, min: 1n }),
    guardianSet: parseUint(args.guardianSet, { name: 'guardianSet', bits: 64, min: 1n }),
    commitments: bytesOrHex(args.commitments, 'commitments'),
    encryptedShares: args.encryptedShares.map((share, i) => bytesOrHex(share, `encryptedShares[${i}]`)),
  }
}

/**
 * Digest of `GuardianEscrow(uint64 generation,uint64 guardianSet,bytes commitments,bytes[] encryptedShares)`, signed by
 * that generation's master key.
 */
export function guardianEscrowDigest(args: GuardianEscrowArgs): Uint8Array {
  return typedDigest(args, 'GuardianEscrow', escrowMessage(args))
}

/** The EIP-712 struct hash of a `GuardianEscrow`: what `generationInfo(g).escrowHash` stores after `publishEscrow`. */
export function guardianEscrowHash(args: GuardianEscrowArgs): Hex {
  return hashStruct({ data: escrowMessage(args), primaryType: 'GuardianEscrow', types: KEYMANAGER_TYPES })
}

export type ShareReleaseArgs = DomainArgs & {
  /** The open recovery's request. */
  requestId: number | bigint
  generation: number | bigint
  /** The guardian's share ECIES-encrypted to the request's key. */
  encryptedShare: Uint8Array | `0x${string}`
}

/** Digest of `ShareRelease(uint256 requestId,uint64 generation,bytes encryptedShare)`, signed by a guardian's key. */
export function shareReleaseDigest(args: ShareReleaseArgs): Uint8Array {
  return typedDigest(args, 'ShareRelease', {
    requestId: parseUint(args.requestId, { name: 'requestId', bits: 256, min: 1n }),
    generation: parseUint(args.generation, { name: 'generation', bits: 64, min: 1n }),
    encryptedShare: bytesOrHex(args.encryptedShare, 'encryptedShare'),
  })
}
