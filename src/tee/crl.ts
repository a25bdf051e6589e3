// Certificate revocation lists for DCAP collateral (docs/protocol.md#tee-providers). @phala/dcap-qvl's JS build only looks serial
// numbers up in the CRLs: it checks neither their signature nor their validity window, and silently skips a CRL it
// cannot parse. This module closes that gap with a minimal, strict DER reader (definite lengths, minimal length
// encoding, no trailing bytes) over the few structures DCAP needs (RFC 5280 §5.1), so no ASN.1 library is involved.
import { verify as verifySignature, type X509Certificate } from 'node:crypto'
import { oidBytes } from '../keys/der.ts'
import { QuoteVerificationError } from './types.ts'
import { KeymanagerError } from '../errors.ts'

export { oidBytes }

/** One DER element: its tag byte and where its header, contents and end lie in the buffer it was read from. */
export type DerElement = { tag: number; start: number; contentStart: number; end: number }

export const DER_TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
  context0: 0xa0,
  context3: 0xa3,
} as const

/** DER that is not what a certificate or CRL may hold; callers turn it into a QuoteVerificationError with a reason. */
export class DerError extends KeymanagerError {
  override name = 'DerError'
  constructor(message: string) {
    super('unprocessable', message)
  }
}

/** Reads the element at `offset`, which must end at or before `limit` (default: the end of `der`). */
export function readDer(der: Uint8Array, offset = 0, limit = der.length): DerElement {
  if (offset + 2 > limit) throw new DerError(`truncated element at byte ${offset}`)
  const tag = der[offset]!
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at byte ${offset}`)
  let length = der[offset + 1]!
  let contentStart = offset + 2
  if (length & 0x80) {
    const count = length & 0x7f
    if (count === 0) throw new DerError(`indefinite length at byte ${offset}`)
    if (count > 4) throw new DerError(`length of ${count} bytes at byte ${offset}`)
    if (contentStart + count > limit) throw new DerError(`truncated length at byte ${offset}`)
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + der[contentStart + i]!
    if (der[contentStart] === 0 || length < 0x80) throw new DerError(`non-minimal length at byte ${offset}`)
    contentStart += count
  }
  const end = contentStart + length
  if (end > limit) throw new DerError(`element at byte ${offset} overruns its container`)
  return { tag, start: offset, contentStart, end }
}

/** The elements that exactly fill `parent`'s contents. */
export function derChildren(der: Uint8Array, parent: DerElement): DerElement[] {
  const children: DerElement[] = []
  let offset = parent.contentStart
  while (offset < parent.end) {
    const child = readDer(der, offset, parent.end)
    children.push(child)
    offset = child.end
  }
  return children
}

/** Reads a whole buffer as exactly one element of the expected tag. */
export function derRoot(der: Uint8Array, tag: number): DerElement {
  const root = readDer(der, 0)
  if (root.end !== der.length) throw new DerError(`${der.length - root.end} trailing bytes`)
  expectTag(root, tag)
  return root
}

export function expectTag(element: DerElement | undefined, tag: number): DerElement {
  if (!element) throw new DerError(`missing element (tag 0x${tag.toString(16)})`)
  if (element.tag !== tag) {
    throw new DerError(`tag 0x${element.tag.toString(16)} at byte ${element.start}, expected 0x${tag.toString(16)}`)
  }
  return element
}

export const derContent = (der: Uint8Array, e: DerElement): Uint8Array => der.subarray(e.contentStart, e.end)
export const derBytes = (der: Uint8Array, e: DerElement): Uint8Array => der.subarray(e.start, e.end)

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A serial number as lowercase hex without leading zero bytes: how CRL entries and certificates are compared. */
function serialHex(content: Uint8Array): string {
  if (content.length === 0) throw new DerError('empty INTEGER')
  let i = 0
  while (i < content.length - 1 && content[i] === 0) i++
  return Buffer.from(content.subarray(i)).toString('hex')
}

/** UTCTime / GeneralizedTime in the only forms RFC 5280 §4.1.2.5 allows (seconds, `Z`), as unix seconds. */
function derTime(der: Uint8Array, e: DerElement): number {
  const text = Buffer.from(derContent(der, e)).toString('latin1')
  const match =
    e.tag === DER_TAG.utcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : e.tag === DER_TAG.generalizedTime
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null
  if (!match) throw new DerError(`bad time ${JSON.stringify(text)}`)
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number]
  const year = e.tag === DER_TAG.utcTime ? (y >= 50 ? 1900 + y : 2000 + y) : y
  const ms = Date.UTC(year, mo - 1, d, h, mi, s)
  const back = new Date(ms)
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw new DerError(`bad time ${JSON.stringify(text)}`)
  }
  return ms / 1000
}

const ECDSA_WITH_SHA256 = oidBytes('1.2.840.10045.4.3.2')

/** The fields of an X.509 certificate that revocation and the Intel SGX extension need. */
export type CertificateFields = {
  serial: string
  issuer: Uint8Array
  subject: Uint8Array
  /** extnValue contents by extnID contents (hex). */
  extensions: Map<string, Uint8Array>
}

export function certificateFields(der: Uint8Array): CertificateFields {
  const cert = derRoot(der, DER_TAG.sequence)
  const tbs = expectTag(derChildren(der, cert)[0], DER_TAG.sequence)
  const fields = derChildren(der, tbs)
  let i = fields[0]?.tag === DER_TAG.context0 ? 1 : 0
  const serial = serialHex(derContent(der, expectTag(fields[i++], DER_TAG.integer)))
  expectTag(fields[i++], DER_TAG.sequence) // signature algorithm
  const issuer = derBytes(der, expectTag(fields[i++], DER_TAG.sequence))
  expectTag(fields[i++], DER_TAG.sequence) // validity: node's X509Certificate checks it
  const subject = derBytes(der, expectTag(fields[i++], DER_TAG.sequence))
  const extensions = new Map<string, Uint8Array>()
  for (const field of fields.slice(i + 1)) {
    if (field.tag !== DER_TAG.context3) continue
    for (const ext of derChildren(der, expectTag(derChildren(der, field)[0], DER_TAG.sequence))) {
      const parts = derChildren(der, expectTag(ext, DER_TAG.sequence))
      const id = Buffer.from(derContent(der, expectTag(parts[0], DER_TAG.oid))).toString('hex')
      const value = expectTag(parts[parts.length - 1], DER_TAG.octetString)
      if (extensions.has(id)) throw new DerError(`duplicate extension ${id}`)
      extensions.set(id, derContent(der, value))
    }
  }
  return { serial, issuer, subject, extensions }
}

/** A parsed CRL; its signature is not yet checked (see `checkCrl`). */
export type Crl = {
  name: string
  issuer: Uint8Array
  thisUpdate: number
  nextUpdate: number
  revokedSerials: ReadonlySet<string>
  tbs: Uint8Array
  /** DER ECDSA-Sig-Value. */
  signature: Uint8Array
}

/** Parses a DER CRL strictly; throws `crl_invalid` (naming the CRL) on anything it cannot read. */
export function parseCrl(der: Uint8Array, name: string): Crl {
  try {
    const root = derRoot(der, DER_TAG.sequence)
    const [tbsElement, algorithm, signatureValue, ...extra] = derChildren(der, root)
    if (extra.length) throw new DerError('extra fields after the signature')
    const tbs = expectTag(tbsElement, DER_TAG.sequence)
    const outerAlgorithm = derBytes(der, expectTag(algorithm, DER_TAG.sequence))
    const bits = derContent(der, expectTag(signatureValue, DER_TAG.bitString))
    if (bits[0] !== 0) throw new DerError('signature BIT STRING with unused bits')

    const fields = derChildren(der, tbs)
    let i = 0
    if (fields[0]?.tag === DER_TAG.integer) {
      const version = derContent(der, fields[0])
      if (version.length !== 1 || version[0] !== 1) throw new DerError('CRL version is not v2')
      i++
    }
    const innerAlgorithm = expectTag(fields[i++], DER_TAG.sequence)
    if (!bytesEqual(derBytes(der, innerAlgorithm), outerAlgorithm)) throw new DerError('signature algorithms differ')
    const algorithmOid = derContent(der, expectTag(derChildren(der, innerAlgorithm)[0], DER_TAG.oid))
    if (!bytesEqual(algorithmOid, ECDSA_WITH_SHA256)) throw new DerError('signature algorithm is not ecdsa-with-SHA256')
    const issuer = derBytes(der, expectTag(fields[i++], DER_TAG.sequence))
    const thisUpdate = derTime(der, fields[i++] ?? expectTag(undefined, DER_TAG.utcTime))
    const next = fields[i++]
    if (!next || (next.tag !== DER_TAG.utcTime && next.tag !== DER_TAG.generalizedTime)) {
      throw new DerError('no nextUpdate')
    }
    const nextUpdate = derTime(der, next)
    const revokedSerials = new Set<string>()
    if (fields[i]?.tag === DER_TAG.sequence) {
      for (const entry of derChildren(der, fields[i++]!)) {
        const [serial, date, extensions, ...rest] = derChildren(der, expectTag(entry, DER_TAG.sequence))
        if (rest.length) throw new DerError('extra fields in a revoked certificate entry')
        revokedSerials.add(serialHex(derContent(der, expectTag(serial, DER_TAG.integer))))
        derTime(der, date ?? expectTag(undefined, DER_TAG.utcTime))
        if (extensions) rejectCriticalExtensions(der, expectTag(extensions, DER_TAG.sequence))
      }
    }
    if (fields[i]?.tag === DER_TAG.context0) {
      rejectCriticalExtensions(der, expectTag(derChildren(der, fields[i++]!)[0], DER_TAG.sequence))
    }
    if (i !== fields.length) throw new DerError('unexpected fields in tbsCertList')
    return {
      name,
      issuer,
      thisUpdate,
      nextUpdate,
      revokedSerials,
      tbs: derBytes(der, tbs),
      signature: bits.subarray(1),
    }
  } catch (error) {
    if (error instanceof DerError) throw new QuoteVerificationError('crl_invalid', `${name} is not a valid CRL: ${error.message}`)
    throw error
  }
}

/**
 * RFC 5280 §5.2, §5.3: a CRL with a critical extension the reader does not process (e.g. an issuing distribution
 * point that narrows its scope) must not be used to decide revocation. Intel's CRLs carry none.
 */
function rejectCriticalExtensions(der: Uint8Array, extensions: DerElement) {
  for (const extension of derChildren(der, extensions)) {
    const [oid, critical] = derChildren(der, expectTag(extension, DER_TAG.sequence))
    expectTag(oid, DER_TAG.oid)
    if (critical?.tag === DER_TAG.boolean && derContent(der, critical)[0] !== 0) {
      throw new DerError(`critical extension ${Buffer.from(derContent(der, oid!)).toString('hex')} is not supported`)
    }
  }
}

/**
 * Checks that `issuer` issued the CRL (name and ECDSA P-256/SHA-256 signature) and that `now` lies in
 * [thisUpdate, nextUpdate]. Throws `crl_invalid`, `crl_not_yet_valid` or `crl_expired`.
 */
export function checkCrl(crl: Crl, issuer: X509Certificate, now: number): void {
  if (!bytesEqual(crl.issuer, certificateFields(issuer.raw).subject)) {
    throw new QuoteVerificationError('crl_invalid', `${crl.name} was not issued by "${commonName(issuer.subject)}"`)
  }
  let valid = false
  try {
    valid = verifySignature('sha256', crl.tbs, issuer.publicKey, crl.signature)
  } catch {
    valid = false
  }
  if (!valid) throw new QuoteVerificationError('crl_invalid', `${crl.name} signature is invalid`)
  if (now < crl.thisUpdate) {
    throw new QuoteVerificationError('crl_not_yet_valid', `${crl.name} is not valid before ${isoTime(crl.thisUpdate)}`)
  }
  if (now > crl.nextUpdate) {
    throw new QuoteVerificationError('crl_expired', `${crl.name} expired at ${isoTime(crl.nextUpdate)}`)
  }
}

/**
 * Throws `revoked` when a certificate's serial number is on a CRL of its issuer. A CRL speaks only for the
 * certificates of its own issuer: serial numbers are unique per issuer, not globally.
 */
export function checkNotRevoked(crls: readonly Crl[], certs: readonly X509Certificate[]): void {
  for (const cert of certs) {
    const { serial, issuer } = certificateFields(cert.raw)
    for (const crl of crls) {
      if (bytesEqual(crl.issuer, issuer) && crl.revokedSerials.has(serial)) {
        throw new QuoteVerificationError('revoked', `"${commonName(cert.subject)}" (serial ${serial}) is revoked by the ${crl.name}`)
      }
    }
  }
}

/** The CN of a node `X509Certificate` subject/issuer string, for messages. */
export const commonName = (dn: string): string => /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? dn.replace(/\n/g, ', ')

export const isoTime = (seconds: number): string => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
