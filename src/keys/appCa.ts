// The app CA and RA-TLS certificates of dstack `GetTlsKey` (docs/protocol.md#dstack-api).
//
// - App CA: one per app (appId) and generation, P-256, key = HKDF(M, appId ‖ "app-ca") (src/keys/derive.ts), so every
//   node of the network issues under the same CA. Its certificate is self-signed with an RFC 6979 signature over fixed
//   fields (serial from the key, validity 2024-01-01 to 9999-12-31), so it is byte-identical on every node: a client
//   pins it (or its key) once. It is a trust root only through its signature chain to the on-chain xPub, carried in
//   the certificate itself (extension APP_CA_CHAIN_OID): [app key over keccak256("keymanager.app-ca.v1:" ‖
//   hex(compressed CA key)), M over keccak256("dstack-kms-issued:" ‖ appId ‖ appPubkey33)], GetKey's chain with the
//   CA key in the place of the derived key. `verifyAppCaCertificate` checks it against xPub.
// - Leaf: P-256 (dstack's TLS keys are P-256: rcgen's default, `derive_p256_key_pair_from_bytes`), issued by the app
//   CA with dstack's RA-TLS extensions (Dstack-TEE/dstack v0.5.8 ra-tls `oids.rs`, `cert.rs`): quote (…62397.1.1)
//   and event log (…1.2) when `usage_ra_tls`, the app id (…1.3), the special usage "app:custom" (…1.4) as dstack's
//   KMS writes it, app info (…1.9) when `with_app_info`; each value an OCTET STRING inside the extension's OCTET
//   STRING, as rcgen/yasna write them. The quote's report data is SHA-512("ratls-cert:" ‖ leaf SPKI DER)
//   (dstack `QuoteContentType::RaTlsCert`). Defaults as dstack: notBefore 1975-01-01 (rcgen's), notAfter now + 10
//   years; keyUsage digitalSignature; extKeyUsage serverAuth/clientAuth as asked.
// - The certificate chain returned is [leaf, app CA], both PEM; dstack also appends its KMS root CA, which has no
//   counterpart here (the root is xPub, an Ethereum address, reached through the chain extension).
import { X509Certificate } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { sha256, sha512 } from '@noble/hashes/sha2.js'
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js'
import type { Address } from 'viem'
import { assertAddress, assertBytes, constantTimeEqual, toHex0x } from './bytes.ts'
import { octets, pem, seq, utf8 } from './der.ts'
import { appSignatureDigest, kmsSignatureDigest } from './derive.ts'
import { recoverPublicKey33, recoverSigner } from './signature.ts'
import { derChildren, derContent, derRoot, DER_TAG, expectTag, readDer, DerError } from '../tee/crl.ts'
import {
  authorityKeyIdentifier,
  basicConstraints,
  certificate,
  distinguishedName,
  extKeyUsage,
  extension,
  keyIdentifier,
  keyUsage,
  OID,
  octetExtension,
  p256KeyObject,
  p256Spki,
  subjectAltName,
  subjectKeyIdentifier,
} from './x509.ts'
import { sign as nodeSign } from 'node:crypto'

/** dstack's RA-TLS extension OIDs (Phala's arc 1.3.6.1.4.1.62397). */
export const RATLS_OID = {
  tdxQuote: '1.3.6.1.4.1.62397.1.1',
  eventLog: '1.3.6.1.4.1.62397.1.2',
  appId: '1.3.6.1.4.1.62397.1.3',
  certUsage: '1.3.6.1.4.1.62397.1.4',
  appInfo: '1.3.6.1.4.1.62397.1.9',
} as const

/**
 * The app CA's signature chain extension: under keymanager's own UUID arc (ITU-T X.667 2.25, UUID
 * 71f230fb-6ae7-40d1-8e90-b2c535611620), `.1`. Value: SEQUENCE { UTF8String purpose, OCTET STRING appSignature(65),
 * OCTET STRING kmsSignature(65) }.
 */
export const APP_CA_CHAIN_OID = '2.25.151460292838475667287254542367823304224.1'
export const APP_CA_PURPOSE = 'keymanager.app-ca.v1'
/** Fixed validity of the app CA certificate: 2024-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
export const APP_CA_NOT_BEFORE = 1_704_067_200
export const APP_CA_NOT_AFTER = 253_402_300_799
/** rcgen's default notBefore (1975-01-01T00:00:00Z), which dstack leaves in place. */
export const LEAF_DEFAULT_NOT_BEFORE = 157_766_400
export const LEAF_DEFAULT_VALIDITY = 3650 * 86_400

export type AppCaKey = {
  /** The P-256 CA secret key (32 bytes). */
  key: Uint8Array
  /** [app key signature, master signature] over the CA key, 65 bytes each. */
  signatureChain: readonly [Uint8Array, Uint8Array]
}

const appCaName = (appId: Uint8Array) => distinguishedName(`keymanager app CA ${Buffer.from(appId).toString('hex')}`, 'keymanager')

/** The app CA certificate (DER), identical for the same appId and CA key on every node. */
export function appCaCertificate(appId: Uint8Array, ca: AppCaKey): Buffer {
  assertBytes(appId, 20, 'appId')
  assertBytes(ca.key, 32, 'ca.key')
  const publicKey = p256.getPublicKey(ca.key, true)
  const keyId = keyIdentifier(publicKey)
  // Serial: 16 bytes from the key, positive and non-zero leading byte (RFC 5280 §4.1.2.2).
  const serial = sha256(concatBytes(utf8ToBytes('keymanager.app-ca.serial:'), publicKey)).slice(0, 16)
  serial[0] = (serial[0]! & 0x7f) | 0x40
  const name = appCaName(appId)
  const chain = seq(utf8(APP_CA_PURPOSE), octets(ca.signatureChain[0]), octets(ca.signatureChain[1]))
  return certificate(
    {
      serial,
      issuer: name,
      subject: name,
      notBefore: APP_CA_NOT_BEFORE,
      notAfter: APP_CA_NOT_AFTER,
      spki: p256Spki(publicKey),
      extensions: [
        basicConstraints(true, 0),
        keyUsage({ digitalSignature: true, keyCertSign: true, cRLSign: true }),
        subjectKeyIdentifier(keyId),
        octetExtension(RATLS_OID.appId, appId),
        octetExtension(RATLS_OID.certUsage, utf8ToBytes('app:ca')),
        extension(APP_CA_CHAIN_OID, false, chain),
      ],
    },
    // RFC 6979: the same bytes on every node.
    (tbs) => p256.sign(tbs, ca.key, { prehash: true, format: 'der' }),
  )
}

/** Report data of an RA-TLS certificate's quote: SHA-512("ratls-cert:" ‖ SubjectPublicKeyInfo DER). */
export function raTlsReportData(spkiDer: Uint8Array): Uint8Array {
  return sha512(concatBytes(utf8ToBytes('ratls-cert:'), spkiDer))
}

export type LeafRequest = {
  subject: string
  altNames: readonly string[]
  serverAuth: boolean
  clientAuth: boolean
  notBefore: number
  notAfter: number
  /** The quote over `raTlsReportData(leaf SPKI)` and its event log JSON (`usage_ra_tls`). */
  raTls?: { quote: Uint8Array; eventLogJson: string }
  /** dstack AppInfo, msgpack-encoded (`with_app_info`). */
  appInfo?: Uint8Array
}

/** A leaf certificate (DER) for `leafPublicKey` (P-256, 33 or 65 bytes) issued by the app CA. */
export function issueLeafCertificate(appId: Uint8Array, ca: AppCaKey, leafPublicKey: Uint8Array, request: LeafRequest, serial: Uint8Array): Buffer {
  const caPublicKey = p256.getPublicKey(ca.key, true)
  const purposes = [...(request.serverAuth ? [OID.serverAuth] : []), ...(request.clientAuth ? [OID.clientAuth] : [])]
  const extensions = [
    ...(request.altNames.length ? [subjectAltName(request.altNames)] : []),
    keyUsage({ digitalSignature: true }),
    ...(purposes.length ? [extKeyUsage(purposes)] : []),
    subjectKeyIdentifier(keyIdentifier(leafPublicKey)),
    authorityKeyIdentifier(keyIdentifier(caPublicKey)),
    octetExtension(RATLS_OID.appId, appId),
    ...(request.appInfo ? [octetExtension(RATLS_OID.appInfo, request.appInfo)] : []),
    octetExtension(RATLS_OID.certUsage, utf8ToBytes('app:custom')),
    ...(request.raTls ? [octetExtension(RATLS_OID.tdxQuote, request.raTls.quote), octetExtension(RATLS_OID.eventLog, utf8ToBytes(request.raTls.eventLogJson))] : []),
  ]
  const caKey = p256KeyObject(ca.key)
  return certificate(
    {
      serial,
      issuer: appCaName(appId),
      subject: distinguishedName(request.subject),
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      spki: p256Spki(leafPublicKey),
      extensions,
    },
    (tbs) => nodeSign('sha256', tbs, { key: caKey, dsaEncoding: 'der' }),
  )
}

export const certificatePem = (der: Uint8Array) => pem('CERTIFICATE', der)

/**
 * dstack's AppInfo as its RA-TLS extension carries it: rmp_serde's default (a struct is an array) of eight byte
 * strings, each msgpack `bin` (serde_human_bytes writes bytes in binary formats): app_id, compose_hash, instance_id,
 * device_id, mr_system, mr_aggregated, os_image_hash, key_provider_info.
 */
export function appInfoMsgpack(fields: readonly Uint8Array[]): Uint8Array {
  if (fields.length !== 8) throw new RangeError('AppInfo has 8 fields')
  const parts: Uint8Array[] = [Uint8Array.of(0x98)]
  for (const field of fields) {
    if (field.length < 0x100) parts.push(Uint8Array.of(0xc4, field.length))
    else if (field.length < 0x10000) parts.push(Uint8Array.of(0xc5, field.length >> 8, field.length & 0xff))
    else throw new RangeError('AppInfo field over 64 KiB')
    parts.push(field)
  }
  return concatBytes(...parts)
}

// ---- verification -------------------------------------------------------------------------------------------------

export type AppCaStep = { step: 'certificate' | 'app-signature' | 'kms-signature'; ok: boolean; detail: string }

export type AppCaVerification = {
  ok: boolean
  steps: AppCaStep[]
  /** The appId the certificate names (extension …62397.1.3), when it has one. */
  appId?: Uint8Array
  /** The CA's compressed P-256 public key. */
  publicKey33?: Uint8Array
}

/** Extensions of a certificate by OID (dotted), read with the strict DER reader. */
function extensionsOf(input: Uint8Array): Map<string, Uint8Array> {
  const der = Uint8Array.from(input)
  const cert = derRoot(der, DER_TAG.sequence)
  const tbs = expectTag(derChildren(der, cert)[0], DER_TAG.sequence)
  const explicit3 = derChildren(der, tbs).find((e) => e.tag === DER_TAG.context3)
  const out = new Map<string, Uint8Array>()
  if (!explicit3) return out
  const list = expectTag(derChildren(der, explicit3)[0], DER_TAG.sequence)
  for (const ext of derChildren(der, list)) {
    const parts = derChildren(der, ext)
    const id = oidString(derContent(der, expectTag(parts[0], DER_TAG.oid)))
    const value = expectTag(parts.at(-1), DER_TAG.octetString)
    out.set(id, derContent(der, value))
  }
  return out
}

function oidString(content: Uint8Array): string {
  const arcs: bigint[] = []
  let value = 0n
  for (const byte of content) {
    value = (value << 7n) | BigInt(byte & 0x7f)
    if (!(byte & 0x80)) {
      arcs.push(value)
      value = 0n
    }
  }
  const first = arcs.shift() ?? 0n
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n]
  return [...head, ...arcs].join('.')
}

/** The OCTET STRING inside a custom extension value (how dstack writes them). */
export function extensionOctets(value: Uint8Array): Uint8Array {
  const element = readDer(value, 0)
  if (element.end !== value.length) throw new DerError('trailing bytes in extension value')
  return derContent(value, expectTag(element, DER_TAG.octetString))
}

/** The custom extensions of a certificate (PEM or DER) by dotted OID, values unwrapped where they are OCTET STRINGs. */
export function readCertificateExtensions(certificate: string | Uint8Array): Map<string, Uint8Array> {
  const der = typeof certificate === 'string' ? new Uint8Array(new X509Certificate(certificate).raw) : certificate
  return extensionsOf(der)
}

/**
 * Checks an app CA certificate (PEM or DER) against the master address (xPub, read from the registry): a well-formed
 * self-signed P-256 CA, and its embedded chain: signature_chain[0] recovers an app key over the CA key, and M signed
 * that app key for the appId the certificate names (or `appId`, when given, which it must name).
 */
export function verifyAppCaCertificate(certificatePemOrDer: string | Uint8Array, options: { masterAddress: string; appId?: Uint8Array }): AppCaVerification {
  assertAddress(options.masterAddress, 'masterAddress')
  const steps: AppCaStep[] = []
  const fail = (step: AppCaStep['step'], detail: string): AppCaVerification => ({ ok: false, steps: [...steps, { step, ok: false, detail }] })
  let x509: X509Certificate
  let der: Uint8Array
  try {
    x509 = new X509Certificate(certificatePemOrDer)
    der = new Uint8Array(x509.raw)
  } catch {
    return fail('certificate', 'not an X.509 certificate')
  }
  let publicKey33: Uint8Array
  let appId: Uint8Array
  let chain: { purpose: string; app: Uint8Array; kms: Uint8Array }
  try {
    const jwk = x509.publicKey.export({ format: 'jwk' })
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') return fail('certificate', `the CA key is not P-256 (${jwk.kty} ${jwk.crv ?? ''})`)
    const x = Buffer.from(jwk.x!, 'base64url')
    const y = Buffer.from(jwk.y!, 'base64url')
    publicKey33 = p256.Point.fromBytes(concatBytes(Uint8Array.of(4), x, y)).toBytes(true)
    if (!x509.ca) return fail('certificate', 'not a CA certificate (basicConstraints CA:false or absent)')
    if (!x509.verify(x509.publicKey)) return fail('certificate', 'not self-signed by its own key')
    const extensions = extensionsOf(der)
    const idValue = extensions.get(RATLS_OID.appId)
    const chainValue = extensions.get(APP_CA_CHAIN_OID)
    if (!idValue || !chainValue) return fail('certificate', 'no app id or signature chain extension: not a keymanager app CA')
    appId = extensionOctets(idValue)
    if (appId.length !== 20) return fail('certificate', `the app id extension holds ${appId.length} bytes, not 20`)
    if (options.appId && !constantTimeEqual(options.appId, appId)) return fail('certificate', `the certificate is for app ${toHex0x(appId)}, not ${toHex0x(options.appId)}`)
    const chainSeq = derRoot(chainValue, DER_TAG.sequence)
    const [purpose, app, kms] = derChildren(chainValue, chainSeq)
    chain = {
      purpose: Buffer.from(derContent(chainValue, expectTag(purpose, 0x0c))).toString('utf8'),
      app: derContent(chainValue, expectTag(app, DER_TAG.octetString)),
      kms: derContent(chainValue, expectTag(kms, DER_TAG.octetString)),
    }
    if (chain.purpose !== APP_CA_PURPOSE) return fail('certificate', `chain purpose ${JSON.stringify(chain.purpose)}, expected ${APP_CA_PURPOSE}`)
  } catch (error) {
    return fail('certificate', `malformed certificate: ${(error as Error).message}`)
  }
  steps.push({ step: 'certificate', ok: true, detail: `self-signed P-256 CA ${toHex0x(publicKey33)} for app ${toHex0x(appId)}` })
  let appPublicKey33: Uint8Array
  try {
    appPublicKey33 = recoverPublicKey33(appSignatureDigest(APP_CA_PURPOSE, publicKey33), chain.app)
  } catch (error) {
    return { ...fail('app-signature', `the app signature recovers no key: ${(error as Error).message}`), appId, publicKey33 }
  }
  steps.push({ step: 'app-signature', ok: true, detail: `app key ${toHex0x(appPublicKey33)} signed the CA key` })
  let signer: Address
  try {
    signer = recoverSigner(kmsSignatureDigest(appId, appPublicKey33), chain.kms)
  } catch (error) {
    return { ...fail('kms-signature', `the master signature is malformed: ${(error as Error).message}`), appId, publicKey33 }
  }
  const ok = signer.toLowerCase() === options.masterAddress.toLowerCase()
  steps.push({
    step: 'kms-signature',
    ok,
    detail: ok ? `master key ${signer} issued the app key to app ${toHex0x(appId)}` : `signed by ${signer}, not by the master key ${options.masterAddress}`,
  })
  return { ok, steps, appId, publicKey33 }
}
