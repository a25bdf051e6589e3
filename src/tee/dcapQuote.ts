// The steps of Intel's DCAP quote verification that belong to one quote (docs/protocol.md#measurements-and-tcb-policy):
// the TCB info and QE identity signatures, the QE report's signature by the PCK key and its binding of the attestation
// key, the QE identity policy, the quote's signature by the attestation key, the platform TCB level and the report's
// attributes. dcap.ts calls `checkQuote` after it has verified the certificate chains, CRLs and validity windows.
//
// Why these steps are written here rather than left to @phala/dcap-qvl's `verify` (a decision, measured): dcap-qvl
// 0.3.9 verifies a quote and its collateral as one, every time. Per quote it parses 14 certificates, verifies the
// TCB info and QE identity chains again and decodes both CRLs with asn1.js, all of it work on the collateral alone,
// which a helper holds unchanged for every newcomer of a batch: 6.8 ms of one core per quote. dcap.ts already verified
// all of it, more strictly (CRL signatures, issuer-scoped revocation, CA flags), from certificates parsed once. A
// helper's target is 100 newcomers/s on one core (docs/performance.md#footprint); with dcap-qvl's `verify` in the path
// it measured 75-121/s, and the whole verification now takes about 0.9 ms (scripts/bench-quote.ts). What is left per
// quote is this file: four ECDSA verifications, a hash
// and comparisons, in dcap-qvl's order and with its semantics (its `verifyImpl`, a port of Phala's Rust dcap-qvl), so
// that a verdict is the same. dcap-qvl still parses the quote (`Quote.parse`) and stays the reference:
// test/dcap.test.ts runs both on every Intel fixture and on mutated quotes and collateral, and compares verdicts.
import { createHash, createPublicKey, timingSafeEqual, verify as verifySignature, type KeyObject, type X509Certificate } from 'node:crypto'
import type { AuthDataV3, Quote } from '@phala/dcap-qvl'
import { bytesToHex, type Hex } from 'viem'
import { z } from 'zod'
import { bytesEqual, certificateFields, derChildren, derContent, derRoot, DER_TAG, DerError, expectTag, oidBytes } from './crl.ts'
import { readField, SGX_REPORT } from './quoteLayout.ts'
import { QuoteVerificationError, type TcbStatus, type TeeType } from './types.ts'
import type { DcapRejectionReason } from './dcap.ts'

const fail = (reason: DcapRejectionReason, message: string): never => {
  throw new QuoteVerificationError(reason, message)
}

const svn = z.number().int().min(0).max(0xffff)
const hexOf = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`))
const status = z.string()
const advisories = z.array(z.string()).optional()

/** The fields of a TCB info body the per-quote steps read (Intel's TCB info v2/v3). */
const tcbInfoSchema = z.object({
  id: z.string().optional(),
  version: z.number().int(),
  tcbLevels: z.array(
    z.object({
      tcb: z.object({
        sgxtcbcomponents: z.array(z.object({ svn })),
        tdxtcbcomponents: z.array(z.object({ svn })).optional(),
        pcesvn: svn,
      }),
      tcbStatus: status,
      advisoryIDs: advisories,
    }),
  ),
})
export type TcbInfoBody = z.infer<typeof tcbInfoSchema>

/** The fields of a QE identity body the per-quote steps read. */
const qeIdentitySchema = z.object({
  id: z.string(),
  version: z.number().int(),
  miscselect: hexOf(4),
  miscselectMask: hexOf(4),
  attributes: hexOf(16),
  attributesMask: hexOf(16),
  mrsigner: hexOf(32),
  isvprodid: svn,
  tcbLevels: z.array(z.object({ tcb: z.object({ isvsvn: svn }), tcbStatus: status, advisoryIDs: advisories })),
})
export type QeIdentityBody = z.infer<typeof qeIdentitySchema>

function parseBody<T>(schema: z.ZodType<T>, body: Record<string, unknown>, what: string): T {
  const parsed = schema.safeParse(body)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]!
  return fail('collateral_invalid', `${what} field ${issue.path.join('.') || '(root)'}: ${issue.message}`)
}
export const parseTcbInfoBody = (body: Record<string, unknown>): TcbInfoBody => parseBody(tcbInfoSchema, body, 'TCB info')
export const parseQeIdentityBody = (body: Record<string, unknown>): QeIdentityBody => parseBody(qeIdentitySchema, body, 'QE identity')

/** An ECDSA P-256 signature given as r ‖ s (64 bytes), as DCAP quotes and collateral carry them. */
function validSignature(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false
  try {
    return verifySignature('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
  } catch {
    return false
  }
}

// SubjectPublicKeyInfo of an uncompressed P-256 point: id-ecPublicKey, prime256v1, then the 65-byte point.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex')

/** The attestation key (raw x ‖ y) as a key object; a point off the curve is `bad_signature`. */
function attestationKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 64) return fail('malformed_quote', `attestation key is ${raw.length} bytes, expected 64`)
  try {
    return createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, Buffer.from([4]), raw]), format: 'der', type: 'spki' })
  } catch {
    return fail('bad_signature', 'the attestation key is not a P-256 point')
  }
}

const SGX_EXTENSION = Buffer.from(oidBytes('1.2.840.113741.1.13.1')).toString('hex')
const SGX_TCB = oidBytes('1.2.840.113741.1.13.1.2')
const SGX_FMSPC = oidBytes('1.2.840.113741.1.13.1.4')
const SGX_PCESVN = oidBytes('1.2.840.113741.1.13.1.2.17')
const SGX_CPUSVN = oidBytes('1.2.840.113741.1.13.1.2.18')

type OidItem = { oid: Uint8Array; value: ReturnType<typeof derRoot> }

/** The (OID, value) items of a SEQUENCE OF SEQUENCE { OID, ANY }, as the Intel SGX extension nests them. */
function oidItems(der: Uint8Array, sequence: ReturnType<typeof derRoot>): OidItem[] {
  return derChildren(der, sequence).map((item) => {
    const [oid, value] = derChildren(der, expectTag(item, DER_TAG.sequence))
    if (!value) throw new DerError('an extension item without a value')
    return { oid: derContent(der, expectTag(oid, DER_TAG.oid)), value }
  })
}

/** The item named `oid` among `items`; none is a DER fault. */
function findItem(items: OidItem[], oid: Uint8Array, name: string): OidItem {
  const found = items.find((item) => bytesEqual(item.oid, oid))
  if (!found) throw new DerError(`no ${name} in the Intel SGX extension`)
  return found
}

/** `read` over the items of the PCK certificate's Intel SGX extension; a DER fault is `bad_certificate_chain`. */
function readSgxExtension<T>(pck: X509Certificate, read: (extension: Uint8Array, items: OidItem[]) => T): T {
  try {
    const extension = certificateFields(pck.raw).extensions.get(SGX_EXTENSION)
    if (!extension) throw new DerError('no Intel SGX extension')
    return read(extension, oidItems(extension, derRoot(extension, DER_TAG.sequence)))
  } catch (error) {
    if (error instanceof DerError) return fail('bad_certificate_chain', `PCK certificate: ${error.message}`)
    throw error
  }
}

/** FMSPC from the PCK certificate's Intel SGX extension (OID 1.2.840.113741.1.13.1.4). */
export function pckFmspc(pck: X509Certificate): Hex {
  return readSgxExtension(pck, (extension, items) => {
    const fmspc = derContent(extension, expectTag(findItem(items, SGX_FMSPC, 'FMSPC').value, DER_TAG.octetString))
    if (fmspc.length !== 6) throw new DerError(`FMSPC is ${fmspc.length} bytes`)
    return bytesToHex(fmspc)
  })
}

/** The PCK certificate's platform TCB: CPUSVN (16 component SVNs) and PCESVN, from its Intel SGX extension. */
const pckTcbs = new WeakMap<X509Certificate, { cpuSvn: Uint8Array; pceSvn: number }>()
export function pckTcb(pck: X509Certificate): { cpuSvn: Uint8Array; pceSvn: number } {
  const cached = pckTcbs.get(pck)
  if (cached) return cached
  const result = readSgxExtension(pck, (extension, items) => {
    const tcb = oidItems(extension, expectTag(findItem(items, SGX_TCB, 'TCB').value, DER_TAG.sequence))
    const cpuSvn = derContent(extension, expectTag(findItem(tcb, SGX_CPUSVN, 'CPUSVN').value, DER_TAG.octetString))
    if (cpuSvn.length !== 16) throw new DerError(`CPUSVN is ${cpuSvn.length} bytes`)
    // PCESVN is a DER INTEGER of one or two content bytes, read unsigned (as dcap-qvl reads it).
    const pceBytes = derContent(extension, expectTag(findItem(tcb, SGX_PCESVN, 'PCESVN').value, DER_TAG.integer))
    if (pceBytes.length < 1 || pceBytes.length > 2) throw new DerError(`PCESVN is ${pceBytes.length} bytes`)
    return { cpuSvn: cpuSvn.slice(), pceSvn: pceBytes.length === 1 ? pceBytes[0]! : (pceBytes[0]! << 8) | pceBytes[1]! }
  })
  pckTcbs.set(pck, result)
  return result
}

/** Intel's order of TCB statuses, best first; anything else is unknown and never valid. */
const SEVERITY: readonly string[] = ['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded', 'Revoked']
const severity = (s: string): number => (SEVERITY.includes(s) ? SEVERITY.indexOf(s) : SEVERITY.length)

type Level = { status: string; advisoryIds: string[] }

/** Every component of `actual` at or above `required`'s (same length), as dcap-qvl compares SVN arrays. */
const svnsAtLeast = (actual: Uint8Array, required: readonly { svn: number }[]): boolean =>
  actual.length === required.length && required.every((c, i) => actual[i]! >= c.svn)

function platformLevel(tcbInfo: TcbInfoBody, teeType: TeeType, cpuSvn: Uint8Array, pceSvn: number, teeTcbSvn: Uint8Array | undefined): Level {
  for (const level of tcbInfo.tcbLevels) {
    if (pceSvn < level.tcb.pcesvn) continue
    if (level.tcb.sgxtcbcomponents.length === 0) fail('tcb_not_supported', 'No SGX components in the TCB info')
    if (!svnsAtLeast(cpuSvn, level.tcb.sgxtcbcomponents)) continue
    if (teeType === 'tdx') {
      const tdx = level.tcb.tdxtcbcomponents ?? []
      if (tdx.length === 0) fail('tcb_not_supported', 'No TDX components in the TCB info')
      if (!svnsAtLeast(teeTcbSvn!, tdx)) continue
    }
    return { status: level.tcbStatus, advisoryIds: [...(level.advisoryIDs ?? [])] }
  }
  return fail('tcb_not_supported', 'No matching TCB level found')
}

/** The QE report against the QE identity (MRSIGNER, ISVPRODID, debug, MISCSELECT, ATTRIBUTES), then its TCB level. */
function qeLevel(qeReport: Uint8Array, identity: QeIdentityBody): Level {
  const mrSigner = readField(qeReport, SGX_REPORT.mrSigner)
  if (!bytesEqual(mrSigner, Buffer.from(identity.mrsigner, 'hex'))) fail('qe_identity_mismatch', 'QE MRSIGNER mismatch')
  const view = new DataView(qeReport.buffer, qeReport.byteOffset, qeReport.byteLength)
  if (view.getUint16(SGX_REPORT.isvProdId.offset, true) !== identity.isvprodid) fail('qe_identity_mismatch', 'QE ISVPRODID mismatch')
  const attributes = readField(qeReport, SGX_REPORT.attributes)
  if ((attributes[0]! & 0x02) !== 0) fail('debug_enabled', 'Debug mode is enabled (QE report)')
  const miscMask = Buffer.from(identity.miscselectMask, 'hex').readUInt32LE(0)
  const misc = view.getUint32(SGX_REPORT.miscSelect.offset, true)
  if ((misc & miscMask) >>> 0 !== (Buffer.from(identity.miscselect, 'hex').readUInt32LE(0) & miscMask) >>> 0) fail('qe_identity_mismatch', 'QE MISCSELECT mismatch')
  const expected = Buffer.from(identity.attributes, 'hex')
  const mask = Buffer.from(identity.attributesMask, 'hex')
  for (let i = 0; i < 16; i++) if ((attributes[i]! & mask[i]!) !== (expected[i]! & mask[i]!)) fail('qe_identity_mismatch', 'QE ATTRIBUTES mismatch')
  const isvSvn = view.getUint16(SGX_REPORT.isvSvn.offset, true)
  const level = identity.tcbLevels.find((l) => isvSvn >= l.tcb.isvsvn)
  if (!level) return fail('tcb_not_supported', `QE ISVSVN ${isvSvn} is below every TCB level of the QE identity`)
  return { status: level.tcbStatus, advisoryIds: [...(level.advisoryIDs ?? [])] }
}

/** TD attributes: not a debug TD, no reserved bit set, SEPT_VE_DISABLE on (dcap-qvl's `validateTd10`). */
function checkTdAttributes(td: Uint8Array) {
  if (td[0] !== 0) fail('debug_enabled', 'Debug mode is enabled')
  const reservedSec = (((td[3]! & 0x0f) << 16) | (td[2]! << 8) | td[1]!) !== 0 || (td[3]! & 0x20) !== 0
  const reservedOther = (((td[7]! & 0x7f) << 24) | (td[6]! << 16) | (td[5]! << 8) | td[4]!) !== 0
  if (reservedSec || reservedOther) fail('bad_td_attributes', 'Reserved bits in TD attributes are set')
  if ((td[3]! & 0x10) === 0) fail('bad_td_attributes', 'SEPT_VE_DISABLE is not enabled')
}

export type QuoteCheckInput = {
  quote: Quote
  /** The quote's auth data in its v3 view (dcap.ts has read it already). */
  auth: AuthDataV3
  /** The quote's bytes (header and body are signed). */
  raw: Uint8Array
  teeType: TeeType
  /** The verified PCK chain's leaf, TCB info signing certificate and QE identity signing certificate. */
  pck: X509Certificate
  tcbSigner: X509Certificate
  qeIdentitySigner: X509Certificate
  /** Collateral texts as signed, their signatures (hex r ‖ s), and the bodies parsed. */
  tcbInfoText: string
  tcbInfoSignature: string
  tcbInfo: TcbInfoBody
  qeIdentityText: string
  qeIdentitySignature: string
  qeIdentity: QeIdentityBody
}

/** The per-quote steps, in dcap-qvl 0.3.9's order; returns the merged platform and QE TCB status and advisories. */
export function checkQuote(input: QuoteCheckInput): { status: TcbStatus; advisoryIds: string[] } {
  const { quote, teeType, tcbInfo, qeIdentity } = input
  if (!validSignature(input.tcbSigner.publicKey, Buffer.from(input.tcbInfoText, 'utf8'), Buffer.from(input.tcbInfoSignature, 'hex'))) {
    fail('bad_collateral_signature', 'Signature is invalid for tcb_info')
  }
  if (!validSignature(input.qeIdentitySigner.publicKey, Buffer.from(input.qeIdentityText, 'utf8'), Buffer.from(input.qeIdentitySignature, 'hex'))) {
    fail('bad_collateral_signature', 'Signature is invalid for qe_identity')
  }
  const qeVersions = teeType === 'tdx' ? [2, 3] : [2]
  if (!qeVersions.includes(qeIdentity.version)) fail('collateral_mismatch', `QE identity version ${qeIdentity.version} is not supported for ${teeType.toUpperCase()}`)

  const { auth } = input
  const qeReport = new Uint8Array(auth.qeReport)
  if (qeReport.length !== SGX_REPORT.reportData.offset + SGX_REPORT.reportData.length) fail('malformed_quote', `QE report is ${qeReport.length} bytes`)
  if (!validSignature(input.pck.publicKey, qeReport, auth.qeReportSignature)) fail('bad_signature', 'Signature is invalid for qe_report in quote')
  // The QE report binds the attestation key: its report data starts with SHA-256(attestation key ‖ QE auth data).
  const binding = createHash('sha256').update(auth.ecdsaAttestationKey).update(auth.qeAuthData).digest()
  if (!timingSafeEqual(binding, readField(qeReport, SGX_REPORT.reportData).subarray(0, 32))) fail('bad_signature', 'QE report hash mismatch')
  const qe = qeLevel(qeReport, qeIdentity)

  const signed = input.raw.subarray(0, quote.signedLength())
  if (!validSignature(attestationKey(auth.ecdsaAttestationKey), signed, auth.ecdsaSignature)) fail('bad_signature', 'ISV enclave report signature is invalid')

  const { cpuSvn, pceSvn } = pckTcb(input.pck)
  const minimum = teeType === 'tdx' ? { id: 'TDX', version: 3 } : { id: 'SGX', version: 2 }
  if (tcbInfo.version < minimum.version || tcbInfo.id !== minimum.id) fail('collateral_mismatch', `${teeType.toUpperCase()} quote with TCB info ${String(tcbInfo.id)} v${tcbInfo.version}`)
  const td = teeType === 'tdx' ? quote.report.asTd10() : null
  if (teeType === 'tdx' && !td) fail('malformed_quote', 'a TDX quote without a TD report')
  const platform = platformLevel(tcbInfo, teeType, cpuSvn, pceSvn, td?.teeTcbSvn)

  const worst = severity(qe.status) > severity(platform.status) ? qe.status : platform.status
  const advisoryIds = [...platform.advisoryIds]
  for (const id of qe.advisoryIds) if (!advisoryIds.includes(id)) advisoryIds.push(id)
  if (worst === 'Revoked') fail('tcb_revoked', 'TCB status is invalid: Revoked')
  if (severity(worst) >= SEVERITY.length) fail('collateral_invalid', `TCB status ${JSON.stringify(worst)} is unknown`)

  const report = quote.report
  if (report.type === 'sgx') {
    if ((report.asSgx()!.attributes[0]! & 0x02) !== 0) fail('debug_enabled', 'Debug mode is enabled')
  } else {
    const td15 = report.type === 'td15' ? report.asTd15()! : undefined
    if (td15 && td15.mrServiceTd.some((b) => b !== 0)) fail('bad_td_attributes', 'Invalid mr service td')
    checkTdAttributes(new Uint8Array((td15?.base ?? report.asTd10()!).tdAttributes))
  }
  return { status: worst as TcbStatus, advisoryIds }
}
