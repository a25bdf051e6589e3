// A minimal DER writer (X.690) for the few X.509 structures this project makes: the devnet DCAP PKI
// (src/devnet/pki.ts) and the dstack app CA and TLS certificates (src/keys/x509.ts, docs/protocol.md#dstack-api).
// Its reader counterpart, strict and used on untrusted input, is src/tee/crl.ts.
//
// Why a writer of our own rather than pkijs (asn1js): we write a handful of fixed structures, all from values we
// built ourselves; pkijs brings five packages and a global WebCrypto engine whose ECDSA cannot sign with RFC 6979
// nonces, and the app CA certificate must be byte-identical on every node (src/keys/x509.ts), so its signature
// must be deterministic. `@peculiar/x509` needs a global reflect-metadata polyfill. Parsing is left to node's
// X509Certificate (and crl.ts where node does not reach).
//
// Every function returns a fresh Buffer holding one complete TLV.

/** Tag, definite length (minimal), contents. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f) throw new RangeError(`DER tag must be one low-tag-number byte, got ${tag}`)
  const content = Buffer.concat(parts)
  const n = content.length
  let length: Uint8Array
  if (n < 0x80) length = Uint8Array.of(n)
  else {
    const bytes: number[] = []
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
    length = Uint8Array.of(0x80 | bytes.length, ...bytes)
  }
  return Buffer.concat([Uint8Array.of(tag), length, content])
}

export const seq = (...items: Uint8Array[]) => tlv(0x30, ...items)
export const set = (...items: Uint8Array[]) => tlv(0x31, ...items)
export const octets = (bytes: Uint8Array) => tlv(0x04, bytes)
export const nullValue = () => tlv(0x05)
export const bool = (value: boolean) => tlv(0x01, Uint8Array.of(value ? 0xff : 0x00))
export const enumerated = (value: number) => tlv(0x0a, Uint8Array.of(value))
/** `[n] EXPLICIT` (constructed context tag around a complete element). */
export const explicit = (n: number, inner: Uint8Array) => tlv(0xa0 | n, inner)
/** `[n] IMPLICIT` of a primitive type: the contents of the replaced element under a primitive context tag. */
export const implicitPrimitive = (n: number, contents: Uint8Array) => tlv(0x80 | n, contents)
export const bitString = (bytes: Uint8Array, unusedBits = 0) => tlv(0x03, Uint8Array.of(unusedBits), bytes)

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** UTF8String. Throws on a lone surrogate (it would not round-trip). */
export function utf8(text: string): Buffer {
  if (LONE_SURROGATE.test(text)) throw new RangeError('UTF8String must be well-formed Unicode')
  return tlv(0x0c, Buffer.from(text, 'utf8'))
}

/** IA5String: ASCII only. */
export function ia5(text: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new RangeError('IA5String must be ASCII')
  return tlv(0x16, Buffer.from(text, 'latin1'))
}

/** The contents octets of an OBJECT IDENTIFIER (arcs in base 128; arbitrary size, e.g. the 2.25 UUID arcs). */
export function oidBytes(dotted: string): Uint8Array {
  if (!/^[0-2]\.(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/.test(dotted)) throw new RangeError(`not a dotted OID: ${dotted}`)
  const arcs = dotted.split('.').map(BigInt)
  if (arcs[0]! < 2n && arcs[1]! > 39n) throw new RangeError(`not a valid OID: ${dotted}`)
  const out: number[] = []
  for (const arc of [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)]) {
    const groups = [Number(arc & 0x7fn)]
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) groups.unshift(Number(rest & 0x7fn) | 0x80)
    out.push(...groups)
  }
  return Uint8Array.from(out)
}

export const oid = (dotted: string) => tlv(0x06, oidBytes(dotted))

/** A non-negative INTEGER, minimally encoded (a leading zero only where the high bit would make it negative). */
export function int(value: number | Uint8Array): Buffer {
  let bytes: number[]
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`INTEGER must be a non-negative safe integer, got ${value}`)
    bytes = []
    for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
  } else {
    bytes = [...value]
    while (bytes.length > 0 && bytes[0] === 0) bytes.shift()
  }
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0)
  return tlv(0x02, Uint8Array.from(bytes))
}

/** Latest instant X.509 can express: 9999-12-31T23:59:59Z (RFC 5280 §4.1.2.5 "no well-defined expiration"). */
export const MAX_X509_TIME = 253_402_300_799

/** UTCTime through 2049, GeneralizedTime from 2050 and before 1950 (RFC 5280 §4.1.2.5), whole seconds and `Z`. */
export function time(unix: number): Buffer {
  if (!Number.isSafeInteger(unix) || unix < -62_135_596_800 || unix > MAX_X509_TIME) throw new RangeError(`X.509 time must be whole seconds in years 1-9999, got ${unix}`)
  const iso = new Date(unix * 1000).toISOString()
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '')
  const year = Number(iso.slice(0, 4))
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${digits}Z`))
}

/** PEM armour with 64-character lines, LF endings and a final LF. */
export function pem(label: string, der: Uint8Array): string {
  const body = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`
}
