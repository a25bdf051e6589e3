// DCAP quote verification (docs/protocol.md#measurements-and-tcb-policy, docs/protocol.md#tee-providers, docs/protocol.md#command-line `quote verify`): Intel's quote
// verification, in two parts. This module verifies what a quote shares with its collateral: the PCK chain, the TCB
// info and QE identity chains, the CRLs (their signatures and validity, strictly parsed, revocation scoped by
// issuer), CA flags, validity windows, collateral ↔ quote matching, the TDX module identity and the QE report data's
// zero half. dcapQuote.ts does the quote's own steps (signatures, the QE identity policy, the TCB level), in
// @phala/dcap-qvl 0.3.9's order and semantics; dcap-qvl parses the quote and is the reference both are tested
// against (dcapQuote.ts says why its `verify` is not in the path). Every failure is a `QuoteVerificationError` with a
// short reason code.
import { X509Certificate } from 'node:crypto'
import { constants as dcapConstants, Quote, type AuthDataV3 } from '@phala/dcap-qvl'
import type { Hex } from 'viem'
import { collateralTime, parseCollateral, type Collateral, type CollateralSource } from './collateral.ts'
import { checkCrl, checkNotRevoked, commonName, isoTime, parseCrl } from './crl.ts'
import { checkQuote, parseQeIdentityBody, parseTcbInfoBody, pckFmspc } from './dcapQuote.ts'
import { measurementOf } from './measurement.ts'
import { ATTESTATION_KEY_TYPE_ECDSA_P256, CERTIFICATION_DATA_TYPE, INTEL_QE_VENDOR_ID, readField, SGX_REPORT } from './quoteLayout.ts'
import { QuoteVerificationError, type QuoteVerifier, type TcbStatus, type TeeType, type VerifiedQuote } from './types.ts'

export { pckFmspc }

/** Every reason code `createDcapVerifier(...).verify` can throw. */
export const DCAP_REJECTION_REASONS = [
  'malformed_quote',
  'unsupported_quote',
  'qe_vendor_mismatch',
  'collateral_unavailable',
  'collateral_invalid',
  'collateral_mismatch',
  'collateral_expired',
  'collateral_not_yet_valid',
  'untrusted_root',
  'bad_certificate_chain',
  'certificate_expired',
  'crl_invalid',
  'crl_expired',
  'crl_not_yet_valid',
  'revoked',
  'bad_collateral_signature',
  'bad_signature',
  'qe_identity_mismatch',
  'tdx_module_mismatch',
  'tcb_not_supported',
  'tcb_revoked',
  'debug_enabled',
  'bad_td_attributes',
] as const
export type DcapRejectionReason = (typeof DCAP_REJECTION_REASONS)[number]

/** Intel SGX Root CA (DER), as @phala/dcap-qvl embeds it (`constants.TRUSTED_ROOT_CA_DER`). */
export const INTEL_SGX_ROOT_CA_DER: Uint8Array = new Uint8Array(dcapConstants.TRUSTED_ROOT_CA_DER)

export type DcapVerifierOptions = {
  collateral: CollateralSource
  /**
   * Root CAs whose chains are accepted (DER). Default: Intel's SGX Root CA only. A devnet passes its own root here,
   * explicitly (docs/protocol.md#tee-providers `simulated`); a quote, its PCK chain and its collateral must all lead to the same root.
   */
  trustedRootCaDer?: readonly Uint8Array[]
}

type Anchor = { der: Buffer; cert: X509Certificate }

const fail = (reason: DcapRejectionReason, message: string): never => {
  throw new QuoteVerificationError(reason, message)
}

/** A `QuoteVerifier` for Intel DCAP quotes (TDX v4/v5, SGX v3) against collateral from `options.collateral`. */
export function createDcapVerifier(options: DcapVerifierOptions): QuoteVerifier {
  const { collateral: source, trustedRootCaDer = [INTEL_SGX_ROOT_CA_DER] } = options
  if (!source || typeof source.get !== 'function') throw new TypeError('collateral must be a CollateralSource')
  if (trustedRootCaDer.length === 0) throw new TypeError('trustedRootCaDer must name at least one root CA')
  const anchors: Anchor[] = trustedRootCaDer.map((der, i) => {
    let cert: X509Certificate
    try {
      cert = new X509Certificate(der)
    } catch {
      throw new TypeError(`trustedRootCaDer[${i}] is not a DER certificate`)
    }
    if (!cert.ca || !cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
      throw new TypeError(`trustedRootCaDer[${i}] is not a self-signed CA certificate`)
    }
    return { der: Buffer.from(der), cert }
  })

  return {
    async verify(quote, verifyOptions = {}) {
      const now = verifyOptions.now ?? Math.floor(Date.now() / 1000)
      if (!Number.isSafeInteger(now) || now < 0) throw new TypeError('now must be unix seconds')
      const measurement = measurementOf(quote)
      const { teeType } = measurement

      const parsed = parseQuote(quote.subarray(0, measurement.usedLength))
      const pckChain = pemCertificates(parsed.pckChainPem, 'PCK certificate chain')
      const pckLeaf = pckChain[0]!
      const fmspc = pckFmspc(pckLeaf)
      const ca = pckLeaf.issuer.includes('Platform') ? 'platform' : 'processor'
      // The PCK chain (signatures, validity, a trusted root) is checked before any collateral is fetched: a quote
      // with a made-up chain and FMSPC makes no request to the collateral source and fills no cache
      // (docs/protocol.md#limits). Revocation needs the collateral's CRLs and is checked below.
      const anchor = anchorFor(anchors, pckChain)
      verifyChain(pckChain, anchor, now, 'PCK certificate chain')

      let collateral: Collateral
      try {
        collateral = parseCollateral(await source.get({ quote, teeType, fmspc, ca, now }))
      } catch (error) {
        if (error instanceof QuoteVerificationError) throw error
        return fail('collateral_unavailable', `no collateral for FMSPC ${fmspc.slice(2)}: ${(error as Error).message}`)
      }

      const tcbInfo = jsonObject(collateral.tcb_info, 'tcb_info')
      const qeIdentity = jsonObject(collateral.qe_identity, 'qe_identity')
      checkCollateralMatches(teeType, fmspc, tcbInfo, qeIdentity)
      const tcbIssuedAt = checkWindow(tcbInfo, 'TCB info', now)
      const qeIssuedAt = checkWindow(qeIdentity, 'QE identity', now)
      const tcbEvaluationDataNumber = Math.min(evaluationNumber(tcbInfo, 'TCB info'), evaluationNumber(qeIdentity, 'QE identity'))

      const tcbChain = pemCertificates(collateral.tcb_info_issuer_chain, 'TCB info issuer chain')
      verifyChain(tcbChain, anchor, now, 'TCB info issuer chain')
      const qeChain = pemCertificates(collateral.qe_identity_issuer_chain, 'QE identity issuer chain')
      verifyChain(qeChain, anchor, now, 'QE identity issuer chain')

      const rootCrl = parseCrl(Buffer.from(collateral.root_ca_crl, 'hex'), 'root CA CRL')
      checkCrl(rootCrl, anchor.cert, now)
      const pckCrl = parseCrl(Buffer.from(collateral.pck_crl, 'hex'), 'PCK CRL')
      checkCrl(pckCrl, pckChain[1]!, now)
      checkNotRevoked([rootCrl, pckCrl], [...pckChain, ...tcbChain, ...qeChain])

      const { status: quoteStatus, advisoryIds } = checkQuote({
        quote: parsed.quote,
        auth: parsed.auth,
        raw: quote.subarray(0, measurement.usedLength),
        teeType,
        pck: pckLeaf,
        tcbSigner: tcbChain[0]!,
        qeIdentitySigner: qeChain[0]!,
        tcbInfoText: collateral.tcb_info,
        tcbInfoSignature: collateral.tcb_info_signature,
        tcbInfo: parseTcbInfoBody(tcbInfo),
        qeIdentityText: collateral.qe_identity,
        qeIdentitySignature: collateral.qe_identity_signature,
        qeIdentity: parseQeIdentityBody(qeIdentity),
      })

      let status = quoteStatus
      if (teeType === 'tdx') {
        const td = parsed.quote.report.asTd10()!
        const module = tdxModuleStatus(td, tcbInfo)
        status = convergeWithTdxModule(status, module.status)
        for (const id of module.advisoryIds) if (!advisoryIds.includes(id)) advisoryIds.push(id)
      }
      if (parsed.qeReportData.subarray(32).some((b) => b !== 0)) {
        fail('bad_signature', 'QE report data: bytes 32..64 must be zero')
      }

      return {
        teeType,
        status,
        advisoryIds,
        fmspc,
        measurements: measurement.measurements,
        measurementId: measurement.measurementId,
        measurementRaw: measurement.measurementRaw,
        reportData: measurement.reportData,
        // The root CA CRL is left out: Intel reissues it about once a year, so a max collateral age below a year
        // would reject every fresh collateral. It still has to be inside its own validity window.
        collateralIssuedAt: Math.min(tcbIssuedAt, qeIssuedAt, pckCrl.thisUpdate),
        tcbEvaluationDataNumber,
        collateral,
      } satisfies VerifiedQuote
    },
  }
}

function parseQuote(bytes: Uint8Array): { quote: Quote; auth: AuthDataV3; pckChainPem: string; qeReportData: Uint8Array } {
  let quote: Quote
  try {
    quote = Quote.parse(Buffer.from(bytes))
  } catch (error) {
    return fail('malformed_quote', `quote auth data: ${(error as Error).message}`)
  }
  // dcap-qvl 0.3.9 reads the QE vendor id and never compares it. Another vendor's QE would be judged by Intel's QE
  // identity and TCB info, which say nothing about it.
  const vendor = Buffer.from(quote.header.qeVendorId).toString('hex')
  if (vendor !== INTEL_QE_VENDOR_ID) fail('qe_vendor_mismatch', `QE vendor id ${vendor} is not Intel's (${INTEL_QE_VENDOR_ID})`)
  if (quote.header.attestationKeyType !== ATTESTATION_KEY_TYPE_ECDSA_P256) {
    fail('unsupported_quote', `attestation key type ${quote.header.attestationKeyType}, expected 2 (ECDSA P-256)`)
  }
  if (quote.authData.version === 4) {
    const outer = quote.authData.data as { certificationData: { certType: number } }
    if (outer.certificationData.certType !== CERTIFICATION_DATA_TYPE.qeReportCertificationData) {
      fail('malformed_quote', `certification data type ${outer.certificationData.certType}, expected 6 (QE report certification data)`)
    }
  }
  const auth = quote.authData.intoV3()
  if (auth.certificationData.certType !== CERTIFICATION_DATA_TYPE.pckCertChain) {
    fail(
      'unsupported_quote',
      `PCK certification data type ${auth.certificationData.certType}: only 5 (PCK certificate chain in the quote) is supported`,
    )
  }
  const qeReportData = readField(new Uint8Array(auth.qeReport), SGX_REPORT.reportData)
  return { quote, auth, pckChainPem: Buffer.from(auth.certificationData.body).toString('latin1'), qeReportData }
}

/**
 * Parsed certificates by their PEM text. A helper sees the same Intel intermediates, TCB signing certificate and root
 * in every quote and collateral, and the same PCK leaf for every newcomer of a machine; parsing them was a fifth of a
 * verification's time. Keyed by the bytes themselves, so a cached entry is exactly what parsing those bytes gives (an
 * attacker can only add entries, and the bound keeps those few); only parsing is cached: every check runs each time.
 */
const parsedCertificates = new Map<string, X509Certificate>()
const PARSED_CERTIFICATES_MAX = 256

function pemCertificates(text: string, what: string): X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
  if (blocks.length < 2) fail('bad_certificate_chain', `${what} has ${blocks.length} certificate(s), expected at least 2`)
  return blocks.map((block, i) => {
    const cached = parsedCertificates.get(block)
    if (cached) return cached
    let cert: X509Certificate
    try {
      cert = new X509Certificate(block)
    } catch {
      return fail('bad_certificate_chain', `${what}: certificate ${i} cannot be parsed`)
    }
    if (parsedCertificates.size >= PARSED_CERTIFICATES_MAX) parsedCertificates.delete(parsedCertificates.keys().next().value!)
    parsedCertificates.set(block, cert)
    return cert
  })
}

/**
 * Whether `cert` names `issuer` as its issuer and carries its valid signature. A signature that verified once is
 * remembered for that pair of (cached, immutable) certificate objects; a failure is never remembered.
 */
const signedPairs = new WeakMap<X509Certificate, WeakSet<X509Certificate>>()
function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  if (signedPairs.get(cert)?.has(issuer)) return true
  if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return false
  let issuers = signedPairs.get(cert)
  if (!issuers) signedPairs.set(cert, (issuers = new WeakSet()))
  issuers.add(issuer)
  return true
}

function jsonObject(json: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(json)
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {}
  return fail('collateral_invalid', `${what} is not a JSON object`)
}

function checkCollateralMatches(teeType: TeeType, fmspc: Hex, tcbInfo: Record<string, unknown>, qeIdentity: Record<string, unknown>) {
  const expected = teeType === 'tdx' ? { tcb: 'TDX', qe: 'TD_QE' } : { tcb: 'SGX', qe: 'QE' }
  if (tcbInfo.id !== expected.tcb) {
    fail('collateral_mismatch', `${teeType.toUpperCase()} quote with TCB info ${JSON.stringify(tcbInfo.id)}, expected "${expected.tcb}"`)
  }
  if (qeIdentity.id !== expected.qe) {
    fail('collateral_mismatch', `${teeType.toUpperCase()} quote with QE identity ${JSON.stringify(qeIdentity.id)}, expected "${expected.qe}"`)
  }
  if (typeof tcbInfo.fmspc !== 'string' || `0x${tcbInfo.fmspc.toLowerCase()}` !== fmspc) {
    fail('collateral_mismatch', `TCB info is for FMSPC ${String(tcbInfo.fmspc).toLowerCase()}, the PCK certificate's is ${fmspc.slice(2)}`)
  }
}

/** `tcbEvaluationDataNumber` of a TCB info or QE identity body: Intel raises it at each TCB recovery. */
function evaluationNumber(body: Record<string, unknown>, what: string): number {
  const value = body.tcbEvaluationDataNumber
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff)
    return fail('collateral_invalid', `${what} tcbEvaluationDataNumber is not a uint32`)
  return value
}

/** issueDate ≤ now ≤ nextUpdate; returns issueDate. */
function checkWindow(body: Record<string, unknown>, what: string, now: number): number {
  const issued = collateralTime(body.issueDate, `${what} issueDate`)
  const nextUpdate = collateralTime(body.nextUpdate, `${what} nextUpdate`)
  if (now < issued) fail('collateral_not_yet_valid', `${what} is not valid before ${isoTime(issued)}`)
  if (now > nextUpdate) fail('collateral_expired', `${what} expired at ${isoTime(nextUpdate)}`)
  return issued
}

function anchorFor(anchors: Anchor[], chain: X509Certificate[]): Anchor {
  const top = chain[chain.length - 1]!
  const anchor = anchors.find((a) => signedBy(top, a.cert))
  return anchor ?? fail('untrusted_root', `PCK certificate chain ends at "${commonName(top.issuer)}", not a trusted root CA`)
}

/**
 * Each certificate is issued (name and signature) by the next one, the last by the anchor; every one is inside its
 * validity window; all but the leaf are CAs and the leaf is not.
 */
function verifyChain(chain: X509Certificate[], anchor: Anchor, now: number, what: string) {
  const checkValidity = (cert: X509Certificate) => {
    const from = Date.parse(cert.validFrom) / 1000
    const to = Date.parse(cert.validTo) / 1000
    if (!(from <= now && now <= to)) {
      fail('certificate_expired', `${what}: "${commonName(cert.subject)}" is valid from ${isoTime(from)} to ${isoTime(to)}`)
    }
  }
  chain.forEach((cert, i) => {
    if (i === 0 && cert.ca) fail('bad_certificate_chain', `${what}: the leaf "${commonName(cert.subject)}" is a CA certificate`)
    if (i > 0 && !cert.ca) fail('bad_certificate_chain', `${what}: "${commonName(cert.subject)}" issues certificates but is not a CA`)
  })
  chain.forEach((cert, i) => {
    const issuer = chain[i + 1] ?? anchor.cert
    if (!signedBy(cert, issuer)) {
      if (i === chain.length - 1) fail('untrusted_root', `${what} does not lead to a trusted root CA`)
      fail('bad_certificate_chain', `${what}: "${commonName(cert.subject)}" is not signed by "${commonName(issuer.subject)}"`)
    }
    checkValidity(cert)
  })
  checkValidity(anchor.cert)
}

type TdModuleFields = { teeTcbSvn: Uint8Array; mrSignerSeam: Uint8Array; seamAttributes: Uint8Array }
type ModuleIdentity = { id?: unknown; mrsigner?: unknown; attributes?: unknown; attributesMask?: unknown; tcbLevels?: unknown }

const hexBytes = (value: unknown, length: number, what: string): Buffer => {
  if (typeof value !== 'string' || !new RegExp(`^[0-9a-fA-F]{${length * 2}}$`).test(value)) {
    return fail('collateral_invalid', `TCB info ${what} is not ${length} bytes of hex`)
  }
  return Buffer.from(value, 'hex')
}

/**
 * TDX module identity (Intel's TDX DCAP verification, "TDX module" step; dcap-qvl 0.3.9 JS skips it): MRSIGNERSEAM
 * and SEAMATTRIBUTES must match the TCB info's `tdxModule`, or for a module of major version TEE_TCB_SVN[1] > 0 its
 * `tdxModuleIdentities` entry `TDX_<version>`, whose TCB levels rate TEE_TCB_SVN[0].
 */
function tdxModuleStatus(td: TdModuleFields, tcbInfo: Record<string, unknown>): { status?: string; advisoryIds: string[] } {
  const version = td.teeTcbSvn[1]!
  let identity: ModuleIdentity
  if (version === 0) {
    if (!tcbInfo.tdxModule || typeof tcbInfo.tdxModule !== 'object') return fail('collateral_invalid', 'TCB info has no tdxModule')
    identity = tcbInfo.tdxModule as ModuleIdentity
  } else {
    const id = `TDX_${version.toString(16).padStart(2, '0').toUpperCase()}`
    const identities = Array.isArray(tcbInfo.tdxModuleIdentities) ? (tcbInfo.tdxModuleIdentities as ModuleIdentity[]) : []
    identity =
      identities.find((m) => typeof m?.id === 'string' && m.id.toUpperCase() === id) ??
      fail('tdx_module_mismatch', `TCB info has no TDX module identity ${id}`)
  }
  if (!hexBytes(identity.mrsigner, 48, 'TDX module mrsigner').equals(td.mrSignerSeam)) {
    fail('tdx_module_mismatch', 'MRSIGNERSEAM differs from the TCB info TDX module mrsigner')
  }
  const attributes = hexBytes(identity.attributes, 8, 'TDX module attributes')
  const mask = hexBytes(identity.attributesMask, 8, 'TDX module attributesMask')
  for (let i = 0; i < 8; i++) {
    if ((td.seamAttributes[i]! & mask[i]!) !== (attributes[i]! & mask[i]!)) {
      fail('tdx_module_mismatch', 'SEAMATTRIBUTES differ from the TCB info TDX module attributes')
    }
  }
  if (version === 0) return { advisoryIds: [] }
  const levels = Array.isArray(identity.tcbLevels) ? (identity.tcbLevels as { tcb?: { isvsvn?: unknown }; tcbStatus?: unknown; advisoryIDs?: unknown }[]) : []
  const level =
    levels.find((l) => typeof l?.tcb?.isvsvn === 'number' && td.teeTcbSvn[0]! >= l.tcb.isvsvn) ??
    fail('tcb_not_supported', `TDX module SVN ${td.teeTcbSvn[0]} is below every TCB level of ${String(identity.id)}`)
  const advisoryIds = Array.isArray(level.advisoryIDs) ? level.advisoryIDs.filter((a): a is string => typeof a === 'string') : []
  return { status: String(level.tcbStatus), advisoryIds }
}

/** Intel's convergence of the platform TCB status with the TDX module's (OutOfDate and Revoked dominate). */
function convergeWithTdxModule(platform: TcbStatus, module: string | undefined): TcbStatus {
  if (module === undefined || module === 'UpToDate') return platform
  if (module === 'Revoked') return fail('tcb_revoked', 'TCB status is Revoked (TDX module)')
  if (module !== 'OutOfDate') return fail('collateral_invalid', `TDX module TCB status ${JSON.stringify(module)} is unknown`)
  if (platform === 'UpToDate' || platform === 'SWHardeningNeeded') return 'OutOfDate'
  if (platform === 'ConfigurationNeeded' || platform === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded'
  return platform
}
