// Where DCAP collateral comes from (docs/protocol.md#tee-providers): an offline JSON file, or a PCCS / Intel PCS URL behind a cache.
// Collateral is untrusted input either way: the verifier checks every signature, chain, CRL and validity window.
import { readFile } from 'node:fs/promises'
import type { Hex } from 'viem'
import { z } from 'zod'
import { parseCrl } from './crl.ts'
import { QuoteVerificationError, type TeeType } from './types.ts'

/**
 * Collateral in @phala/dcap-qvl's `getCollateral` shape, normalised: CRLs and signatures as lowercase hex (no 0x),
 * and without `pck_certificate_chain` (that belongs to one quote, not to an FMSPC; the verifier takes the PCK chain
 * from the quote).
 */
export type Collateral = {
  pck_crl_issuer_chain: string
  root_ca_crl: string
  pck_crl: string
  tcb_info_issuer_chain: string
  tcb_info: string
  tcb_info_signature: string
  qe_identity_issuer_chain: string
  qe_identity: string
  qe_identity_signature: string
}

/** What a source needs to find the collateral for one quote. */
export type CollateralRequest = {
  quote: Uint8Array
  teeType: TeeType
  /** From the PCK certificate, 0x-prefixed lowercase hex. */
  fmspc: Hex
  /** Which PCK CA issued the PCK certificate (selects the PCK CRL). */
  ca: 'processor' | 'platform'
  /** The verification time, unix seconds. */
  now: number
}

export interface CollateralSource {
  get(request: CollateralRequest): Promise<Collateral>
}

const bytesOrHex = z.union([z.string().regex(/^(0x)?([0-9a-fA-F]{2})*$/), z.array(z.number().int().min(0).max(255))])
const pem = z.string().min(1)
const collateralSchema = z.object({
  pck_crl_issuer_chain: pem,
  root_ca_crl: bytesOrHex,
  pck_crl: bytesOrHex,
  tcb_info_issuer_chain: pem,
  tcb_info: z.string().min(2),
  tcb_info_signature: bytesOrHex,
  qe_identity_issuer_chain: pem,
  qe_identity: z.string().min(2),
  qe_identity_signature: bytesOrHex,
})

const toHex = (value: string | number[]): string =>
  typeof value === 'string' ? value.replace(/^0x/, '').toLowerCase() : Buffer.from(value).toString('hex')

/** Validates collateral in dcap-qvl's shape (hex strings or byte arrays) and normalises it; throws `collateral_invalid`. */
export function parseCollateral(value: unknown): Collateral {
  const parsed = collateralSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new QuoteVerificationError('collateral_invalid', `collateral field ${issue.path.join('.') || '(root)'}: ${issue.message}`)
  }
  const c = parsed.data
  return {
    pck_crl_issuer_chain: c.pck_crl_issuer_chain,
    root_ca_crl: toHex(c.root_ca_crl),
    pck_crl: toHex(c.pck_crl),
    tcb_info_issuer_chain: c.tcb_info_issuer_chain,
    tcb_info: c.tcb_info,
    tcb_info_signature: toHex(c.tcb_info_signature),
    qe_identity_issuer_chain: c.qe_identity_issuer_chain,
    qe_identity: c.qe_identity,
    qe_identity_signature: toHex(c.qe_identity_signature),
  }
}

/** Reads an Intel date (`2025-06-19T10:16:03Z`) as unix seconds; throws `collateral_invalid`. */
export function collateralTime(value: unknown, what: string): number {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value)) {
    throw new QuoteVerificationError('collateral_invalid', `${what} is not a UTC date: ${JSON.stringify(value)}`)
  }
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw new QuoteVerificationError('collateral_invalid', `${what} is not a UTC date: ${JSON.stringify(value)}`)
  return Math.floor(ms / 1000)
}

function jsonField(json: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(json)
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {}
  throw new QuoteVerificationError('collateral_invalid', `${what} is not a JSON object`)
}

/**
 * The time from which this collateral can no longer be used: the earliest `nextUpdate` of the TCB info, the QE
 * identity and both CRLs. Unchecked input: use it to schedule refreshes, never to accept anything.
 */
export function collateralExpiresAt(collateral: Collateral): number {
  const tcbInfo = jsonField(collateral.tcb_info, 'tcb_info')
  const qeIdentity = jsonField(collateral.qe_identity, 'qe_identity')
  return Math.min(
    collateralTime(tcbInfo.nextUpdate, 'tcb_info nextUpdate'),
    collateralTime(qeIdentity.nextUpdate, 'qe_identity nextUpdate'),
    parseCrl(Buffer.from(collateral.root_ca_crl, 'hex'), 'root CA CRL').nextUpdate,
    parseCrl(Buffer.from(collateral.pck_crl, 'hex'), 'PCK CRL').nextUpdate,
  )
}

/**
 * Collateral from one JSON file in dcap-qvl's `getCollateral` shape (as `test/fixtures/dcap/*_collateral.json`),
 * read once. The same collateral is returned for every quote: the verifier rejects it (`collateral_mismatch`) for a
 * quote of another TEE type or FMSPC.
 */
export function fileCollateral(path: string): CollateralSource {
  let loaded: Promise<Collateral> | undefined
  const load = async (): Promise<Collateral> => {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      throw new QuoteVerificationError('collateral_unavailable', `cannot read collateral file ${path}: ${(error as Error).message}`)
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new QuoteVerificationError('collateral_invalid', `collateral file ${path} is not JSON`)
    }
    return parseCollateral(json)
  }
  return {
    async get() {
      loaded ??= load()
      return loaded
    },
  }
}

export type CachedCollateral = { collateral: Collateral; expiresAt: number }

/**
 * Persistent collateral cache (a SQLite one lives with the node state). Keys come from `collateralCacheKey`:
 * collateral depends on the TEE type (TDX and SGX TCB info differ for one FMSPC) and the PCK CA, not only on the FMSPC.
 */
export interface CollateralCache {
  get(key: string): Promise<CachedCollateral | undefined> | CachedCollateral | undefined
  put(key: string, collateral: Collateral, expiresAt: number): Promise<void> | void
}

export const collateralCacheKey = (request: Pick<CollateralRequest, 'teeType' | 'ca' | 'fmspc'>): string =>
  `${request.teeType}:${request.ca}:${request.fmspc.toLowerCase()}`

/** An in-memory `CollateralCache` (tests, one-shot CLI runs). */
export function memoryCollateralCache(): CollateralCache {
  const entries = new Map<string, CachedCollateral>()
  return {
    get: (key) => entries.get(key),
    put: (key, collateral, expiresAt) => {
      entries.set(key, { collateral, expiresAt })
    },
  }
}

export type PccsCollateralOptions = {
  /** A PCCS or Intel PCS base URL, e.g. `https://pccs.example:8081` or `https://api.trustedservices.intel.com`. */
  url: string
  cache?: CollateralCache
  /** Refetch this many seconds before the cached collateral expires (default 1 hour). */
  refreshBefore?: number
  /** Keep fetched collateral at most this long, whatever it claims (default 1 day): a bad fetch is not kept for a month. */
  maxCacheSeconds?: number
  /** Give up on one HTTP request after this long (default 30 s). */
  timeoutMs?: number
  /** Where to get the root CA CRL when the server has no `rootcacrl` endpoint (Intel PCS has none). */
  rootCaCrlUrl?: string
}

/** Intel SGX Root CA's CRL distribution point (from the root certificate). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der'

/**
 * Collateral from a PCCS or Intel PCS (API v4), cached by TEE type, PCK CA and FMSPC. Cached collateral is served
 * until `refreshBefore` seconds before it expires; then a refetch is tried, and while it fails the still-valid cached
 * copy is served. Concurrent requests for one key share one fetch.
 *
 * Not @phala/dcap-qvl's `getCollateral`: in 0.3.9 it cannot read the PCK certificate's issuer and always fetches the
 * Processor CA's PCK CRL, the wrong one for Platform-CA platforms (most TDX servers), it re-serialises the signed
 * TCB info JSON instead of keeping its bytes, and it has no timeouts.
 */
export function pccsCollateral(options: PccsCollateralOptions): CollateralSource {
  const {
    url,
    cache = memoryCollateralCache(),
    refreshBefore = 3_600,
    maxCacheSeconds = 86_400,
    timeoutMs = 30_000,
    rootCaCrlUrl = INTEL_ROOT_CA_CRL_URL,
  } = options
  if (!/^https?:\/\//.test(url)) throw new TypeError(`PCCS url must be http(s): ${url}`)
  const base = url.replace(/\/+$/, '').replace(/\/(sgx|tdx)\/certification\/v4$/, '')
  const inFlight = new Map<string, Promise<Collateral>>()

  async function get(path: string): Promise<Response> {
    const target = /^https?:/.test(path) ? path : `${base}${path}`
    let response: Response
    try {
      response = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) })
    } catch (error) {
      const e = error as Error
      const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `${e.message}${e.cause ? ` (${(e.cause as Error).message})` : ''}`
      throw new QuoteVerificationError('collateral_unavailable', `PCCS ${target}: ${why}`)
    }
    if (!response.ok) throw new QuoteVerificationError('collateral_unavailable', `PCCS ${target}: HTTP ${response.status}`)
    return response
  }
  const header = (response: Response, ...names: string[]): string => {
    for (const name of names) {
      const value = response.headers.get(name)
      if (value) return decodeURIComponent(value)
    }
    throw new QuoteVerificationError('collateral_invalid', `PCCS ${response.url}: no ${names.join(' or ')} header`)
  }
  /** A CRL body: DER, or hex text (PCCS's `rootcacrl`). */
  const crlHex = async (response: Response): Promise<string> => {
    const body = Buffer.from(await response.arrayBuffer())
    if (body[0] === 0x30) return body.toString('hex')
    const text = body.toString('latin1').trim()
    if (/^([0-9a-fA-F]{2})+$/.test(text)) return text.toLowerCase()
    throw new QuoteVerificationError('collateral_invalid', `PCCS ${response.url}: the CRL is neither DER nor hex`)
  }

  async function fetchCollateral({ teeType, ca, fmspc }: CollateralRequest): Promise<Collateral> {
    const fmspcParam = fmspc.slice(2).toUpperCase()
    const [pckCrl, tcb, qe, rootCrl] = await Promise.all([
      get(`/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`),
      get(`/${teeType}/certification/v4/tcb?fmspc=${fmspcParam}`),
      get(`/${teeType}/certification/v4/qe/identity?update=standard`),
      get('/sgx/certification/v4/rootcacrl').catch(() => get(rootCaCrlUrl)),
    ])
    const tcbBody = await tcb.text()
    const qeBody = await qe.text()
    return parseCollateral({
      pck_crl_issuer_chain: header(pckCrl, 'SGX-PCK-CRL-Issuer-Chain'),
      pck_crl: await crlHex(pckCrl),
      root_ca_crl: await crlHex(rootCrl),
      tcb_info_issuer_chain: header(tcb, 'TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'),
      tcb_info: signedJsonMember(tcbBody, 'tcbInfo', tcb.url),
      tcb_info_signature: signatureOf(tcbBody, tcb.url),
      qe_identity_issuer_chain: header(qe, 'SGX-Enclave-Identity-Issuer-Chain'),
      qe_identity: signedJsonMember(qeBody, 'enclaveIdentity', qe.url),
      qe_identity_signature: signatureOf(qeBody, qe.url),
    })
  }

  async function refresh(key: string, request: CollateralRequest): Promise<Collateral> {
    const collateral = await fetchCollateral(request)
    const expiresAt = Math.min(collateralExpiresAt(collateral), request.now + maxCacheSeconds)
    await cache.put(key, collateral, expiresAt)
    return collateral
  }

  return {
    async get(request) {
      const key = collateralCacheKey(request)
      const cached = await cache.get(key)
      if (cached && request.now < cached.expiresAt - refreshBefore) return cached.collateral
      let pending = inFlight.get(key)
      if (!pending) {
        pending = refresh(key, request).finally(() => inFlight.delete(key))
        inFlight.set(key, pending)
      }
      try {
        return await pending
      } catch (error) {
        if (cached && request.now < cached.expiresAt) return cached.collateral
        throw error
      }
    },
  }
}

function signatureOf(body: string, source: string): string {
  const signature = (jsonField(body, `PCCS ${source} body`) as { signature?: unknown }).signature
  if (typeof signature !== 'string') throw new QuoteVerificationError('collateral_invalid', `PCCS ${source}: no signature`)
  return signature
}

/**
 * The exact text of a top-level member's value in a JSON object: Intel signs the bytes of `tcbInfo` /
 * `enclaveIdentity` as they appear in the response, so they are cut out, never re-serialised.
 */
export function signedJsonMember(body: string, key: string, source = 'response'): string {
  jsonField(body, `PCCS ${source} body`)
  let depth = 0
  let i = 0
  const skipString = () => {
    const start = i
    for (i++; i < body.length && body[i] !== '"'; i++) if (body[i] === '\\') i++
    i++
    return body.slice(start, i)
  }
  while (i < body.length) {
    const c = body[i]!
    if (c === '"') {
      const name = skipString()
      if (depth !== 1) continue
      while (/\s/.test(body[i] ?? '')) i++
      if (body[i] !== ':') continue
      i++
      while (/\s/.test(body[i] ?? '')) i++
      if (JSON.parse(name) !== key) continue
      const start = i
      let nested = 0
      do {
        const v = body[i]!
        if (v === '"') {
          skipString()
          continue
        }
        if (v === '{' || v === '[') nested++
        else if (v === '}' || v === ']') nested--
        i++
      } while (nested > 0 && i < body.length)
      return body.slice(start, i)
    }
    if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') depth--
    i++
  }
  throw new QuoteVerificationError('collateral_invalid', `PCCS ${source}: no ${key}`)
}
