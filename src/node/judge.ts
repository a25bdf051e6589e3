// A helper's decision on one onboarding request (docs/protocol.md#help), made on a fresh verified view
// (docs/protocol.md#verified-chain-view): every fact it rests on is the DCAP-verified quote, a slot proven at the view's
// block, or the node's own settings. The event it is handed is a hint, checked against the proven commitment.
// Its own module so that `npm run bench` can time exactly this decision in both chain-view modes.
import { bytesToHex, hexToBytes, type Address, type Hex } from 'viem'
import { BlobHashMismatchError } from '../chain/beacon.ts'
import type { Envelope } from '../chain/envelope.ts'
import { EnvelopeError } from '../chain/errors.ts'
import { requestCommitment, type OnboardRequest } from '../chain/registry.ts'
import type { ChainView } from '../chain/view/chainView.ts'
import type { FreshView } from '../chain/view/freshness.ts'
import { KeymanagerError } from '../errors.ts'
import { constantTimeEqual } from '../keys/bytes.ts'
import { registerReportData } from '../keys/reportData.ts'
import type { Collateral } from '../tee/collateral.ts'
import { checkPolicy } from '../tee/policy.ts'
import { QuoteVerificationError, type QuoteVerifier } from '../tee/types.ts'

/** A refusal: the request is bad (or the view could not be trusted), and the reason is recorded. Transient failures are thrown as other errors. */
export class Refusal extends KeymanagerError {
  override name = 'Refusal'
  constructor(
    readonly reason: string,
    message: string,
    /** Known once the quote verified: recorded so an auditor sees which build was refused. */
    readonly measurementId: Hex | null = null,
    /** Known once the envelope decoded: the settings the newcomer claims to run with. */
    readonly settingsDigest: Hex | null = null,
  ) {
    super('unprocessable', message)
  }
}

export type JudgeDeps = {
  chainId: number
  registryAddress: Address
  chainView: ChainView
  quoteVerifier: QuoteVerifier
  maxReferenceAge: bigint
  /**
   * The request's register envelope from its blob, checked against the versioned hash, and the blob itself when it
   * was fetched (the node archives it only if it answers the request, docs/protocol.md#limits).
   */
  fetchEnvelope(versionedHash: Hex, at: { blockNumber: bigint; blockHash: Hex }): Promise<{ envelope: Envelope; blob?: Uint8Array }>
  /**
   * Also judge a request answered under an older generation and not confirmed (a helper answers it again with every
   * generation, docs/protocol.md#onboarding-across-generations). Off for a guardian's release: a recovery's request is
   * pending.
   */
  reanswerStale?: boolean
  /** Judgements per requester and window that may fetch a blob and verify a quote (docs/protocol.md#limits); none: unlimited. */
  verifyLimit?: { count: number; windowSeconds: number }
  /** The host clock (unix seconds), for the rate limit's windows only: a resource cap, never a security decision. */
  hostNow?: () => number
}

/**
 * Refusals per key in fixed windows; remembers at most `maxKeys` keys (the oldest windows go first). `allowed` asks,
 * `spend` counts one refusal: a request that is served (or could not be judged) costs its requester nothing.
 */
export function createRefusalBudget(limit: { count: number; windowSeconds: number }, maxKeys = 10_000) {
  const windows = new Map<string, { start: number; used: number }>()
  function window(key: string, now: number) {
    const id = key.toLowerCase()
    let w = windows.get(id)
    if (!w || now - w.start >= limit.windowSeconds) {
      windows.delete(id)
      if (windows.size >= maxKeys) windows.delete(windows.keys().next().value!)
      w = { start: now, used: 0 }
      windows.set(id, w)
    }
    return w
  }
  return {
    allowed: (key: string, now: number): boolean => window(key, now).used < limit.count,
    spend(key: string, now: number): void {
      window(key, now).used++
    },
  }
}

export function createJudge(ctx: JudgeDeps) {
  const { fetchEnvelope } = ctx
  const budget = ctx.verifyLimit ? createRefusalBudget(ctx.verifyLimit) : undefined
  const hostNow = ctx.hostNow ?? (() => Math.floor(Date.now() / 1000))
  /**
   * Judges one request on a fresh verified view (docs/protocol.md#help, docs/protocol.md#verified-chain-view). The
   * event is a hint: the request's proven slot decides (status, expiry, and the commitment the event must match), the
   * policy, allow-list and FMSPC entries are proven, and "now" is the verified block's timestamp.
   */
  return Object.assign(judge, {
    /**
     * Whether `requester` has spent its refusal budget for now. Auto mode leaves such a requester's requests out of its
     * rounds (they are not judged, nor recorded) until the window passes: a flood from one key then costs a helper
     * nothing between windows. The requester here is the watcher's hint; skipping is always safe.
     */
    overBudget: (requester: string): boolean => budget !== undefined && !budget.allowed(requester, hostNow()),
  })

  async function judge(
    request: OnboardRequest,
    fresh: FreshView,
  ): Promise<{ pubkey64: Uint8Array; measurementId: Hex; settingsDigest: Hex; blob: Uint8Array | undefined; collateral: Collateral | undefined; judgedAt: number }> {
    const { header } = fresh
    const now = Number(header.timestamp)
    const atRequest = await ctx.chainView.read(header, { requests: [request.requestId], policy: true, master: true })
    const stored = atRequest.request(request.requestId)
    if (stored.status === 'none') throw new Refusal('unknown_request', `request ${request.requestId} is not in the verified chain (block ${header.blockNumber})`)
    // Answered under an older generation and not confirmed: the contract takes a new answer (the newcomer was no
    // recipient of the rotation that came after its answer, so it needs every generation again).
    const stale = ctx.reanswerStale === true && stored.status === 'fulfilled' && stored.generation < atRequest.master().generation
    if (stored.status !== 'pending' && !stale) throw new Refusal('already_fulfilled', `request ${request.requestId} is ${stored.status}`)
    // fulfillOnboard reverts once block.number > expiresAt; the next block is the earliest the answer can land in.
    if (stored.expiresAt <= header.blockNumber) throw new Refusal('expired', `request ${request.requestId} expired at block ${stored.expiresAt}`)
    if (stored.commitment !== requestCommitment(request))
      throw new Refusal('event_mismatch', 'the request event does not match the commitment stored on chain')
    // The block the request was made in, from proven slots (expiresAt = that block + requestTtl), not from the event.
    // If the owner changed requestTtl since, this is off by the change; the contract's own bound (256 blocks) holds.
    const requestBlock = stored.expiresAt - atRequest.requestTtl()
    if (requestBlock - request.refBlockNumber > ctx.maxReferenceAge)
      throw new Refusal('stale_reference', `reference block ${request.refBlockNumber} is older than ${ctx.maxReferenceAge} blocks`)
    // Fetching the blob and verifying the quote are what a requester can make a helper spend on: past its budget of
    // refusals in the window the request waits (`rate_limited`, judged again later), before anything is fetched. The
    // requester is the key the proven request stores (the address of the key it asks M for, docs/protocol.md#limits).
    const requester = stored.key
    if (budget && !budget.allowed(requester, hostNow()))
      throw new Refusal('rate_limited', `requester ${requester} had ${ctx.verifyLimit!.count} requests refused in the last ${ctx.verifyLimit!.windowSeconds} s`)
    try {
      return await judgeQuote(request, fresh, atRequest)
    } catch (error) {
      if (budget && error instanceof Refusal) budget.spend(requester, hostNow())
      throw error
    }
  }

  /** The part of a judgement past the proven request: the blob, the quote, the policy (docs/protocol.md#help). */
  async function judgeQuote(request: OnboardRequest, fresh: FreshView, atRequest: Awaited<ReturnType<ChainView['read']>>) {
    const { header } = fresh
    const now = Number(header.timestamp)
    let envelope: Envelope
    let blob: Uint8Array | undefined
    try {
      ;({ envelope, blob } = await fetchEnvelope(request.quoteBlobHash, request))
    } catch (error) {
      if (error instanceof BlobHashMismatchError) throw new Refusal('blob_hash_mismatch', error.message)
      if (error instanceof EnvelopeError) throw new Refusal('bad_envelope', error.message)
      throw error
    }
    if (envelope.kind !== 'register') throw new Refusal('bad_envelope', `expected a register envelope, got ${envelope.kind}`)
    const settingsDigest = bytesToHex(envelope.settingsDigest)
    const refuse = (reason: string, message: string, measurementId: Hex | null = null) => new Refusal(reason, message, measurementId, settingsDigest)
    if (!constantTimeEqual(envelope.pubkey64, hexToBytes(request.pubkey64)))
      throw refuse('pubkey_mismatch', 'the blob carries another public key than the request')
    if (envelope.refBlockNumber !== request.refBlockNumber || !constantTimeEqual(envelope.refBlockHash, hexToBytes(request.refBlockHash)))
      throw refuse('stale_reference', 'the quote was made for another reference block than the one recorded on chain')
    let verified
    try {
      verified = await ctx.quoteVerifier.verify(envelope.quote, { now })
    } catch (error) {
      if (error instanceof QuoteVerificationError) throw refuse(error.reason, error.message)
      throw error
    }
    if (verified.teeType !== envelope.teeType) throw refuse('bad_envelope', 'envelope TEE type does not match the quote')
    // The newcomer's settingsDigest comes from its envelope: the quote binds it, and the allowed measurement vouches
    // for it (the measured settings file is part of the image, docs/protocol.md#measured-settings).
    const expected = registerReportData({
      chainId: ctx.chainId,
      registry: ctx.registryAddress,
      pubkey64: envelope.pubkey64,
      refBlockNumber: request.refBlockNumber,
      refBlockHash: hexToBytes(request.refBlockHash),
      settingsDigest: envelope.settingsDigest,
    })
    if (!constantTimeEqual(verified.reportData, expected))
      throw refuse('report_data_mismatch', 'the quote does not bind this request (key, chain, registry, reference block or settings digest)', verified.measurementId)
    const policy = atRequest.tcbPolicy()
    const atQuote = await ctx.chainView.read(header, {
      policy: true,
      measurements: [verified.measurementId],
      fmspcs: policy.fmspcAllowlistOn ? [verified.fmspc] : [],
    })
    const decision = await checkPolicy(
      verified,
      {
        acceptedStatuses: policy.acceptedStatuses,
        maxCollateralAge: policy.maxCollateralAge,
        fmspcAllowlistOn: policy.fmspcAllowlistOn,
        minTcbEvaluationDataNumber: policy.minTcbEvaluationDataNumber,
        isFmspcAllowed: async (fmspc: Hex) => atQuote.isFmspcAllowed(fmspc),
        isMeasurementAllowed: async (id: Hex) => atQuote.isMeasurementAllowed(id),
      },
      now,
    )
    if (!decision.ok) {
      // A measurement the owner added whose delay has not run out at the verified block time is a wait, not a "no".
      if (decision.reason === 'measurement_not_allowed' && atQuote.measurementActivatesAt(verified.measurementId) > 0n)
        throw refuse(
          'measurement_not_yet_active',
          `measurement ${verified.measurementId} is added but active only from ${atQuote.measurementActivatesAt(verified.measurementId)} (verified block time ${now})`,
          verified.measurementId,
        )
      throw refuse(decision.reason, decision.message, verified.measurementId)
    }
    // The collateral and the time this quote was judged with, kept with the decision if the node acts on it
    // (docs/protocol.md#node-state), for a later audit.
    return { pubkey64: envelope.pubkey64, measurementId: verified.measurementId, settingsDigest, blob, collateral: verified.collateral, judgedAt: now }
  }
}
