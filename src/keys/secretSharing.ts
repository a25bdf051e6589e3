// Guardian escrow of a generation's master secret (docs/protocol.md#guardians): Shamir's k-of-n sharing over the
// secp256k1 group order with Feldman commitments, whose constant term is the master public key.
//
// The arithmetic is noble's, not ours: RFC 9591 Appendix C (`trustedDealer` = Shamir split with a VSS commitment,
// `validateSecret` = vss_verify, `combineSecret` = Lagrange interpolation at 0) in @noble/curves' secp256k1
// FROST suite, whose scalar field is the secp256k1 group order n. This module fixes the project's conventions on
// top: share i (1-based) belongs to guardian key i of the on-chain set; a share is its 32-byte big-endian scalar;
// commitments are k SEC1-compressed points C_j = a_j·G (C_0 = M·G, the generation's compressed master key), as
// `publishEscrow` checks them.
//
//   split:   f(x) = M + a_1·x + … + a_{k-1}·x^{k-1} (mod n), random a_j;  share_i = f(i)
//   verify:  share_i·G == Σ_j C_j·i^j
//   recover: M = Σ_i λ_i·share_i with Lagrange coefficients at 0, over k verified shares; then M·G == C_0
import { secp256k1, secp256k1_FROST as frost } from '@noble/curves/secp256k1.js'
import { assertBytes, constantTimeEqual, describeValue, wipe } from './bytes.ts'
import { assertSecretKey, publicKey33 } from './signature.ts'
import { KeymanagerError } from '../errors.ts'

/** The contract's bounds on a guardian set (docs/protocol.md#guardians): 2 <= k <= n <= 32. */
export const MAX_GUARDIANS = 32
export const MIN_THRESHOLD = 2

/** One guardian's share: its 1-based index in the guardian set and f(index) as a 32-byte big-endian scalar. */
export type SecretShare = { index: number; value: Uint8Array }

/** Shares, thresholds or commitments that cannot make or recover a secret. */
export class SecretSharingError extends KeymanagerError {
  override name = 'SecretSharingError'
  constructor(message: string) {
    super('unprocessable', message)
  }
}

/** A number is shown as itself (counts and indices are not secret); anything else only by its type. */
const shown = (value: unknown) => (typeof value === 'number' ? `${value}` : describeValue(value))

function assertThreshold(threshold: unknown, count: unknown): asserts threshold is number {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < MIN_THRESHOLD || count > MAX_GUARDIANS) {
    throw new RangeError(`count must be an integer in [${MIN_THRESHOLD}, ${MAX_GUARDIANS}], got ${shown(count)}`)
  }
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < MIN_THRESHOLD || threshold > count) {
    throw new RangeError(`threshold must be an integer in [${MIN_THRESHOLD}, count = ${count}], got ${shown(threshold)}`)
  }
}

function assertIndex(index: unknown, name: string): asserts index is number {
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 1 || index > MAX_GUARDIANS) {
    throw new RangeError(`${name} must be an integer in [1, ${MAX_GUARDIANS}], got ${shown(index)}`)
  }
}

function assertCommitments(commitments: unknown): asserts commitments is readonly Uint8Array[] {
  if (!Array.isArray(commitments)) throw new TypeError(`commitments must be an array, got ${describeValue(commitments)}`)
  if (commitments.length < MIN_THRESHOLD || commitments.length > MAX_GUARDIANS) {
    throw new RangeError(`commitments must hold ${MIN_THRESHOLD} to ${MAX_GUARDIANS} points, got ${commitments.length}`)
  }
  commitments.forEach((c, j) => assertBytes(c, 33, `commitments[${j}]`))
}

const frostPublic = (commitments: readonly Uint8Array[]) => ({
  signers: { min: commitments.length, max: MAX_GUARDIANS },
  commitments: [...commitments],
  verifyingShares: {},
})

const toFrostSecret = (share: SecretShare) => ({ identifier: frost.Identifier.fromNumber(share.index), signingShare: share.value })

export type SplitOptions = {
  /** Shares needed to recover (k). */
  threshold: number
  /** Shares made (n), one per guardian. */
  count: number
  /** Known-answer tests only: the randomness of the polynomial's coefficients. */
  rng?: (bytesLength?: number) => Uint8Array
}

/**
 * Splits a master secret into `count` shares, any `threshold` of which recover it, and returns the Feldman
 * commitments (`threshold` compressed points; the first is the master public key).
 */
export function splitSecret(secret: Uint8Array, options: SplitOptions): { shares: SecretShare[]; commitments: Uint8Array[] } {
  assertSecretKey(secret, 'secret')
  const { threshold, count } = options
  assertThreshold(threshold, count)
  const identifiers = Array.from({ length: count }, (_, i) => frost.Identifier.fromNumber(i + 1))
  const dealt = frost.trustedDealer({ min: threshold, max: count }, identifiers, secret, options.rng as never)
  const shares = identifiers.map((identifier, i) => ({ index: i + 1, value: dealt.secretShares[identifier]!.signingShare }))
  const commitments = dealt.public.commitments.map((c) => Uint8Array.from(c))
  if (commitments.length !== threshold || !constantTimeEqual(commitments[0]!, publicKey33(secret))) {
    throw new SecretSharingError('the dealer returned commitments that do not match the secret')
  }
  return { shares, commitments }
}

/** Whether a share lies on the committed polynomial: share·G == Σ_j C_j·index^j. Never throws on a bad share. */
export function verifyShare(share: SecretShare, commitments: readonly Uint8Array[]): boolean {
  assertCommitments(commitments)
  assertIndex(share?.index, 'share.index')
  assertBytes(share.value, 32, 'share.value')
  try {
    frost.validateSecret(toFrostSecret(share), frostPublic(commitments))
    return true
  } catch {
    return false
  }
}

/**
 * Recovers the secret from shares: each is checked against the commitments (one that fails is named in the
 * error, never used), `commitments.length` distinct valid shares are required, and the result must be the
 * committed master key (C_0). The caller then compares C_0 with the generation's on-chain key.
 */
export function recoverSecret(shares: readonly SecretShare[], commitments: readonly Uint8Array[]): Uint8Array {
  assertCommitments(commitments)
  if (!Array.isArray(shares)) throw new TypeError(`shares must be an array, got ${describeValue(shares)}`)
  const threshold = commitments.length
  const seen = new Set<number>()
  for (const share of shares) {
    assertIndex(share?.index, 'share.index')
    if (seen.has(share.index)) throw new SecretSharingError(`share ${share.index} is given twice`)
    seen.add(share.index)
    if (!verifyShare(share, commitments)) throw new SecretSharingError(`share ${share.index} does not match the commitments`)
  }
  if (shares.length < threshold) {
    throw new SecretSharingError(`${shares.length} valid shares, ${threshold} needed`)
  }
  const secret = Uint8Array.from(frost.combineSecret(shares.slice(0, threshold).map(toFrostSecret), { min: threshold, max: MAX_GUARDIANS }))
  if (!secp256k1.utils.isValidSecretKey(secret) || !constantTimeEqual(publicKey33(secret), commitments[0]!)) {
    wipe(secret)
    throw new SecretSharingError('the recovered secret is not the committed master key')
  }
  return secret
}

/** The `commitments` argument of `publishEscrow`: the points concatenated (33 bytes each). */
export function packCommitments(commitments: readonly Uint8Array[]): Uint8Array {
  assertCommitments(commitments)
  const out = new Uint8Array(commitments.length * 33)
  commitments.forEach((c, j) => out.set(c, j * 33))
  return out
}

/** Inverse of `packCommitments`, for commitments read from an `EscrowPublished` event. */
export function unpackCommitments(packed: Uint8Array): Uint8Array[] {
  assertBytes(packed, undefined, 'commitments')
  const points = packed.length / 33
  if (!Number.isInteger(points) || points < MIN_THRESHOLD || points > MAX_GUARDIANS) {
    throw new RangeError(`commitments must be ${MIN_THRESHOLD} to ${MAX_GUARDIANS} points of 33 bytes, got ${packed.length} bytes`)
  }
  return Array.from({ length: packed.length / 33 }, (_, j) => packed.slice(j * 33, (j + 1) * 33))
}
