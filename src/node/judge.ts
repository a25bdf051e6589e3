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
  /** The request's register envelope from its blob, checked against the versioned hash. */
  fetchEnvelope(versionedHash: Hex, at: { blockNumber: bigint; blockHash: Hex }): Promise<Envelope>
}

export function createJudge(ctx: JudgeDeps) {
  const { fetchEnvelope } = ctx
  /**
   * Judges one request on a fresh verified view (docs/protocol.md#help, docs/protocol.md#verified-chain-view). The
   * event is a hint: the request's proven slot decides (status, expiry, and the commitment the event must match), the
   * policy, allow-list and FMSPC entries are proven, and "now" is the verified block's timestamp.
   */
  return async function judge(request: OnboardRequest, fresh: FreshView): Promise<{ pubkey64: Uint8Array; measurementId: Hex; settingsDigest: Hex }> {
    const { header } = fresh
    const now = Number(header.timestamp)
    const atRequest = await ctx.chainView.read(header, { requests: [request.requestId], policy: true })
    const stored = atRequest.request(request.requestId)
    if (stored.status === 'none') throw new Refusal('unknown_request', `request ${request.requestId} is not in the verified chain (block ${header.blockNumber})`)
    if (stored.status !== 'pending') throw new Refusal('already_fulfilled', `request ${request.requestId} is ${stored.status}`)
    // fulfillOnboard reverts once block.number > expiresAt; the next block is the earliest the answer can land in.
    if (stored.expiresAt <= header.blockNumber) throw new Refusal('expired', `request ${request.requestId} expired at block ${stored.expiresAt}`)
    if (stored.commitment !== requestCommitment(request))
      throw new Refusal('event_mismatch', 'the request event does not match the commitment stored on chain')
    // The block the request was made in, from proven slots (expiresAt = that block + requestTtl), not from the event.
    // If the owner changed requestTtl since, this is off by the change; the contract's own bound (256 blocks) holds.
    const requestBlock = stored.expiresAt - atRequest.requestTtl()
    if (requestBlock - request.refBlockNumber > ctx.maxReferenceAge)
      throw new Refusal('stale_reference', `reference block ${request.refBlockNumber} is older than ${ctx.maxReferenceAge} blocks`)
    let envelope: Envelope
    try {
      envelope = await fetchEnvelope(request.quoteBlobHash, request)
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
    if (!decision.ok) throw refuse(decision.reason, decision.message, verified.measurementId)
    return { pubkey64: envelope.pubkey64, measurementId: verified.measurementId, settingsDigest }
  }
}
