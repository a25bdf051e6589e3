// Where DCAP collateral comes from (DESIGN.md §10): an offline JSON file, or a PCCS / Intel PCS URL behind a cache.
// Collateral is untrusted input either way: the verifier checks every signature, chain, CRL and validity window.
import { readFile } from 'node:fs/promises'
import { getCollateral } from '@phala/dcap-qvl'
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
 * Collateral from one JSON file in dcap-qvl's `getCollateral` shape (as `shared/fixtures/dcap/*_collateral.json`),
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
  /** Refetch this many seconds before the cached collateral expires (default 1 day). */
  refreshBefore?: number
  /** Keep fetched collateral at most this long, whatever it claims (default 1 day): a bad fetch is not kept for a month. */
  maxCacheSeconds?: number
  /** Give up on one fetch after this long (default 30 s). */
  timeoutMs?: number
}

/**
 * Collateral fetched with @phala/dcap-qvl's `getCollateral(url, quote)` (PCS v4 API paths; Intel PCS or a PCCS),
 * cached by TEE type, PCK CA and FMSPC. Cached collateral is served until `refreshBefore` seconds before it
 * expires; then a refetch is tried, and while it fails the still-valid cached copy is served. Concurrent requests
 * for one key share one fetch.
 */
export function pccsCollateral(options: PccsCollateralOptions): CollateralSource {
  const { url, cache = memoryCollateralCache(), refreshBefore = 86_400, maxCacheSeconds = 86_400, timeoutMs = 30_000 } = options
  if (!/^https?:\/\//.test(url)) throw new TypeError(`PCCS url must be http(s): ${url}`)
  const inFlight = new Map<string, Promise<Collateral>>()

  async function fetchCollateral(request: CollateralRequest): Promise<Collateral> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      timer.unref()
    })
    try {
      const fetched = await Promise.race([getCollateral(url, Buffer.from(request.quote)), timeout])
      return parseCollateral(fetched)
    } catch (error) {
      if (error instanceof QuoteVerificationError) throw error
      throw new QuoteVerificationError('collateral_unavailable', `PCCS ${url}: ${(error as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
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
