import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { toHex0x } from './bytes.ts'
import { packCommitments, recoverSecret, splitSecret, unpackCommitments, verifyShare, type SecretShare } from './secretSharing.ts'
import { publicKey33 } from './signature.ts'

const N = secp256k1.Point.CURVE().n
const G = secp256k1.Point.BASE
const v = JSON.parse(readFileSync(new URL('../../test/vectors/secret-sharing.json', import.meta.url), 'utf8'))
const unhex = (value: string) => hexToBytes(value.slice(2))
const scalar = (bytes: Uint8Array) => BigInt(`0x${bytesToHex(bytes)}`)
const toBytes32 = (n: bigint) => hexToBytes(n.toString(16).padStart(64, '0'))
const mod = (a: bigint) => ((a % N) + N) % N

/** Modular inverse by Fermat (n is prime): independent of noble's field code. */
function inverse(a: bigint): bigint {
  let result = 1n
  let base = mod(a)
  for (let e = N - 2n; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * base) % N
    base = (base * base) % N
  }
  return result
}

/** Lagrange interpolation at 0, by hand. */
function interpolate(shares: readonly SecretShare[]): bigint {
  let secret = 0n
  for (const { index: i, value } of shares) {
    let lambda = 1n
    for (const { index: j } of shares) if (j !== i) lambda = mod(lambda * BigInt(j) * inverse(BigInt(j - i)))
    secret = mod(secret + lambda * scalar(value))
  }
  return secret
}

/** Feldman check by hand with point arithmetic: share·G == Σ C_j·index^j. */
function feldman(share: SecretShare, commitments: readonly Uint8Array[]): boolean {
  let sum = secp256k1.Point.ZERO
  let power = 1n
  for (const c of commitments) {
    sum = sum.add(secp256k1.Point.fromBytes(c).multiply(power))
    power = mod(power * BigInt(share.index))
  }
  return G.multiply(scalar(share.value)).equals(sum)
}

function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]]
  return items.flatMap((item, i) => subsets(items.slice(i + 1), size - 1).map((rest) => [item, ...rest]))
}

const secret = keccak_256(utf8ToBytes('secret sharing test'))
const vectorShares: SecretShare[] = v.shares.map((s: { index: number; value: string }) => ({ index: s.index, value: unhex(s.value) }))
const vectorCommitments: Uint8Array[] = v.commitments.map(unhex)

describe('secret-sharing vectors', () => {
  test('default: every share verifies, any threshold of them recovers the secret, C_0 is its public key', () => {
    assert.equal(toHex0x(vectorCommitments[0]!), toHex0x(publicKey33(unhex(v.secret))))
    assert.equal(vectorCommitments.length, v.threshold)
    for (const share of vectorShares) {
      assert.ok(verifyShare(share, vectorCommitments), `share ${share.index}`)
      assert.ok(feldman(share, vectorCommitments), `share ${share.index} by hand`)
    }
    for (const chosen of subsets(vectorShares, v.threshold)) {
      assert.equal(toHex0x(recoverSecret(chosen, vectorCommitments)), v.secret)
      assert.equal(interpolate(chosen), scalar(unhex(v.secret)), 'Lagrange by hand')
    }
  })
})

describe('splitSecret', () => {
  test('default: 3 of 5, every 3-subset recovers, fewer do not', () => {
    const { shares, commitments } = splitSecret(secret, { threshold: 3, count: 5 })
    assert.deepEqual(shares.map((s) => s.index), [1, 2, 3, 4, 5])
    assert.equal(commitments.length, 3)
    assert.deepEqual(commitments[0], publicKey33(secret))
    for (const chosen of subsets(shares, 3)) assert.deepEqual(recoverSecret(chosen, commitments), secret)
    for (const chosen of subsets(shares, 2)) {
      assert.notEqual(interpolate(chosen), scalar(secret), 'two shares interpolate to something else')
      assert.throws(() => recoverSecret(chosen, commitments), { name: 'SecretSharingError', message: '2 valid shares, 3 needed' })
    }
    // More than the threshold is fine: the first `threshold` are combined after all are verified.
    assert.deepEqual(recoverSecret(shares, commitments), secret)
  })

  test('default: fresh coefficients each time (the commitments after C_0 differ)', () => {
    const a = splitSecret(secret, { threshold: 2, count: 3 })
    const b = splitSecret(secret, { threshold: 2, count: 3 })
    assert.deepEqual(a.commitments[0], b.commitments[0])
    assert.notDeepEqual(a.commitments[1], b.commitments[1])
    assert.notDeepEqual(a.shares[0]!.value, b.shares[0]!.value)
  })

  test('default: edges 2 of 2 and 32 of 32', () => {
    const pair = splitSecret(secret, { threshold: 2, count: 2 })
    assert.deepEqual(recoverSecret(pair.shares, pair.commitments), secret)
    const all = splitSecret(secret, { threshold: 32, count: 32 })
    assert.deepEqual(recoverSecret(all.shares, all.commitments), secret)
    assert.throws(() => recoverSecret(all.shares.slice(1), all.commitments), /31 valid shares, 32 needed/)
  })

  test('property: any k of n shares recover the secret and each share passes the Feldman check by hand', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 7 }).chain((count) =>
          fc.tuple(fc.constant(count), fc.integer({ min: 2, max: count }), fc.bigInt({ min: 1n, max: N - 1n }), fc.integer()),
        ),
        ([count, threshold, m, seed]) => {
          const secretKey = toBytes32(m)
          const { shares, commitments } = splitSecret(secretKey, { threshold, count })
          const start = Math.abs(seed) % count
          const chosen = [...shares.slice(start), ...shares.slice(0, start)].slice(0, threshold)
          assert.deepEqual(recoverSecret(chosen, commitments), secretKey)
          assert.ok(shares.every((share) => feldman(share, commitments)))
        },
      ),
      { seed: 20260101, numRuns: 40 },
    )
  })

  test('error: bad arguments', () => {
    assert.throws(() => splitSecret(secret, { threshold: 1, count: 3 }), { name: 'RangeError', message: 'threshold must be an integer in [2, count = 3], got 1' })
    assert.throws(() => splitSecret(secret, { threshold: 4, count: 3 }), { name: 'RangeError', message: 'threshold must be an integer in [2, count = 3], got 4' })
    assert.throws(() => splitSecret(secret, { threshold: 2, count: 33 }), { name: 'RangeError', message: 'count must be an integer in [2, 32], got 33' })
    assert.throws(() => splitSecret(secret, { threshold: 1.5 as never, count: 3 }), { name: 'RangeError', message: 'threshold must be an integer in [2, count = 3], got 1.5' })
    assert.throws(() => splitSecret(new Uint8Array(32), { threshold: 2, count: 2 }), {
      name: 'RangeError',
      message: 'secret must be a valid secp256k1 secret key (0 < k < n)',
    })
    assert.throws(() => splitSecret(secret.slice(1), { threshold: 2, count: 2 }), { name: 'RangeError', message: 'secret must be 32 bytes, got 31' })
  })
})

describe('verifyShare', () => {
  const { shares, commitments } = splitSecret(secret, { threshold: 3, count: 5 })

  test('error: a tampered share fails verification and is refused by recovery, named', () => {
    const share = shares[1]!
    const plusOne = { index: share.index, value: toBytes32(mod(scalar(share.value) + 1n)) }
    const flipped = { index: share.index, value: Uint8Array.from(share.value, (b, i) => (i === 31 ? b ^ 1 : b)) }
    const moved = { index: 4, value: share.value } // another guardian's position
    const foreign = { index: share.index, value: splitSecret(secret, { threshold: 3, count: 5 }).shares[1]!.value }
    for (const tampered of [plusOne, flipped, moved, foreign]) {
      assert.equal(verifyShare(tampered, commitments), false)
      assert.equal(feldman(tampered, commitments), false, 'and by hand')
      assert.throws(() => recoverSecret([shares[0]!, tampered, shares[2]!], commitments), {
        name: 'SecretSharingError',
        message: `share ${tampered.index} does not match the commitments`,
      })
    }
    assert.equal(verifyShare(share, commitments), true)
  })

  test('error: commitments of another polynomial, or one changed point, reject honest shares', () => {
    const other = splitSecret(secret, { threshold: 3, count: 5 }).commitments
    assert.equal(verifyShare(shares[0]!, other), false)
    // Swapped C_1 and C_2: share 1 cannot tell (1^j = 1 for every j), share 2 can.
    const changed = [commitments[0]!, commitments[2]!, commitments[1]!]
    assert.equal(verifyShare(shares[0]!, changed), true)
    assert.equal(verifyShare(shares[1]!, changed), false)
    // A zero share (the scalar 0) is not a valid FROST share: refused, not thrown.
    assert.equal(verifyShare({ index: 1, value: new Uint8Array(32) }, commitments), false)
  })

  test('error: a recovered value other than C_0 is refused (commitments re-based on another key)', () => {
    // With C_0 replaced, no honest share verifies, so recovery never combines them.
    const rebased = [publicKey33(keccak_256(utf8ToBytes('another key'))), ...commitments.slice(1)]
    assert.throws(() => recoverSecret(shares.slice(0, 3), rebased), { name: 'SecretSharingError', message: 'share 1 does not match the commitments' })
  })

  test('error: duplicates and malformed inputs', () => {
    assert.throws(() => recoverSecret([shares[0]!, shares[0]!, shares[1]!], commitments), { name: 'SecretSharingError', message: 'share 1 is given twice' })
    assert.throws(() => verifyShare({ index: 0, value: shares[0]!.value }, commitments), { name: 'RangeError', message: 'share.index must be an integer in [1, 32], got 0' })
    assert.throws(() => verifyShare({ index: 1, value: shares[0]!.value.slice(1) }, commitments), { name: 'RangeError', message: 'share.value must be 32 bytes, got 31' })
    assert.throws(() => verifyShare(shares[0]!, []), { name: 'RangeError', message: 'commitments must hold 2 to 32 points, got 0' })
    assert.throws(() => verifyShare(shares[0]!, [commitments[0]!]), { name: 'RangeError', message: 'commitments must hold 2 to 32 points, got 1' })
    assert.throws(() => verifyShare(shares[0]!, [commitments[0]!.slice(1), commitments[1]!]), { name: 'RangeError', message: 'commitments[0] must be 33 bytes, got 32' })
    assert.throws(() => recoverSecret('x' as never, commitments), { name: 'TypeError' })
  })
})

describe('packCommitments', () => {
  test('default: round trip, and the packed form is what publishEscrow takes (C_0 first)', () => {
    const { commitments } = splitSecret(secret, { threshold: 3, count: 5 })
    const packed = packCommitments(commitments)
    assert.equal(packed.length, 99)
    assert.deepEqual(packed.slice(0, 33), publicKey33(secret))
    assert.deepEqual(unpackCommitments(packed), commitments)
  })

  test('error: lengths', () => {
    assert.throws(() => unpackCommitments(new Uint8Array(34)), { name: 'RangeError', message: 'commitments must be 2 to 32 points of 33 bytes, got 34 bytes' })
    assert.throws(() => unpackCommitments(new Uint8Array(33)), { name: 'RangeError', message: 'commitments must be 2 to 32 points of 33 bytes, got 33 bytes' })
    assert.throws(() => unpackCommitments(new Uint8Array(0)), { name: 'RangeError' })
  })
})
