import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { test } from 'node:test'
import { p256 } from '@noble/curves/nist.js'
import { hexToBytes } from '@noble/hashes/utils.js'
import { createMasterSecret } from '../secret/masterSecret.ts'
import {
  APP_CA_CHAIN_OID,
  appCaCertificate,
  appInfoMsgpack,
  certificatePem,
  extensionOctets,
  issueLeafCertificate,
  LEAF_DEFAULT_NOT_BEFORE,
  RATLS_OID,
  raTlsReportData,
  readCertificateExtensions,
  verifyAppCaCertificate,
} from './appCa.ts'
import { appIdForPod, deriveAppCaKey } from './derive.ts'
import { seq, octets, utf8 } from './der.ts'
import { p256Spki } from './x509.ts'

const secret = hexToBytes('0c'.repeat(32))
const appId = appIdForPod('web')

test('default: every node derives the same app CA certificate, byte for byte, and it verifies against xPub', () => {
  const a = createMasterSecret(secret)
  const b = createMasterSecret(secret)
  const certA = appCaCertificate(appId, a.appCa(appId))
  assert.deepEqual(certA, appCaCertificate(appId, b.appCa(appId)))
  assert.deepEqual(a.appCa(appId).key, deriveAppCaKey(secret, appId))

  const x509 = new X509Certificate(certA)
  assert.equal(x509.ca, true)
  assert.ok(x509.verify(x509.publicKey), 'self-signed')
  assert.equal(x509.subject, `O=keymanager\nCN=keymanager app CA ${Buffer.from(appId).toString('hex')}`)
  assert.equal(x509.validFrom, 'Jan  1 00:00:00 2024 GMT')
  assert.equal(x509.validTo, 'Dec 31 23:59:59 9999 GMT')

  const verified = verifyAppCaCertificate(certificatePem(certA), { masterAddress: a.address, appId })
  assert.equal(verified.ok, true, JSON.stringify(verified.steps))
  assert.deepEqual(verified.steps.map((s) => s.step), ['certificate', 'app-signature', 'kms-signature'])
  assert.deepEqual(verified.publicKey33, a.appCa(appId).publicKey33)
})

test('security: an app CA is refused under another root, for another app, or with another app\'s chain', () => {
  const master = createMasterSecret(secret)
  const other = createMasterSecret(hexToBytes('0d'.repeat(32)))
  const cert = appCaCertificate(appId, master.appCa(appId))
  const byOther = verifyAppCaCertificate(cert, { masterAddress: other.address })
  assert.equal(byOther.ok, false)
  assert.match(byOther.steps.at(-1)!.detail, /not by the master key/)
  assert.match(verifyAppCaCertificate(cert, { masterAddress: master.address, appId: appIdForPod('api') }).steps.at(-1)!.detail, /is for app 0x\w+, not 0x/)

  // A CA of a key the attacker holds, carrying the genuine chain of app "api" and claiming app "web": the chain
  // signs the "api" CA key, not this one, so the recovered app key is not one M issued for "web".
  const apiCa = master.appCa(appIdForPod('api'))
  const rogueKey = p256.utils.randomSecretKey()
  const rogue = appCaCertificate(appId, { key: rogueKey, signatureChain: apiCa.signatureChain })
  assert.equal(verifyAppCaCertificate(rogue, { masterAddress: master.address, appId }).ok, false)
  // Nor does a genuine app CA of "api" pass as "web".
  assert.equal(verifyAppCaCertificate(appCaCertificate(appIdForPod('api'), apiCa), { masterAddress: master.address, appId }).ok, false)
  assert.equal(verifyAppCaCertificate('not a cert', { masterAddress: master.address }).steps[0]!.detail, 'not an X.509 certificate')
})

test('default: a leaf issued by the app CA chains to it and carries the RA-TLS extensions dstack reads', () => {
  const master = createMasterSecret(secret)
  const ca = master.appCa(appId)
  const caCert = new X509Certificate(appCaCertificate(appId, ca))
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const spki = publicKey.export({ type: 'spki', format: 'der' })
  const point = new Uint8Array(spki.subarray(spki.length - 65))
  assert.deepEqual(p256Spki(point), spki, 'our SPKI encoding is node\'s')
  const quote = randomBytes(1000)
  const eventLogJson = '[{"imr":3}]'
  const info = appInfoMsgpack([appId, new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), new Uint8Array(32), new Uint8Array(32), new Uint8Array(0), Buffer.from('{}')])
  const now = Math.floor(Date.now() / 1000)
  const leafDer = issueLeafCertificate(appId, ca, point, {
    subject: 'api.example',
    altNames: ['api.example', '*.api.example', '127.0.0.1', '::1'],
    serverAuth: true,
    clientAuth: true,
    notBefore: LEAF_DEFAULT_NOT_BEFORE,
    notAfter: now + 86_400,
    raTls: { quote, eventLogJson },
    appInfo: info,
  }, Uint8Array.of(0x12, 0x34))
  const leaf = new X509Certificate(leafDer)
  assert.ok(leaf.checkIssued(caCert))
  assert.ok(leaf.verify(caCert.publicKey))
  assert.equal(leaf.ca, false)
  assert.equal(leaf.subject, 'CN=api.example')
  assert.equal(leaf.subjectAltName, 'DNS:api.example, DNS:*.api.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
  assert.ok(leaf.checkHost('api.example'))
  assert.ok(leaf.checkIP('127.0.0.1'))
  assert.equal(leaf.validFrom, 'Jan  1 00:00:00 1975 GMT')

  const ext = readCertificateExtensions(leafDer)
  assert.deepEqual(extensionOctets(ext.get(RATLS_OID.tdxQuote)!), new Uint8Array(quote))
  assert.equal(Buffer.from(extensionOctets(ext.get(RATLS_OID.eventLog)!)).toString(), eventLogJson)
  assert.deepEqual(extensionOctets(ext.get(RATLS_OID.appId)!), appId)
  assert.equal(Buffer.from(extensionOctets(ext.get(RATLS_OID.certUsage)!)).toString(), 'app:custom')
  assert.deepEqual(extensionOctets(ext.get(RATLS_OID.appInfo)!), info)
  assert.equal(raTlsReportData(spki).length, 64)

  // Without RA-TLS and without usages, none of those extensions.
  const plain = readCertificateExtensions(
    issueLeafCertificate(appId, ca, point, { subject: '', altNames: [], serverAuth: false, clientAuth: false, notBefore: now, notAfter: now + 60 }, Uint8Array.of(1)),
  )
  assert.equal(plain.has(RATLS_OID.tdxQuote), false)
  assert.equal(plain.has(RATLS_OID.eventLog), false)
  assert.equal(plain.has('2.5.29.37'), false)
  assert.equal(plain.has('2.5.29.17'), false)
  assert.ok(readCertificateExtensions(certificatePem(appCaCertificate(appId, ca))).has(APP_CA_CHAIN_OID))
})

test('vectors: AppInfo is a msgpack array of eight bin strings (rmp_serde over serde_human_bytes)', () => {
  const encoded = appInfoMsgpack([Uint8Array.of(1), new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), new Uint8Array(300)])
  assert.equal(Buffer.from(encoded.subarray(0, 4)).toString('hex'), '98c40101')
  assert.equal(Buffer.from(encoded.subarray(16, 19)).toString('hex'), 'c5012c')
  assert.throws(() => appInfoMsgpack([]), RangeError)
  // The chain extension is DER SEQUENCE { UTF8String, OCTET STRING, OCTET STRING }.
  assert.equal(seq(utf8('p'), octets(Uint8Array.of(1)), octets(Uint8Array.of(2)))[0], 0x30)
})
