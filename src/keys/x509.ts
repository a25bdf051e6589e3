// X.509 v3 certificates (RFC 5280) built with the project's DER writer (src/keys/der.ts; why not a library is written
// there): the pieces the dstack app CA and TLS certificates need (docs/protocol.md#dstack-api), with P-256 keys.
// Signing is passed in, so one certificate can be signed deterministically (RFC 6979, @noble/curves) and another
// with node:crypto.
import { createPrivateKey, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { p256 } from '@noble/curves/nist.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { bitString, bool, explicit, implicitPrimitive, int, octets, oid, seq, set, time, utf8 } from './der.ts'

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const

/** SubjectPublicKeyInfo of a P-256 public key (33 or 65 bytes), the point uncompressed. */
export function p256Spki(publicKey: Uint8Array): Buffer {
  const point = p256.Point.fromBytes(publicKey).toBytes(false)
  return seq(seq(oid(OID.ecPublicKey), oid(OID.prime256v1)), bitString(point))
}

/** A node:crypto private key object for a P-256 scalar. */
export function p256KeyObject(secretKey: Uint8Array): KeyObject {
  const point = p256.getPublicKey(secretKey, false)
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')
  return createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: b64(secretKey), x: b64(point.subarray(1, 33)), y: b64(point.subarray(33, 65)) }, format: 'jwk' })
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits; truncated SHA-256 here (RFC 7093 method 1). */
export function keyIdentifier(publicKey: Uint8Array): Uint8Array {
  return sha256(p256.Point.fromBytes(publicKey).toBytes(false)).slice(0, 20)
}

/** A Name of CommonName and optional Organization, as UTF8String (the order rcgen and dstack write: O, then CN). */
export function distinguishedName(commonName: string, organization?: string): Buffer {
  const rdns = [] as Buffer[]
  if (organization !== undefined) rdns.push(set(seq(oid(OID.organization), utf8(organization))))
  rdns.push(set(seq(oid(OID.commonName), utf8(commonName))))
  return seq(...rdns)
}

export const extension = (id: string, critical: boolean, value: Uint8Array) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value))

/** A custom extension whose value is an OCTET STRING of `content` (how dstack's RA-TLS extensions are written). */
export const octetExtension = (id: string, content: Uint8Array) => extension(id, false, octets(content))

export function basicConstraints(ca: boolean, pathLength?: number): Buffer {
  return extension(OID.basicConstraints, true, ca ? seq(bool(true), ...(pathLength === undefined ? [] : [int(pathLength)])) : seq())
}

/** keyUsage (RFC 5280 §4.2.1.3) as a DER named-bit list, critical. */
export function keyUsage(bits: { digitalSignature?: boolean; keyCertSign?: boolean; cRLSign?: boolean }): Buffer {
  let value = 0
  if (bits.digitalSignature) value |= 0x80
  if (bits.keyCertSign) value |= 0x04
  if (bits.cRLSign) value |= 0x02
  if (value === 0) throw new RangeError('keyUsage needs at least one bit')
  let unused = 0
  while (!(value & (1 << unused))) unused++
  return extension(OID.keyUsage, true, bitString(Uint8Array.of(value), unused))
}

export function extKeyUsage(purposes: string[]): Buffer {
  return extension(OID.extKeyUsage, false, seq(...purposes.map(oid)))
}

/** subjectAltName: IP addresses as iPAddress, everything else as dNSName (rcgen's rule). */
export function subjectAltName(names: readonly string[]): Buffer {
  return extension(
    OID.subjectAltName,
    false,
    seq(...names.map((name) => (isIP(name) ? implicitPrimitive(7, ipBytes(name)) : implicitPrimitive(2, dnsNameBytes(name))))),
  )
}

function dnsNameBytes(name: string): Uint8Array {
  if (!/^[\x21-\x7e]+$/.test(name)) throw new RangeError('a dNSName must be visible ASCII (IA5String)')
  return Buffer.from(name, 'latin1')
}

function ipBytes(ip: string): Uint8Array {
  if (isIP(ip) === 4) return Uint8Array.from(ip.split('.').map(Number))
  // IPv6: expand "::" and any embedded IPv4 tail into eight 16-bit groups.
  let text = ip
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number]
    text = text.slice(0, -v4[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right]
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    const v = parseInt(g, 16)
    out[2 * i] = v >> 8
    out[2 * i + 1] = v & 0xff
  })
  return out
}

export const subjectKeyIdentifier = (keyId: Uint8Array) => extension(OID.subjectKeyIdentifier, false, octets(keyId))
export const authorityKeyIdentifier = (keyId: Uint8Array) => extension(OID.authorityKeyIdentifier, false, seq(implicitPrimitive(0, keyId)))

export type CertificateFields = {
  /** Positive serial number bytes (at most 20). */
  serial: Uint8Array
  issuer: Uint8Array
  subject: Uint8Array
  notBefore: number
  notAfter: number
  /** SubjectPublicKeyInfo DER. */
  spki: Uint8Array
  extensions: Uint8Array[]
}

const ECDSA_WITH_SHA256 = seq(oid(OID.ecdsaWithSha256))

/** TBSCertificate DER (v3, ecdsa-with-SHA256). */
export function tbsCertificate(fields: CertificateFields): Buffer {
  if (fields.serial.length === 0 || fields.serial.length > 20 || (fields.serial[0]! & 0x80) !== 0) throw new RangeError('serial must be 1-20 bytes, positive')
  if (fields.notBefore >= fields.notAfter) throw new RangeError('notBefore must be earlier than notAfter')
  return seq(
    explicit(0, int(2)),
    int(fields.serial),
    ECDSA_WITH_SHA256,
    fields.issuer,
    seq(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.spki,
    explicit(3, seq(...fields.extensions)),
  )
}

/** A complete certificate: `sign(tbs)` returns the DER ECDSA-SHA256 signature over the TBSCertificate bytes. */
export function certificate(fields: CertificateFields, sign: (tbs: Uint8Array) => Uint8Array): Buffer {
  const tbs = tbsCertificate(fields)
  return seq(tbs, ECDSA_WITH_SHA256, bitString(sign(tbs)))
}
