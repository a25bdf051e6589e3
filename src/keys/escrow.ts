// Guardian escrow and recovery, the byte-level steps (docs/protocol.md#guardians, docs/protocol.md#recovery): what a
// node signs and encrypts to publish an escrow, what a guardian decrypts and checks (`keymanager guardian verify`),
// what it re-encrypts and signs to release its share to a recovering enclave, and how that enclave reassembles M.
// Pure functions: no chain, no I/O. Whoever calls them decides on proven chain state (the guardian keys against the
// proven keys hash, the escrow against the proven escrow hash, the master key against the proven generation record).
//
//   escrow:   split M_g k of n (secretSharing.ts); share i ECIES-encrypted to guardian key i (aad escrowShareAad);
//             M_g signs GuardianEscrow(generation, guardianSet, commitments, encryptedShares)
//   verify:   guardian i decrypts share i and checks it against the Feldman commitments
//   release:  share i ECIES-encrypted to the recovery request's key (aad releaseShareAad); the guardian key signs
//             ShareRelease(requestId, generation, encryptedShare)
//   recover:  the enclave decrypts each released share, keeps those that match the commitments, and interpolates
//             once k of them are there; the result must be the committed (and proven) master key
import { bytesToHex, hexToBytes, keccak256, type Address, type Hex } from 'viem'
import { KeymanagerError } from '../errors.ts'
import { assertBytes, constantTimeEqual, wipe } from './bytes.ts'
import { eciesDecrypt, eciesEncrypt, escrowShareAad, releaseShareAad } from './ecies.ts'
import { packCommitments, recoverSecret, splitSecret, unpackCommitments, verifyShare, MAX_GUARDIANS, MIN_THRESHOLD, type SecretShare } from './secretSharing.ts'
import { addressOfPublicKey, isValidPublicKey, publicKey33, signDigest } from './signature.ts'
import { guardianEscrowDigest, guardianEscrowHash, shareReleaseDigest } from './typedData.ts'

export type EscrowDomain = { chainId: number; registry: Address }

/** Bad escrow material: a reason from a fixed list (shown by the CLI and the node), never a secret. */
export class EscrowError extends KeymanagerError {
  override name = 'EscrowError'
  constructor(
    readonly reason: 'bad_guardian_keys' | 'not_decryptable' | 'share_mismatch' | 'escrow_mismatch' | 'not_master_key',
    message: string,
  ) {
    super('unprocessable', `${reason}: ${message}`)
  }
}

const hexBytes = (value: Uint8Array | Hex): Uint8Array => (typeof value === 'string' ? hexToBytes(value) : value)

/**
 * The guardians' 64-byte keys from `setGuardians`'s `pubkeys` (as `GuardiansProposed` logs them), checked as the
 * contract checks them: a multiple of 64 bytes, 2 to 32 keys, each on the curve, no two the same. Share i + 1 belongs
 * to key i.
 */
export function splitGuardianKeys(pubkeys: Uint8Array | Hex): Uint8Array[] {
  const bytes = hexBytes(pubkeys)
  if (bytes.length % 64 !== 0) throw new EscrowError('bad_guardian_keys', `guardian keys are ${bytes.length} bytes, not a multiple of 64`)
  const count = bytes.length / 64
  if (count < MIN_THRESHOLD || count > MAX_GUARDIANS) throw new EscrowError('bad_guardian_keys', `${count} guardian keys, ${MIN_THRESHOLD} to ${MAX_GUARDIANS} expected`)
  const keys = Array.from({ length: count }, (_, i) => bytes.slice(i * 64, (i + 1) * 64))
  const seen = new Set<string>()
  keys.forEach((key, i) => {
    if (!isValidPublicKey(Uint8Array.of(4, ...key))) throw new EscrowError('bad_guardian_keys', `guardian key ${i + 1} is not a point on secp256k1`)
    const hex = bytesToHex(key)
    if (seen.has(hex)) throw new EscrowError('bad_guardian_keys', `guardian key ${i + 1} is given twice`)
    seen.add(hex)
  })
  return keys
}

/** `guardianSets[set].pubkeysHash`: keccak256 of the keys concatenated, as the contract stores it. */
export const guardianKeysHash = (keys: readonly Uint8Array[]): Hex => keccak256(new Uint8Array(keys.flatMap((k) => [...k])))

/** A guardian's address (what `guardianIndex` is keyed by) from its 64-byte key. */
export const guardianAddress = (pubkey64: Uint8Array): Address => addressOfPublicKey(Uint8Array.of(4, ...pubkey64))

export type Escrow = {
  generation: bigint
  guardianSet: bigint
  /** `packCommitments`: k points of 33 bytes, C_0 = the generation's master key. */
  commitments: Uint8Array
  /** Share i + 1 encrypted to guardian key i. */
  encryptedShares: Hex[]
  /** M_g's signature over `GuardianEscrow`. */
  signature: Hex
  /** The struct hash the contract stores as `escrowHash`. */
  hash: Hex
}

/**
 * Splits `secret` (M_g) k of n to the guardian set's keys and signs the escrow with it. The guardian keys must be the
 * set's keys in order, checked by the caller against the proven keys hash; `threshold` is the proven k.
 */
export function makeEscrow(
  domain: EscrowDomain,
  args: { generation: bigint; guardianSet: bigint; guardianKeys: readonly Uint8Array[]; threshold: number; secret: Uint8Array },
): Escrow {
  const { generation, guardianSet, guardianKeys, threshold, secret } = args
  const { shares, commitments } = splitSecret(secret, { threshold, count: guardianKeys.length })
  try {
    const encryptedShares = shares.map((share, i) =>
      bytesToHex(eciesEncrypt(Uint8Array.of(4, ...guardianKeys[i]!), share.value, escrowShareAad({ ...domain, generation, guardianSet, index: share.index }))),
    )
    const packed = packCommitments(commitments)
    const message = { ...domain, generation, guardianSet, commitments: packed, encryptedShares }
    const signature = bytesToHex(signDigest(guardianEscrowDigest(message), secret))
    return { generation, guardianSet, commitments: packed, encryptedShares, signature, hash: guardianEscrowHash(message) }
  } finally {
    wipe(...shares.map((s) => s.value))
  }
}

/** An escrow as `EscrowPublished` logs it (a hint until its hash matches the proven `escrowHash`). */
export type PublishedEscrow = { generation: bigint; guardianSet: bigint; commitments: Uint8Array | Hex; encryptedShares: readonly Hex[] }

/** Whether a logged escrow is the one whose struct hash the chain stores for its generation. */
export function escrowMatches(domain: EscrowDomain, escrow: PublishedEscrow, provenEscrowHash: Hex): boolean {
  let hash: Hex
  try {
    hash = guardianEscrowHash({ ...domain, ...escrow, commitments: hexBytes(escrow.commitments) })
  } catch {
    return false
  }
  return constantTimeEqual(hexToBytes(hash), hexToBytes(provenEscrowHash))
}

/**
 * Guardian `index` opens its share of a published escrow and checks it against the commitments (`guardian verify`).
 * Throws `not_decryptable` when the ciphertext does not open under this guardian's key and aad, `share_mismatch`
 * when it opens to a share that is not on the committed polynomial (a tampered or wrong share).
 */
export function openEscrowShare(domain: EscrowDomain, escrow: PublishedEscrow, args: { index: number; guardianKey: Uint8Array }): SecretShare {
  const { index, guardianKey } = args
  const commitments = unpackCommitments(hexBytes(escrow.commitments))
  const ciphertext = escrow.encryptedShares[index - 1]
  if (ciphertext === undefined) throw new EscrowError('escrow_mismatch', `the escrow has ${escrow.encryptedShares.length} shares, none for index ${index}`)
  let value: Uint8Array
  try {
    value = eciesDecrypt(guardianKey, hexToBytes(ciphertext), escrowShareAad({ ...domain, generation: escrow.generation, guardianSet: escrow.guardianSet, index }))
  } catch {
    throw new EscrowError('not_decryptable', `share ${index} of generation ${escrow.generation} does not decrypt with this guardian key`)
  }
  if (value.length !== 32 || !verifyShare({ index, value }, commitments)) {
    wipe(value)
    throw new EscrowError('share_mismatch', `share ${index} of generation ${escrow.generation} does not match the escrow's Feldman commitments`)
  }
  return { index, value }
}

export type ShareRelease = { requestId: bigint; generation: bigint; encryptedShare: Hex; signature: Hex }

/**
 * Re-encrypts a verified share to the recovery request's key (`requestKey`: 64 bytes as requested on chain, or
 * 33/65) and signs the release with the guardian key. The caller has proven the request is the open recovery and
 * judged its quote first.
 */
export function releaseShare(
  domain: EscrowDomain,
  args: { requestId: bigint; generation: bigint; share: SecretShare; requestKey: Uint8Array; guardianKey: Uint8Array },
): ShareRelease {
  const { requestId, generation, share, guardianKey } = args
  const requestKey = args.requestKey.length === 64 ? Uint8Array.of(4, ...args.requestKey) : args.requestKey
  const encryptedShare = bytesToHex(eciesEncrypt(requestKey, share.value, releaseShareAad({ ...domain, requestId, generation, index: share.index })))
  const signature = bytesToHex(signDigest(shareReleaseDigest({ ...domain, requestId, generation, encryptedShare }), guardianKey))
  return { requestId, generation, encryptedShare, signature }
}

/** A released share as `ShareReleased` logs it. */
export type ReleasedShare = { index: number; encryptedShare: Hex }

export type RecoveryOutcome =
  | { recovered: true; secret: Uint8Array; used: number[]; rejected: { index: number; reason: string }[] }
  | { recovered: false; valid: number[]; needed: number; rejected: { index: number; reason: string }[] }

/**
 * The enclave's side: decrypts the released shares with the request key, keeps each one that matches the escrow's
 * commitments (a bad one is named and skipped, never used), and once k are there interpolates M_g and checks it
 * against the proven master key (33 bytes compressed). Fewer than k valid shares: `recovered: false` (pending).
 */
export function recoverFromReleases(
  domain: EscrowDomain,
  args: { requestId: bigint; generation: bigint; requestSecretKey: Uint8Array; releases: readonly ReleasedShare[]; commitments: Uint8Array | Hex; masterPubkey: Uint8Array },
): RecoveryOutcome {
  const { requestId, generation, requestSecretKey } = args
  assertBytes(args.masterPubkey, 33, 'masterPubkey')
  const commitments = unpackCommitments(hexBytes(args.commitments))
  if (!constantTimeEqual(commitments[0]!, args.masterPubkey))
    throw new EscrowError('escrow_mismatch', `the escrow's C_0 is not generation ${generation}'s master key`)
  const shares: SecretShare[] = []
  const rejected: { index: number; reason: string }[] = []
  for (const { index, encryptedShare } of args.releases) {
    if (!Number.isInteger(index) || index < 1 || index > MAX_GUARDIANS || shares.some((s) => s.index === index)) {
      rejected.push({ index, reason: 'bad_index' })
      continue
    }
    let value: Uint8Array
    try {
      value = eciesDecrypt(requestSecretKey, hexToBytes(encryptedShare), releaseShareAad({ ...domain, requestId, generation, index }))
    } catch {
      rejected.push({ index, reason: 'not_decryptable' })
      continue
    }
    if (value.length !== 32 || !verifyShare({ index, value }, commitments)) {
      wipe(value)
      rejected.push({ index, reason: 'share_mismatch' })
      continue
    }
    shares.push({ index, value })
  }
  try {
    if (shares.length < commitments.length) return { recovered: false, valid: shares.map((s) => s.index), needed: commitments.length, rejected }
    const used = shares.slice(0, commitments.length)
    const secret = recoverSecret(used, commitments)
    if (!constantTimeEqual(publicKey33(secret), args.masterPubkey)) {
      wipe(secret)
      throw new EscrowError('not_master_key', `the recovered secret is not generation ${generation}'s master key`)
    }
    return { recovered: true, secret, used: used.map((s) => s.index), rejected }
  } finally {
    wipe(...shares.map((s) => s.value))
  }
}
