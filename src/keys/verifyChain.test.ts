import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { ed25519 } from '@noble/curves/ed25519.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { appIdForPod, issueAppKey } from './derive.ts'
import { publicKey33, signDigest, uncompressPublicKey } from './signature.ts'
import { verifyGetKeyChain, type VerifyGetKeyChainArgs } from './verifyChain.ts'

const secret = hexToBytes('0202020202020202020202020202020202020202020202020202020202020202')
const master = createMasterSecret(secret)
const appId = appIdForPod('oracle')
const N = secp256k1.Point.CURVE().n

function issued(options: { path?: string; purpose?: string; algorithm?: string } = {}) {
  const purpose = options.purpose ?? 'price-oracle'
  const { key, signatureChain } = master.getKey({ appId, path: options.path ?? 'reports', purpose, algorithm: options.algorithm })
  return { key, signatureChain, purpose }
}

function args(overrides: Partial<VerifyGetKeyChainArgs> = {}): VerifyGetKeyChainArgs {
  const { key, signatureChain, purpose } = issued()
  return { appId, key, signatureChain, purpose, masterAddress: master.address, ...overrides }
}

const stepsOf = (result: ReturnType<typeof verifyGetKeyChain>) => result.steps.map((s) => [s.step, s.ok])

test('default: a chain issued by the master secret verifies in two steps and yields the app key', () => {
  const result = verifyGetKeyChain(args())
  assert.equal(result.ok, true)
  assert.deepEqual(stepsOf(result), [['app-signature', true], ['kms-signature', true]])
  assert.deepEqual(result.appPublicKey33, issueAppKey(secret, appId).appPublicKey33)
  assert.equal(result.algorithm, 'secp256k1')
  assert.match(result.steps[0]!.detail, /^app key 0x0[23][0-9a-f]{64} signed "price-oracle:0[23][0-9a-f]{64}"$/)
  assert.equal(result.steps[1]!.detail, `master key ${master.address} issued the app key to app 0x${bytesToHex(appId)}`)
})

test('default: the public key may be given instead of the key, compressed or not, and the master address in any case', () => {
  const { key, signatureChain, purpose } = issued()
  const pub33 = publicKey33(key)
  const pub64 = uncompressPublicKey(pub33)
  const pub65 = secp256k1.getPublicKey(key, false)
  for (const publicKey of [pub33, pub64, pub65]) {
    const result = verifyGetKeyChain({ appId, publicKey, signatureChain, purpose, masterAddress: master.address.toLowerCase() })
    assert.equal(result.ok, true)
    assert.deepEqual(result.derivedPublicKey, pub33)
  }
  assert.equal(verifyGetKeyChain({ appId, key, publicKey: pub64, signatureChain, purpose, masterAddress: master.address }).ok, true)
})

test('vectors: the dstack simulator chains verify against the simulator KMS root', () => {
  const v = JSON.parse(readFileSync(new URL('../../test/vectors/dstack-simulator.json', import.meta.url), 'utf8')) as {
    app_id: string
    app_pub_compressed: string
    kms_signature: string
    kms_root_address: string
    getKey: { purpose: string; key: string; derived_pub_compressed: string; signature_chain_0: string }[]
  }
  for (const entry of v.getKey) {
    const result = verifyGetKeyChain({
      appId: hexToBytes(v.app_id),
      publicKey: hexToBytes(entry.derived_pub_compressed),
      signatureChain: [hexToBytes(entry.signature_chain_0), hexToBytes(v.kms_signature)],
      purpose: entry.purpose,
      masterAddress: v.kms_root_address,
    })
    assert.equal(result.ok, true, entry.purpose)
    assert.equal(bytesToHex(result.appPublicKey33!), v.app_pub_compressed)
  }
})

test('default: ed25519 chains sign the 32-byte public key', () => {
  const { key, signatureChain, purpose } = issued({ algorithm: 'ed25519' })
  const result = verifyGetKeyChain({ appId, key, signatureChain, purpose, algorithm: 'ed25519', masterAddress: master.address })
  assert.equal(result.ok, true)
  assert.deepEqual(result.derivedPublicKey, ed25519.getPublicKey(key))
  const asSecp = verifyGetKeyChain({ appId, key, signatureChain, purpose, masterAddress: master.address })
  assert.equal(asSecp.ok, false, 'the same chain read as secp256k1 names another public key')
})

test('default: a message signed by the derived key is the third step (secp256k1: keccak256, no prefix)', () => {
  const { key, signatureChain, purpose } = issued()
  const message = utf8ToBytes('ETH/USD 3000.00 @ 1700000000')
  const good = verifyGetKeyChain({ appId, key, signatureChain, purpose, masterAddress: master.address, message, messageSignature: signDigest(keccak_256(message), key) })
  assert.equal(good.ok, true)
  assert.deepEqual(stepsOf(good), [['app-signature', true], ['kms-signature', true], ['message-signature', true]])
  const other = signDigest(keccak_256(message), secp256k1.utils.randomSecretKey())
  const bad = verifyGetKeyChain({ appId, key, signatureChain, purpose, masterAddress: master.address, message, messageSignature: other })
  assert.equal(bad.ok, false)
  assert.deepEqual(stepsOf(bad).at(-1), ['message-signature', false])
  assert.match(bad.steps[2]!.detail, /not by the derived key/)
})

test('default: an ed25519 message signature is checked over the message itself', () => {
  const { key, signatureChain, purpose } = issued({ algorithm: 'ed25519' })
  const message = utf8ToBytes('hello')
  const base = { appId, key, signatureChain, purpose, algorithm: 'ed25519', masterAddress: master.address, message }
  assert.equal(verifyGetKeyChain({ ...base, messageSignature: ed25519.sign(message, key) }).ok, true)
  const forged = ed25519.sign(utf8ToBytes('other'), key)
  assert.deepEqual(stepsOf(verifyGetKeyChain({ ...base, messageSignature: forged })).at(-1), ['message-signature', false])
})

test('error: forged chains give failed steps, never a throw', () => {
  const real = args()
  const other = createMasterSecret(hexToBytes('0303030303030303030303030303030303030303030303030303030303030303'))
  const cases: [string, Partial<VerifyGetKeyChainArgs>, [string, boolean][]][] = [
    ['swapped purpose', { purpose: 'other-purpose' }, [['app-signature', true], ['kms-signature', false]]],
    ['another app', { appId: appIdForPod('wallet') }, [['app-signature', true], ['kms-signature', false]]],
    ['another root', { masterAddress: other.address }, [['app-signature', true], ['kms-signature', false]]],
    ['another key', { key: secp256k1.utils.randomSecretKey() }, [['app-signature', true], ['kms-signature', false]]],
    [
      'another root signed it',
      { signatureChain: other.getKey({ appId, path: 'reports', purpose: 'price-oracle' }).signatureChain, key: other.getKey({ appId, path: 'reports', purpose: 'price-oracle' }).key },
      [['app-signature', true], ['kms-signature', false]],
    ],
  ]
  for (const [name, overrides, expected] of cases) {
    const result = verifyGetKeyChain({ ...real, ...overrides })
    assert.equal(result.ok, false, name)
    assert.deepEqual(stepsOf(result), expected, name)
  }
})

test('error: malformed signatures are failed steps that say why', () => {
  const real = args()
  const [sig0, sig1] = real.signatureChain as [Uint8Array, Uint8Array]
  const withV = (sig: Uint8Array, v: number) => Uint8Array.from([...sig.subarray(0, 64), v])
  const highS = (sig: Uint8Array) => {
    const s = BigInt('0x' + bytesToHex(sig.subarray(32, 64)))
    const flipped = hexToBytes((N - s).toString(16).padStart(64, '0'))
    return Uint8Array.from([...sig.subarray(0, 32), ...flipped, sig[64]! ^ 1])
  }
  const badV = verifyGetKeyChain({ ...real, signatureChain: [withV(sig0, 5), sig1] })
  assert.deepEqual(stepsOf(badV), [['app-signature', false], ['kms-signature', false]])
  assert.match(badV.steps[0]!.detail, /v must be 0, 1, 27 or 28, got 5/)
  assert.match(badV.steps[1]!.detail, /^not checked/)
  assert.equal(badV.appPublicKey33, undefined)

  const malleated = verifyGetKeyChain({ ...real, signatureChain: [sig0, highS(sig1)] })
  assert.deepEqual(stepsOf(malleated), [['app-signature', true], ['kms-signature', false]])
  assert.match(malleated.steps[1]!.detail, /high s/)

  const zeros = verifyGetKeyChain({ ...real, signatureChain: [new Uint8Array(65), sig1] })
  assert.match(zeros.steps[0]!.detail, /r must be in \[1, n-1\]/)

  const eth = verifyGetKeyChain({ ...real, signatureChain: [withV(sig0, sig0[64]! + 27), withV(sig1, sig1[64]! + 27)] })
  assert.equal(eth.ok, true, 'v in {27, 28} is accepted (docs/protocol.md#registry-contract)')
})

test('error: malformed arguments throw TypeError or RangeError naming the argument', () => {
  const real = args()
  const cases: [Partial<VerifyGetKeyChainArgs> | Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    [{ appId: new Uint8Array(19) }, RangeError, /appId must be 20 bytes, got 19/],
    [{ appId: bytesToHex(appId) }, TypeError, /appId must be a Uint8Array, got string/],
    [{ purpose: 5 }, TypeError, /purpose must be a string, got number/],
    [{ masterAddress: '0x1234' }, RangeError, /masterAddress must be 0x followed by 40 hex digits/],
    [{ signatureChain: 'ab' }, TypeError, /signatureChain must be an array, got string/],
    [{ signatureChain: [(real.signatureChain as Uint8Array[])[0]!] }, RangeError, /signatureChain must hold 2 signatures, got 1/],
    [{ signatureChain: [new Uint8Array(64), new Uint8Array(65)] }, RangeError, /signatureChain\[0\] must be 65 bytes, got 64/],
    [{ signatureChain: [new Uint8Array(65), 'x'] }, TypeError, /signatureChain\[1\] must be a Uint8Array/],
    [{ algorithm: 'p256' }, RangeError, /unsupported key algorithm "p256"/],
    [{ key: undefined }, TypeError, /give the derived key or its publicKey/],
    [{ key: new Uint8Array(31) }, RangeError, /key must be 32 bytes, got 31/],
    [{ key: undefined, publicKey: new Uint8Array(33) }, RangeError, /publicKey is not a valid secp256k1 public key/],
    [{ publicKey: publicKey33(secp256k1.utils.randomSecretKey()) }, RangeError, /publicKey is not the public key of key/],
    [{ message: new Uint8Array(1) }, TypeError, /message and messageSignature go together/],
    [{ message: new Uint8Array(1), messageSignature: new Uint8Array(64) }, RangeError, /messageSignature must be 65 bytes, got 64/],
  ]
  for (const [overrides, type, pattern] of cases) {
    assert.throws(() => verifyGetKeyChain({ ...real, ...overrides } as VerifyGetKeyChainArgs), (error: unknown) => {
      assert.ok(error instanceof type, `${String(error)} is a ${type.name}`)
      assert.match((error as Error).message, pattern)
      return true
    })
  }
  assert.throws(() => verifyGetKeyChain(null as never), /arguments must be an object, got null/)
})
