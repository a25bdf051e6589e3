import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { format, inspect } from 'node:util'
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import { keccak_256 } from '@noble/hashes/sha3.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { toHex0x } from '../keys/bytes.ts'
import { appIdForPod, deriveSealkey, getKeyResponse, issueAppKey } from '../keys/derive.ts'
import { eciesDecrypt } from '../keys/ecies.ts'
import { addressOfPublicKey, publicKey33, publicKey64, recoverSigner, signDigest } from '../keys/signature.ts'
import { attestationDigest } from '../keys/typedData.ts'
import { createMasterSecret, generateMasterSecret, MAX_CACHED_APPS } from './masterSecret.ts'

const vectors = JSON.parse(readFileSync(new URL('../../test/vectors/keymanager-derivation.json', import.meta.url), 'utf8'))
const SECRET = hexToBytes(vectors.masterSecret.slice(2))
const SECRET_HEX = bytesToHex(SECRET)
const REGISTRY = '0x5FbDB2315678afecb367f032d93F642f64180aa3' as const
const DIGEST = keccak_256(utf8ToBytes('digest'))

/** Every way a secret could leak into text: hex, 0x-hex, base64, and the decimal bytes a Uint8Array prints. */
function assertNoSecret(text: string): void {
  assert.ok(!text.toLowerCase().includes(SECRET_HEX), text)
  assert.ok(!text.includes(Buffer.from(SECRET).toString('base64')), text)
  assert.ok(!text.includes(Array.from(SECRET.subarray(0, 8)).join(', ')), text)
  assert.ok(!text.includes(Array.from(SECRET.subarray(0, 8)).join(',')), text)
}

describe('createMasterSecret', () => {
  test('default: public facts, copies, frozen', () => {
    const input = SECRET.slice()
    const m = createMasterSecret(input)
    input.fill(0) // the caller wipes its copy; the holder kept its own
    assert.equal(m.address, vectors.xPub)
    assert.equal(toHex0x(m.publicKey33), vectors.masterPublicKey33)
    assert.equal(toHex0x(m.publicKey64), vectors.masterPublicKey64)
    assert.equal(m.fingerprint, vectors.xPub.slice(2, 10).toLowerCase())
    assert.equal(m.expired, false)
    assert.equal(recoverSigner(DIGEST, m.signDigest(DIGEST)), m.address)
    assert.deepEqual(m.signDigest(DIGEST), signDigest(DIGEST, SECRET))
    // Public keys are copies: mutating one changes nothing.
    m.publicKey33.fill(0)
    assert.equal(toHex0x(m.publicKey33), vectors.masterPublicKey33)
    assert.ok(Object.isFrozen(m))
    assert.throws(() => {
      ;(m as { signDigest: unknown }).signDigest = () => SECRET
    }, TypeError)
    assert.throws(() => {
      ;(m as unknown as Record<string, unknown>).secret = SECRET
    }, TypeError)
  })

  test('error: not a valid secret key', () => {
    assert.throws(() => createMasterSecret(new Uint8Array(32)), {
      name: 'RangeError',
      message: 'secret must be a valid secp256k1 secret key (0 < k < n)',
    })
    assert.throws(() => createMasterSecret(new Uint8Array(31)), { name: 'RangeError', message: 'secret must be 32 bytes, got 31' })
    assert.throws(() => createMasterSecret(SECRET_HEX as never), {
      name: 'TypeError',
      message: 'secret must be a Uint8Array, got string',
    })
    const n = secp256k1.Point.CURVE().n
    assert.throws(() => createMasterSecret(hexToBytes(n.toString(16))), RangeError)
  })
})

test('generateMasterSecret', () => {
  const a = generateMasterSecret()
  const b = generateMasterSecret()
  assert.notEqual(a.address, b.address)
  assert.equal(addressOfPublicKey(a.publicKey33), a.address)
  a.exportForSealing((secret) => assert.deepEqual(publicKey64(secret), a.publicKey64))
})

describe('never prints the secret', () => {
  test('default: JSON.stringify, util.inspect, String, template, console formatting', () => {
    const m = createMasterSecret(SECRET)
    m.sealkey(appIdForPod('app'))
    m.getKey({ appId: appIdForPod('app'), path: 'p', purpose: 'q' })
    const texts = [
      JSON.stringify(m),
      JSON.stringify({ nested: { m } }),
      inspect(m),
      inspect(m, { showHidden: true, depth: 10, getters: true }),
      inspect({ m }, { depth: 10 }),
      String(m),
      `${m}`,
      Object.keys(m).join(','),
      format('%o %O %j %s', m, m, m, m),
    ]
    for (const text of texts) assertNoSecret(text)
    assert.equal(JSON.stringify(m), `{"type":"MasterSecret","fingerprint":"${m.fingerprint}"}`)
    assert.equal(String(m), `MasterSecret(${m.fingerprint})`)
    assert.equal(inspect(m), `MasterSecret(${m.fingerprint})`)
  })
})

describe('getKey and sealkey', () => {
  test('default: equal to derive.ts, per app and algorithm', () => {
    const m = createMasterSecret(SECRET)
    for (const app of vectors.apps) {
      const appId = appIdForPod(app.podName)
      const issued = issueAppKey(SECRET, appId)
      for (const request of app.getKey) {
        const got = m.getKey({ appId, ...request })
        assert.deepEqual(got, getKeyResponse({ appKey: issued.appKey, kmsSignature: issued.kmsSignature, ...request }))
        assert.equal(toHex0x(got.key), request.key)
        assert.deepEqual(got.signatureChain.map(toHex0x), request.signatureChain)
      }
      assert.equal(toHex0x(m.sealkey(appId)), app.sealkey)
    }
  })

  test('default: cached sealkey equals the uncached derivation and is handed out as a copy', () => {
    const m = createMasterSecret(SECRET)
    const appId = appIdForPod('web-1')
    const first = m.sealkey(appId)
    first.fill(0) // a caller wiping its copy must not touch the cache
    const second = m.sealkey(appId)
    assert.deepEqual(second, deriveSealkey(SECRET, appId))
    assert.notEqual(first, second)
    // getKey at the sealkey path agrees with the cached sealkey.
    assert.deepEqual(m.getKey({ appId, path: 'keymanager/sealkey', purpose: '' }).key, second)
    // A returned getKey key is a copy too.
    m.getKey({ appId, path: 'keymanager/sealkey', purpose: '' }).key.fill(0)
    assert.deepEqual(m.sealkey(appId), second)
  })

  test('default: cache is bounded; evicted apps derive again to the same keys', () => {
    const m = createMasterSecret(SECRET)
    const first = appIdForPod('pod-0')
    const key = m.sealkey(first)
    for (let i = 1; i <= MAX_CACHED_APPS; i++) {
      const appId = new Uint8Array(20)
      new DataView(appId.buffer).setUint32(0, i)
      m.sealkey(appId)
    }
    assert.deepEqual(m.sealkey(first), key)
  })

  test('error: bad requests', () => {
    const m = createMasterSecret(SECRET)
    assert.throws(() => m.sealkey(new Uint8Array(19)), { name: 'RangeError', message: 'appId must be 20 bytes, got 19' })
    assert.throws(() => m.getKey({ appId: appIdForPod('a'), path: 'p', purpose: 'q', algorithm: 'rsa' }), {
      name: 'RangeError',
      message: 'unsupported key algorithm "rsa": expected secp256k1, k256 or ed25519',
    })
  })
})

describe('signAttestation', () => {
  test('default: EIP-712 Attestation signed by M', () => {
    const m = createMasterSecret(SECRET)
    const args = { chainId: 31337, registry: REGISTRY, hostname: 'app', appData: new Uint8Array(32).fill(1) }
    const signature = m.signAttestation(args)
    assert.deepEqual(signature, signDigest(attestationDigest(args), SECRET))
    assert.equal(recoverSigner(attestationDigest(args), signature), m.address)
  })

  test('error: bad arguments', () => {
    const m = createMasterSecret(SECRET)
    assert.throws(() => m.signAttestation({ chainId: 1, registry: REGISTRY, hostname: 'app', appData: '0x00' }), {
      name: 'RangeError',
      message: 'appData must be 32 bytes (64 hex digits), got 2 hex digits',
    })
  })
})

describe('encryptTo', () => {
  test('default: the recipient decrypts M', () => {
    const m = createMasterSecret(SECRET)
    const recipient = secp256k1.utils.randomSecretKey()
    const aad = utf8ToBytes('aad')
    assert.deepEqual(eciesDecrypt(recipient, m.encryptTo(publicKey33(recipient), aad), aad), SECRET)
  })
})

describe('exportForSealing', () => {
  test('default: a copy, wiped after fn returns', () => {
    const m = createMasterSecret(SECRET)
    let kept: Uint8Array | undefined
    const result = m.exportForSealing((secret) => {
      kept = secret
      assert.deepEqual(secret, SECRET)
      secret[0]! ^= 0xff // even a careless provider cannot damage the holder's secret
      return 'sealed'
    })
    assert.equal(result, 'sealed')
    assert.deepEqual(kept, new Uint8Array(32))
    assert.deepEqual(m.signDigest(DIGEST), signDigest(DIGEST, SECRET))
  })

  test('default: async fn: wiped once its promise settles', async () => {
    const m = createMasterSecret(SECRET)
    let kept: Uint8Array | undefined
    const sealed = await m.exportForSealing(async (secret) => {
      kept = secret
      await new Promise((resolve) => setTimeout(resolve, 5))
      return bytesToHex(secret)
    })
    assert.equal(sealed, SECRET_HEX)
    assert.deepEqual(kept, new Uint8Array(32))
  })

  test('error: fn throws: the copy is wiped and the error passes through', () => {
    const m = createMasterSecret(SECRET)
    let kept: Uint8Array | undefined
    assert.throws(
      () =>
        m.exportForSealing((secret) => {
          kept = secret
          throw new Error('provider failed')
        }),
      { message: 'provider failed' },
    )
    assert.deepEqual(kept, new Uint8Array(32))
    assert.throws(() => m.exportForSealing('x' as never), { name: 'TypeError', message: 'exportForSealing expects a function' })
  })
})

describe('expire', () => {
  test('default: wipes the secret and cached keys; later calls throw', () => {
    // Watch every fill(0) expire() performs: the buffers it wipes must include M and the cached keys.
    const appId = appIdForPod('app')
    const m = createMasterSecret(SECRET)
    const sealkey = m.sealkey(appId)
    const appKey = issueAppKey(SECRET, appId).appKey
    m.getKey({ appId, path: 'p', purpose: 'q' })
    const wiped: string[] = []
    const fill = Uint8Array.prototype.fill
    Uint8Array.prototype.fill = function (this: Uint8Array, ...args: Parameters<Uint8Array['fill']>) {
      if (args[0] === 0) wiped.push(bytesToHex(this))
      const result = fill.apply(this, args)
      if (args[0] === 0) assert.ok(this.every((b) => b === 0))
      return result
    } as Uint8Array['fill']
    try {
      m.expire()
    } finally {
      Uint8Array.prototype.fill = fill
    }
    assert.ok(wiped.includes(SECRET_HEX), 'M wiped')
    assert.ok(wiped.includes(bytesToHex(appKey)), 'app key wiped')
    assert.ok(wiped.includes(bytesToHex(sealkey)), 'sealkey wiped')
    assert.equal(m.expired, true)
    const expired = { message: 'master secret expired' }
    assert.throws(() => m.signDigest(DIGEST), expired)
    assert.throws(() => m.sealkey(appId), expired)
    assert.throws(() => m.getKey({ appId, path: 'p', purpose: 'q' }), expired)
    assert.throws(() => m.signAttestation({ chainId: 1, registry: REGISTRY, hostname: 'a', appData: new Uint8Array(32) }), expired)
    assert.throws(() => m.encryptTo(publicKey33(secp256k1.utils.randomSecretKey()), new Uint8Array(0)), expired)
    assert.throws(() => m.exportForSealing(() => 1), expired)
    // Public facts stay readable; expire is idempotent.
    assert.equal(m.address, vectors.xPub)
    m.expire()
    assertNoSecret(inspect(m))
  })
})
