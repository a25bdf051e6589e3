// The known-answer vectors of docs/protocol.md#dstack-api (test/vectors/dstack-api.json): recomputed from their inputs,
// and cross-checked by independent paths (node:crypto's HKDF, SHA-384, ECDSA and X.509; noble's ed25519).
import assert from 'node:assert/strict'
import { createHash, createPublicKey, hkdfSync, verify as nodeVerify, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { ed25519 } from '@noble/curves/ed25519.js'
import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { decodeDstackAttestation, encodeDstackAttestation } from '../tee/dstackAttestation.ts'
import { runtimeEventDigest, runtimeEventsOf, type TdxEvent } from '../tee/eventLog.ts'
import { appCaCertificate, verifyAppCaCertificate } from './appCa.ts'
import { deriveP256Key } from './derive.ts'
import { dstackSign, normalizeSignAlgorithm, SIGN_KEY_PATH, SIGN_KEY_PURPOSE, signKeyAlgorithm } from './dstackSign.ts'

const v = JSON.parse(readFileSync(new URL('../../test/vectors/dstack-api.json', import.meta.url), 'utf8')) as {
  masterSecret: string
  xPub: string
  appId: string
  appCa: { key: string; publicKey33: string; purpose: string; signatureChain: string[]; certificate: string }
  tlsKeys: { path: string; key: string }[]
  sign: { algorithm: string; data: string; signature: string; publicKey: string; signatureChain: string[] }[]
  runtimeEvents: { event: string; payload: string; digest: string }[]
  attestation: { quote: string; eventLog: TdxEvent[]; reportData: string; config: string; scale: string }
}
const b = (h: string) => hexToBytes(h.replace(/^0x/, ''))
const x = (bytes: Uint8Array) => `0x${bytesToHex(bytes)}`
const master = createMasterSecret(b(v.masterSecret))
const appId = b(v.appId)

test('vectors: the app CA key, chain and certificate; the key is HKDF(M, appId ‖ "app-ca") by node:crypto too', () => {
  const ca = master.appCa(appId)
  assert.equal(x(ca.key), v.appCa.key)
  assert.equal(x(new Uint8Array(hkdfSync('sha256', b(v.masterSecret), 'RATLS', Buffer.concat([appId, Buffer.from('app-ca')]), 32))), v.appCa.key)
  assert.equal(x(ca.publicKey33), v.appCa.publicKey33)
  assert.deepEqual(ca.signatureChain.map(x), v.appCa.signatureChain)
  assert.equal(x(appCaCertificate(appId, ca)), v.appCa.certificate)
  const cert = new X509Certificate(b(v.appCa.certificate))
  assert.ok(cert.verify(cert.publicKey))
  const jwk = cert.publicKey.export({ format: 'jwk' })
  assert.equal(x(p256.Point.fromBytes(Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')])).toBytes(true)), v.appCa.publicKey33)
  assert.equal(verifyAppCaCertificate(b(v.appCa.certificate), { masterAddress: v.xPub, appId }).ok, true)
})

test('vectors: GetTlsKey path keys are HKDF(appCaKey, path), by node:crypto too', () => {
  for (const { path, key } of v.tlsKeys) {
    assert.equal(x(deriveP256Key(b(v.appCa.key), path)), key, path)
    assert.equal(x(new Uint8Array(hkdfSync('sha256', b(v.appCa.key), 'RATLS', Buffer.from(path), 32))), key, path)
  }
})

test('vectors: Sign answers, the key GetKey("vms", "signing"); secp256k1 checked by OpenSSL, ed25519 by noble', () => {
  for (const s of v.sign) {
    const algorithm = normalizeSignAlgorithm(s.algorithm)
    const issued = master.getKey({ appId, path: SIGN_KEY_PATH, purpose: SIGN_KEY_PURPOSE, algorithm: signKeyAlgorithm(algorithm) })
    const { signature, publicKey } = dstackSign(algorithm, issued.key, b(s.data))
    assert.equal(x(signature), s.signature, s.algorithm)
    assert.equal(x(publicKey), s.publicKey)
    assert.deepEqual([signature, ...issued.signatureChain].map(x), s.signatureChain)
    if (algorithm === 'ed25519') {
      assert.ok(ed25519.verify(b(s.signature), b(s.data), b(s.publicKey)))
    } else {
      const point = secp256k1.Point.fromBytes(b(s.publicKey)).toBytes(false)
      const key = createPublicKey({ key: { kty: 'EC', crv: 'secp256k1', x: Buffer.from(point.subarray(1, 33)).toString('base64url'), y: Buffer.from(point.subarray(33)).toString('base64url') }, format: 'jwk' })
      const message = algorithm === 'secp256k1' ? b(s.data) : undefined
      if (message) assert.ok(nodeVerify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, b(s.signature)))
      else assert.ok(secp256k1.verify(b(s.signature), b(s.data), b(s.publicKey), { prehash: false }))
    }
  }
})

test('vectors: runtime event digests (node:crypto SHA-384) and the SCALE attestation', () => {
  for (const e of v.runtimeEvents) {
    assert.equal(x(runtimeEventDigest(e.event, b(e.payload))), e.digest)
    const preimage = Buffer.concat([Buffer.of(1, 0, 0, 8), Buffer.from(`:${e.event}:`), b(e.payload)])
    assert.equal(`0x${createHash('sha384').update(preimage).digest('hex')}`, e.digest)
  }
  const a = v.attestation
  const encoded = encodeDstackAttestation({ quote: b(a.quote), eventLog: a.eventLog, runtimeEvents: runtimeEventsOf(a.eventLog), reportData: b(a.reportData), config: a.config })
  assert.equal(x(encoded), a.scale)
  assert.deepEqual(decodeDstackAttestation(b(a.scale)).eventLog, a.eventLog)
})
