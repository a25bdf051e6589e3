import assert from 'node:assert/strict'
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto'
import { test } from 'node:test'
import { ed25519 } from '@noble/curves/ed25519.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { hexToBytes } from '@noble/hashes/utils.js'
import { dstackSign, dstackVerify, normalizeSignAlgorithm } from './dstackSign.ts'

const key = hexToBytes('b9fbb7171185c421c58610a2acba8ceae93623ae47815618cbad1e98fc042cb7')
const data = Buffer.from('hello dstack')
const N = secp256k1.Point.CURVE().n

test('default: secp256k1 signs SHA-256(data), 64 bytes, deterministic, low-S; node:crypto verifies it', () => {
  const { signature, publicKey } = dstackSign('secp256k1', key, data)
  assert.equal(signature.length, 64)
  assert.deepEqual(publicKey, secp256k1.getPublicKey(key, true))
  assert.deepEqual(dstackSign('secp256k1', key, data).signature, signature, 'RFC 6979')
  const digest = createHash('sha256').update(data).digest()
  assert.deepEqual(dstackSign('secp256k1_prehashed', key, digest).signature, signature, 'prehashed over SHA-256(data) is the same signature')
  assert.ok(BigInt('0x' + Buffer.from(signature.subarray(32)).toString('hex')) <= N / 2n)
  // An independent verifier (OpenSSL) over the same key and data.
  const jwk = { kty: 'EC', crv: 'secp256k1', x: Buffer.from(secp256k1.getPublicKey(key, false).subarray(1, 33)).toString('base64url'), y: Buffer.from(secp256k1.getPublicKey(key, false).subarray(33)).toString('base64url') }
  assert.ok(nodeVerify('sha256', data, { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, signature))
  assert.equal(dstackVerify('secp256k1', data, signature, publicKey), true)
  assert.equal(dstackVerify('secp256k1', data, signature, secp256k1.getPublicKey(key, false)), true, 'uncompressed keys too')
  assert.equal(dstackVerify('secp256k1_prehashed', digest, signature, publicKey), true)
  assert.equal(dstackVerify('secp256k1', Buffer.from('other'), signature, publicKey), false)
})

test('default: ed25519 signs with node:crypto exactly as RFC 8032 (noble) does', () => {
  const { signature, publicKey } = dstackSign('ed25519', key, data)
  assert.deepEqual(signature, ed25519.sign(data, key))
  assert.deepEqual(publicKey, ed25519.getPublicKey(key))
  assert.equal(dstackVerify('ed25519', data, signature, publicKey), true)
  assert.equal(dstackVerify('ed25519', Buffer.from('x'), signature, publicKey), false)
})

test('security: a high-S twin of a valid secp256k1 signature does not verify (k256 refuses malleated signatures)', () => {
  const { signature, publicKey } = dstackSign('secp256k1', key, data)
  const s = BigInt('0x' + Buffer.from(signature.subarray(32)).toString('hex'))
  const twin = Uint8Array.from(signature)
  twin.set(hexToBytes((N - s).toString(16).padStart(64, '0')), 32)
  assert.equal(dstackVerify('secp256k1', data, twin, publicKey), false)
})

test('error: bad algorithms, keys, signatures and prehashed lengths', () => {
  assert.equal(normalizeSignAlgorithm('k256'), 'secp256k1')
  assert.throws(() => normalizeSignAlgorithm('p256'), /unsupported algorithm "p256"/)
  assert.throws(() => normalizeSignAlgorithm(''), /unsupported algorithm ""/)
  assert.throws(() => normalizeSignAlgorithm(1), TypeError)
  assert.throws(() => dstackSign('secp256k1_prehashed', key, data), /requires a 32-byte digest, but received 12 bytes/)
  const { signature, publicKey } = dstackSign('secp256k1', key, data)
  assert.throws(() => dstackVerify('secp256k1', data, signature, publicKey.subarray(1)), /SEC1 keys are 33 or 65 bytes/)
  assert.throws(() => dstackVerify('secp256k1', data, signature, Uint8Array.of(2, ...new Uint8Array(32).fill(0xff))), /not a secp256k1 point/)
  assert.throws(() => dstackVerify('secp256k1', data, signature.subarray(1), publicKey), /expected 64 bytes/)
  assert.throws(() => dstackVerify('secp256k1', data, new Uint8Array(64), publicKey), /r and s must be in/)
  const ed = dstackSign('ed25519', key, data)
  assert.throws(() => dstackVerify('ed25519', data, ed.signature, new Uint8Array(32).fill(0xff)), /not an ed25519 point/)
  assert.throws(() => dstackVerify('ed25519', data, ed.signature, publicKey), /ed25519 keys are 32 bytes/)
  assert.throws(() => dstackVerify('ed25519', data, ed.signature.subarray(1), ed.publicKey), /64 bytes/)
})
