// Collateral kept with the decision (docs/protocol.md#node-state, docs/protocol.md#command-line `audit`): a helper keeps
// the exact DCAP collateral it judged a quote with, addressed by its content hash, and which one each decision used
// and when. `audit` later reads it back from a node's archive or a peer and judges the old quote with it, at the time
// it was judged, instead of with today's collateral. What it reads back is untrusted: the content hash is recomputed,
// the size is capped, the decision time must lie in the request's window, and the DCAP verifier checks every signature,
// chain (to the trusted root), CRL and validity window of the collateral before the verdict counts.
import { keccak256, stringToBytes, type Hex } from 'viem'
import { z } from 'zod'
import { parseCollateral, type Collateral } from './collateral.ts'
import { createDcapVerifier } from './dcap.ts'
import { QuoteVerificationError, type VerifiedQuote } from './types.ts'
import { readBoundedBody } from '../net/boundedBody.ts'

/**
 * The most bytes one kept collateral may take (its canonical JSON): real Intel collateral is about 20 KB (two issuer
 * chains, a TCB info, a QE identity, two CRLs). A node keeps nothing larger, and a reader refuses anything larger.
 */
export const MAX_KEPT_COLLATERAL_BYTES = 256 * 1024

/** One decision's kept collateral, as the archive holds it and `GET /collateral/:quoteBlobHash` serves it. */
export type KeptCollateral = {
  /** The versioned hash of the quote's blob: which decision. */
  quoteBlobHash: Hex
  /** keccak256 of `canonicalCollateralJson(collateral)`. */
  collateralHash: Hex
  /** The time the quote was judged at (the verified block time of the decision), unix seconds. */
  judgedAt: number
  collateral: Collateral
}

/** The collateral as JSON with its fields in a fixed order: the bytes its content hash is taken over. */
export function canonicalCollateralJson(c: Collateral): string {
  return JSON.stringify({
    pck_crl_issuer_chain: c.pck_crl_issuer_chain,
    root_ca_crl: c.root_ca_crl,
    pck_crl: c.pck_crl,
    tcb_info_issuer_chain: c.tcb_info_issuer_chain,
    tcb_info: c.tcb_info,
    tcb_info_signature: c.tcb_info_signature,
    qe_identity_issuer_chain: c.qe_identity_issuer_chain,
    qe_identity: c.qe_identity,
    qe_identity_signature: c.qe_identity_signature,
  })
}

/** The content hash of a collateral's canonical JSON text: keccak256 of its UTF-8 bytes. */
export const canonicalJsonHash = (json: string): Hex => keccak256(stringToBytes(json))

export const collateralHash = (c: Collateral): Hex => canonicalJsonHash(canonicalCollateralJson(c))

const keptSchema = z.object({
  quoteBlobHash: z.string().regex(/^0x01[0-9a-fA-F]{62}$/),
  collateralHash: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  judgedAt: z.number().int().min(0).max(2 ** 40),
  collateral: z.unknown(),
})

/**
 * Reads a kept collateral record from an untrusted place (an archive, a peer) for the decision on `quoteBlobHash`:
 * its shape, its size, that it is for this decision, and that the collateral hashes to the address it came under.
 * Throws `collateral_invalid`. Its signatures are not checked here: `verifyWithKeptCollateral` does that.
 */
export function parseKeptCollateral(value: unknown, quoteBlobHash: Hex): KeptCollateral {
  const parsed = keptSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new QuoteVerificationError('collateral_invalid', `kept collateral field ${issue.path.join('.') || '(root)'}: ${issue.message}`)
  }
  const record = parsed.data
  if (record.quoteBlobHash.toLowerCase() !== quoteBlobHash.toLowerCase())
    throw new QuoteVerificationError('collateral_invalid', `kept collateral is for blob ${record.quoteBlobHash}, not ${quoteBlobHash}`)
  const collateral = parseCollateral(record.collateral)
  const json = canonicalCollateralJson(collateral)
  if (Buffer.byteLength(json) > MAX_KEPT_COLLATERAL_BYTES)
    throw new QuoteVerificationError('collateral_invalid', `kept collateral is over ${MAX_KEPT_COLLATERAL_BYTES} bytes`)
  const hash = canonicalJsonHash(json)
  if (hash !== record.collateralHash.toLowerCase())
    throw new QuoteVerificationError('collateral_invalid', `kept collateral does not hash to its address ${record.collateralHash} (it hashes to ${hash})`)
  return { quoteBlobHash: record.quoteBlobHash.toLowerCase() as Hex, collateralHash: hash, judgedAt: record.judgedAt, collateral }
}

/** Where `audit` finds kept collateral: a node archive, or a peer's public route. */
export interface KeptCollateralSource {
  readonly name: string
  /** The record kept with the decision on this quote blob, unchecked; undefined when this source has none. */
  get(quoteBlobHash: Hex): Promise<unknown>
}

/**
 * Reasons that say the kept collateral itself is bad (forged, broken, for another platform, or not valid at the time it
 * claims): the audit refuses that collateral and judges the quote another way. Any other reason is the verdict of the
 * collateral on the quote.
 */
export const KEPT_COLLATERAL_FAULTS: ReadonlySet<string> = new Set([
  'collateral_invalid',
  'collateral_mismatch',
  'collateral_expired',
  'collateral_not_yet_valid',
  'bad_collateral_signature',
  'crl_invalid',
  'crl_expired',
  'crl_not_yet_valid',
  'untrusted_root',
  'bad_certificate_chain',
])

/**
 * Verifies `quote` with the kept collateral at the time it was judged. That time comes from the record, so it must lie
 * in `[notBefore, notAfter]`: no earlier than the quote's block, no later than the last block the decision could be
 * made in (the request's expiry, or the head). The collateral is then checked in full at that time, chained to
 * `trustedRootCaDer`.
 */
export async function verifyWithKeptCollateral(
  quote: Uint8Array,
  kept: KeptCollateral,
  window: { notBefore: number; notAfter: number; trustedRootCaDer: readonly Uint8Array[] },
): Promise<VerifiedQuote> {
  if (kept.judgedAt < window.notBefore || kept.judgedAt > window.notAfter)
    throw new QuoteVerificationError(
      'collateral_invalid',
      `kept collateral says the quote was judged at ${kept.judgedAt}, outside the time it could be (${window.notBefore} to ${window.notAfter})`,
    )
  const verifier = createDcapVerifier({ collateral: { get: async () => kept.collateral }, trustedRootCaDer: window.trustedRootCaDer })
  return verifier.verify(quote, { now: kept.judgedAt })
}

/**
 * A peer's kept collateral: the public `GET /collateral/:quoteBlobHash` of its host listener (no token). The body is
 * read only up to `MAX_KEPT_COLLATERAL_BYTES` plus room for the record's other fields, so a peer cannot make the reader
 * buffer more; 404 is "none kept here".
 */
export function peerKeptCollateralSource(hostUrl: string, options: { timeoutMs?: number } = {}): KeptCollateralSource {
  const base = hostUrl.replace(/\/$/, '')
  const limit = MAX_KEPT_COLLATERAL_BYTES + 1024
  return {
    name: `peer ${base}`,
    async get(quoteBlobHash: Hex): Promise<unknown> {
      const res = await fetch(`${base}/collateral/${quoteBlobHash}`, { signal: AbortSignal.timeout(options.timeoutMs ?? 10_000), redirect: 'error' })
      if (res.status === 404) {
        await res.body?.cancel().catch(() => undefined)
        return undefined
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined)
        throw new QuoteVerificationError('collateral_unavailable', `peer ${base}: HTTP ${res.status} for kept collateral`)
      }
      const body = await readBoundedBody(res, limit, {
        tooLarge: () => new QuoteVerificationError('collateral_invalid', `peer ${base}: kept collateral over ${limit} bytes`),
        broken: () => new QuoteVerificationError('collateral_unavailable', `peer ${base}: the answer broke off`),
      })
      try {
        return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'))
      } catch {
        throw new QuoteVerificationError('collateral_invalid', `peer ${base}: kept collateral is not JSON`)
      }
    },
  }
}
