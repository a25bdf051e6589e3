import assert from 'node:assert/strict'
import { createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { hexToBytes } from '@noble/hashes/utils.js'
import { concat, keccak256, recoverAddress, stringToBytes, toHex } from 'viem'
import { toHex0x, toHexPlain } from './bytes.ts'
import {
  appIdForPod,
  appSignatureDigest,
  appSignatureMessage,
  deriveAppKey,
  deriveKey,
  derivedPublicKey,
  deriveSealkey,
  getKeyResponse,
  issueAppKey,
  kmsSignatureDigest,
  kmsSignatureMessage,
  normalizeKeyAlgorithm,
  SEALKEY_PATH,
} from './derive.ts'
import { addressOfPublicKey, publicKey33, recoverPublicKey33, recoverSigner, verifyDigestSignature } from './signature.ts'

type Hex = `0x${string}`
const readVectors = (name: string) => JSON.parse(readFileSync(new URL(`../../test/vectors/${name}`, import.meta.url), 'utf8'))
const unhex = (value: string) => hexToBytes(value.startsWith('0x') ? value.slice(2) : value)

/** Independent HKDF (OpenSSL through node:crypto) of the dstack derivation. */
function opensslHkdf(ikm: Uint8Array, info: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, 'RATLS', info, 32))
}

/** Independent ed25519 public key (OpenSSL): the 32-byte seed wrapped in PKCS#8. */
function opensslEd25519Public(seed: Uint8Array): Uint8Array {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed])
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' })
  return new Uint8Array(Buffer.from(jwk.x!, 'base64url'))
}

describe('dstack simulator vectors', () => {
  const v = readVectors('dstack-simulator.json')
  const appKey = unhex(v.app_key)
  const appId = unhex(v.app_id)
  const kmsSignature = unhex(v.kms_signature)

  test('default: app key, kms message and kms signature', () => {
    assert.equal(toHexPlain(publicKey33(appKey)), v.app_pub_compressed)
    assert.equal(toHexPlain(kmsSignatureMessage(appId, publicKey33(appKey))), v.kms_message_hex)
    const digest = kmsSignatureDigest(appId, publicKey33(appKey))
    assert.equal(recoverSigner(digest, kmsSignature).toLowerCase(), v.kms_root_address)
    assert.equal(toHexPlain(recoverPublicKey33(digest, kmsSignature)), v.kms_root_pub_compressed)
    assert.equal(verifyDigestSignature(digest, kmsSignature, v.kms_root_address), true)
  })

  for (const entry of v.getKey) {
    test(`default: getKey path ${JSON.stringify(entry.path)} purpose ${JSON.stringify(entry.purpose)}`, () => {
      const response = getKeyResponse({ appKey, kmsSignature, path: entry.path, purpose: entry.purpose })
      assert.equal(toHexPlain(response.key), entry.key)
      const pub = derivedPublicKey(response.key, 'secp256k1')
      assert.equal(toHexPlain(pub), entry.derived_pub_compressed)
      if (entry.derived_address) assert.equal(addressOfPublicKey(pub).toLowerCase(), entry.derived_address)
      assert.equal(toHexPlain(response.signatureChain[0]), entry.signature_chain_0)
      assert.equal(toHexPlain(response.signatureChain[1]), v.kms_signature)
      // signature_chain[0] recovers to the app key.
      assert.deepEqual(recoverPublicKey33(appSignatureDigest(entry.purpose, pub), response.signatureChain[0]), publicKey33(appKey))
    })
  }
})

describe('keymanager derivation vectors', () => {
  const v = readVectors('keymanager-derivation.json')
  const master = unhex(v.masterSecret)

  for (const app of v.apps) {
    test(`default: ${JSON.stringify(app.podName)}`, () => {
      const appId = appIdForPod(app.podName)
      assert.equal(toHex0x(appId), app.appId)
      const issued = issueAppKey(master, appId)
      assert.equal(toHex0x(issued.appKey), app.appKey)
      assert.equal(toHex0x(issued.appPublicKey33), app.appPublicKey33)
      assert.equal(addressOfPublicKey(issued.appPublicKey33), app.appAddress)
      assert.equal(toHex0x(issued.kmsSignature), app.kmsSignature)
      assert.equal(toHex0x(deriveSealkey(master, appId)), app.sealkey)
      for (const request of app.getKey) {
        const response = getKeyResponse({ appKey: issued.appKey, kmsSignature: issued.kmsSignature, ...request })
        assert.equal(toHex0x(response.key), request.key)
        assert.equal(toHex0x(derivedPublicKey(response.key, normalizeKeyAlgorithm(request.algorithm))), request.publicKey)
        assert.deepEqual(response.signatureChain.map(toHex0x), request.signatureChain)
      }
    })

    test(`cross-check by independent paths: ${JSON.stringify(app.podName)}`, async () => {
      // appId: viem's keccak over the tagged utf-8 name.
      assert.equal(keccak256(stringToBytes(`keymanager.app.v1:${app.podName}`)).slice(0, 42), app.appId)
      // HKDF: OpenSSL.
      const appKey = opensslHkdf(master, concat([unhex(app.appId), stringToBytes('app-key')]))
      assert.equal(toHex0x(appKey), app.appKey)
      assert.equal(toHex0x(opensslHkdf(appKey, stringToBytes(SEALKEY_PATH))), app.sealkey)
      // signature_chain[1] recovers (viem) to xPub over "dstack-kms-issued:" ‖ appId ‖ appPub33.
      const kmsHash = keccak256(concat([toHex('dstack-kms-issued:'), app.appId as Hex, app.appPublicKey33 as Hex]))
      assert.equal(await recoverAddress({ hash: kmsHash, signature: app.kmsSignature }), v.xPub)
      for (const request of app.getKey) {
        assert.equal(toHex0x(opensslHkdf(appKey, stringToBytes(request.path))), request.key)
        const pub =
          request.algorithm === 'ed25519' ? toHexPlain(opensslEd25519Public(unhex(request.key))) : request.publicKey.slice(2)
        assert.equal(`0x${pub}`, request.publicKey)
        // signature_chain[0] recovers (viem) to the app key's address over purpose ":" hex(pub).
        const appHash = keccak256(stringToBytes(`${request.purpose}:${pub}`))
        assert.equal(await recoverAddress({ hash: appHash, signature: request.signatureChain[0] }), app.appAddress)
        assert.equal(request.signatureChain[1], app.kmsSignature)
      }
    })
  }
})

describe('appIdForPod', () => {
  test('default', () => {
    assert.equal(toHex0x(appIdForPod('app')), keccak256(toHex('keymanager.app.v1:app')).slice(0, 42))
    assert.equal(appIdForPod('app').length, 20)
  })

  test('error: bad pod name', () => {
    assert.throws(() => appIdForPod(''), { name: 'RangeError', message: 'podName must not be empty' })
    assert.throws(() => appIdForPod(1 as never), { name: 'TypeError', message: 'podName must be a string, got number' })
  })
})

describe('derivation arguments', () => {
  const master = hexToBytes('11'.repeat(32))

  test('default: purpose does not change the key; sealkey is getKey at keymanager/sealkey', () => {
    const { appKey, kmsSignature } = issueAppKey(master, appIdForPod('x'))
    const a = getKeyResponse({ appKey, kmsSignature, path: 'p', purpose: 'one' })
    const b = getKeyResponse({ appKey, kmsSignature, path: 'p', purpose: 'two' })
    assert.deepEqual(a.key, b.key)
    assert.notDeepEqual(a.signatureChain[0], b.signatureChain[0])
    const sealkey = getKeyResponse({ appKey, kmsSignature, path: SEALKEY_PATH, purpose: '' }).key
    assert.deepEqual(deriveSealkey(master, appIdForPod('x')), sealkey)
    // ed25519 uses the same 32 bytes; only the signed public key differs.
    const ed = getKeyResponse({ appKey, kmsSignature, path: 'p', purpose: 'one', algorithm: 'ed25519' })
    assert.deepEqual(ed.key, a.key)
    assert.equal(appSignatureMessage('one', derivedPublicKey(ed.key, 'ed25519')), `one:${toHexPlain(opensslEd25519Public(a.key))}`)
    assert.deepEqual(getKeyResponse({ appKey, kmsSignature, path: 'p', purpose: 'one', algorithm: 'k256' }), a)
    assert.deepEqual(getKeyResponse({ appKey, kmsSignature, path: 'p', purpose: 'one', algorithm: '' }), a)
  })

  test('error: bad algorithm', () => {
    assert.equal(normalizeKeyAlgorithm(undefined), 'secp256k1')
    assert.throws(() => normalizeKeyAlgorithm('rsa'), {
      name: 'RangeError',
      message: 'unsupported key algorithm "rsa": expected secp256k1, k256 or ed25519',
    })
    assert.throws(() => normalizeKeyAlgorithm(5), { name: 'TypeError', message: 'algorithm must be a string, got number' })
  })

  test('error: bad keys and ids', () => {
    assert.throws(() => deriveAppKey(master, new Uint8Array(32)), { name: 'RangeError', message: 'appId must be 20 bytes, got 32' })
    assert.throws(() => deriveAppKey(new Uint8Array(32), new Uint8Array(20)), {
      name: 'RangeError',
      message: 'masterSecret must be a valid secp256k1 secret key (0 < k < n)',
    })
    assert.throws(() => deriveKey(new Uint8Array(31), 'p'), { name: 'RangeError', message: 'appKey must be 32 bytes, got 31' })
    assert.throws(() => deriveKey(new Uint8Array(32), 5 as never), { name: 'TypeError', message: 'path must be a string, got number' })
    assert.throws(() => appSignatureMessage('p', new Uint8Array(65)), {
      name: 'RangeError',
      message: 'publicKey must be 32 or 33 bytes, got 65',
    })
    assert.throws(() => kmsSignatureMessage(new Uint8Array(20), new Uint8Array(65)), {
      name: 'RangeError',
      message: 'appPublicKey33 must be 33 bytes, got 65',
    })
  })
})
