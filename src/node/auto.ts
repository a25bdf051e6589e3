// A node that runs itself (docs/protocol.md#flows without a host): a ready node answers pending onboarding
// requests the watcher has seen; a node with no secret registers, waits for its `Onboarded`, completes and
// confirms, and registers again when its request expires or a reorg replaced the block its quote references.
//
// Helping, per round: gather the watcher's pending requests that this node has not refused or given up on, wait,
// re-check them through the verified chain view right before acting (one proof for all; requests the view proves
// fulfilled or expired are dropped cheaply; a request the finalized view does not show yet goes on, the decision
// after the freshness mark settles it), then answer every request left in ONE blob and ONE `fulfillOnboard`
// (node.help batches). Refusals are recorded by node.help and never retried, except refusals of the chain view
// itself (`stale_chain_view`, a lying RPC: src/chain/view/errors.ts), which say nothing about the request; those and
// other failures are given up after `maxAttempts` rounds. Temporary refusals (`TEMPORARY_REFUSALS`: collateral the
// PCCS could not give, a measurement added but not active yet, a requester over its budget) are judged again after a
// backoff that doubles each time (`retryBaseMs` up to `retryMaxMs`) until the request expires. A round takes its
// requests round-robin by requester (oldest first within each), so a flood from one requester never keeps another's
// request out of the next batch, and leaves out requesters that spent their refusal budget until their window passes
// (docs/protocol.md#limits). The watcher's events are hints: it reads the RPC's logs.
//
// Who answers (docs/protocol.md#help-schedule, src/node/helperSchedule.ts): a batch is named by its oldest pending
// request; the members (requests the verified view proves confirmed, with their node keys) take turns on it in an
// order every helper computes alike, the designated one first. A helper waits, from when it first saw the batch, a
// gathering window (requests sent together share one answer) plus one turn (`slotMs`) per rank ahead of it, then
// re-checks: if the batch was answered, or the oldest pending request changed (a new batch, with its own order), it
// does nothing. A dead designated helper costs one turn; a ready node that is not a proven member goes last. The
// helper that the member set proven last designates sends its freshness mark when it first sees the batch, so the
// mark's finality passes while the batch gathers; the proof of the member set itself is read after the gathering
// window, by every helper. Measured
// before (ranks from keccak(batch, gas address) modulo twice the helpers, which collide): 50 newcomers drew 52
// fulfillOnboard transactions, 11 reverted.
import type { Logger } from 'pino'
import type { RegistryClient } from '../chain/registry.ts'
import type { ChainView } from '../chain/view/chainView.ts'
import { isChainViewReason } from '../chain/view/errors.ts'
import type { RequestRecord } from '../store/requests.ts'
import type { WatchedRequest } from '../store/cursor.ts'
import type { CursorStore } from '../store/cursor.ts'
import type { RegistrationStore } from '../store/registrations.ts'
import type { RequestStore } from '../store/requests.ts'
import { KeymanagerError } from '../errors.ts'
import { escrowBatch, helperRank, turnDelayMs, type ScheduleMember } from './helperSchedule.ts'
import { TEMPORARILY_UNAVAILABLE, type KeymanagerNode } from './node.ts'

// Rotation, per step (docs/protocol.md#node-flows-what-the-sidecar-does), when `rotate` is on: a ready node without a node
// key becomes a member (the bootstrap node); a member catches up with committed generations; with a proposal pending it
// verifies and acknowledges it once, and once the acknowledgements reach the quorum one member commits (the one that
// just acknowledged, else each after its rank's slot); with a rotation open and nothing pending, members propose in
// the order of their member ids, each `proposerSlotMs` after the one before (a dead first member costs one slot). A
// member that refused the pending proposal proposes a replacement after `supersedeAfterMs`.

// Escrow, per step when `escrow` is on (docs/protocol.md#guardians): every `escrowCheckMs` a ready node asks its
// verified view whether a generation it holds is neither revoked nor purged and not escrowed to the active guardian
// set (after a rotation commits, after a set change activates). Such an escrow is scheduled as a help batch is, named
// by (set, oldest such generation) (src/node/helperSchedule.ts `escrowBatch`): the designated member publishes after
// the gathering window, each other member one turn (`slotMs`) per rank later, and only if it is still needed. The
// publish itself decides again on a view that proves its own freshness mark, skips what the RPC says was escrowed
// meanwhile, and the contract keeps one escrow per generation and set (KeyManagerAlreadyEscrowed), so two nodes that
// act at once leave one escrow, and the loser's revert is reported as `escrowed_meanwhile`.

export type AutoOptions = {
  node: KeymanagerNode
  registry: RegistryClient
  chainView: ChainView
  cursor: CursorStore
  stores: { requests: RequestStore; registrations: RegistrationStore }
  logger: Logger
  /** Register by itself when the node has no secret. */
  register: boolean
  /** Answer other nodes' requests once ready. */
  help: boolean
  pollIntervalMs?: number
  /** Random wait before a help round acts, [min, max] ms. */
  jitterMs?: [number, number]
  /** Most requests answered in one blob. */
  maxBatch?: number
  /** Time given to each rank before the next may act: longer than a helper's whole round (mark, view, judge, mined answer). */
  slotMs?: number
  maxAttempts?: number
  random?: () => number
  /** Take part in rotations (propose, acknowledge, commit) and become a member when ready without a node key. */
  rotate?: boolean
  /** Time each member rank waits before proposing (or committing) after it first saw the need (ms). */
  proposerSlotMs?: number
  /** A member that refused the pending proposal proposes again after this long (ms). */
  supersedeAfterMs?: number
  /** Monotonic clock (ms). */
  monotonicNow?: () => number
  /** Publish escrows by itself (see above); default on. */
  escrow?: boolean
  /** How often to check whether a generation waits for its escrow (ms). */
  escrowCheckMs?: number
  /** First wait before a temporarily refused request is judged again; doubles each time up to `retryMaxMs` (ms). */
  retryBaseMs?: number
  retryMaxMs?: number
}

/** Refusals that say "not now" rather than "no": the request is judged again after a backoff. */
export const TEMPORARY_REFUSALS: ReadonlySet<string> = new Set(['collateral_unavailable', 'measurement_not_yet_active', 'rate_limited'])

/** Round-robin over requesters, each one's requests in the given order (oldest first), at most `max`. */
export function interleaveByRequester<T extends { requester: string }>(requests: readonly T[], max: number): T[] {
  const queues = new Map<string, T[]>()
  for (const r of requests) {
    const key = r.requester.toLowerCase()
    const queue = queues.get(key)
    if (queue) queue.push(r)
    else queues.set(key, [r])
  }
  const out: T[] = []
  const lists = [...queues.values()]
  for (let i = 0; out.length < max; i++) {
    let any = false
    for (const list of lists) {
      if (i < list.length) {
        any = true
        out.push(list[i]!)
        if (out.length >= max) break
      }
    }
    if (!any) break
  }
  return out
}

export function createAutoRunner(options: AutoOptions) {
  const { node, registry, chainView, cursor, stores, logger } = options
  const pollMs = options.pollIntervalMs ?? 500
  const [jitterMin, jitterMax] = options.jitterMs ?? [500, 2500]
  const maxBatch = options.maxBatch ?? 50
  const maxAttempts = options.maxAttempts ?? 5
  const slotMs = options.slotMs ?? 1_200_000
  const random = options.random ?? Math.random
  const proposerSlotMs = options.proposerSlotMs ?? 10_000
  const supersedeAfterMs = options.supersedeAfterMs ?? 120_000
  const clock = options.monotonicNow ?? (() => performance.now())
  /** When this node first saw each rotation need (key: what it saw), for the rank waits. */
  const firstSeen = new Map<string, number>()
  let proposalPending = false
  const since = (key: string) => {
    if (!firstSeen.has(key)) {
      if (firstSeen.size > 100) firstSeen.clear()
      firstSeen.set(key, clock())
    }
    return clock() - firstSeen.get(key)!
  }
  const retryBaseMs = options.retryBaseMs ?? 30_000
  const retryMaxMs = options.retryMaxMs ?? 30 * 60_000
  /** Temporarily refused requests: how many times, and when (monotonic ms) they may be judged again. */
  const retries = new Map<bigint, { times: number; at: number }>()
  const attempts = new Map<bigint, number>()
  const skipped = new Set<bigint>()
  let stopped = false
  let loop: Promise<void> | undefined
  let lastError: string | undefined
  let rounds = 0

  const wakers = { idle: undefined as (() => void) | undefined, jitter: undefined as (() => void) | undefined }

  /** `idle` sleeps end early on poke() or stop(); `jitter` sleeps only on stop(). */
  function sleep(ms: number, kind: keyof typeof wakers) {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wakers[kind] = undefined
        resolve()
      }
      wakers[kind] = done
    })
  }

  /**
   * Not judged yet, refused only because the chain view could not be trusted at the time, or refused for now
   * (a temporary refusal) with its backoff run out.
   */
  function open(requestId: bigint, record: RequestRecord | undefined): boolean {
    if (record === undefined) return true
    if (record.decision !== 'refused') return false
    if (isChainViewReason(record.reason)) return true
    if (!TEMPORARY_REFUSALS.has(record.reason ?? '')) return false
    const retry = retries.get(requestId)
    return retry === undefined || clock() >= retry.at
  }

  /**
   * Requests answered under an older generation and not confirmed (docs/protocol.md#onboarding-across-generations): a
   * rotation committed between the answer and the newcomer's confirmation, so the newcomer was no recipient of the new
   * generation and the contract refuses its confirmation. The contract takes a new answer for them; they join the help
   * rounds like pending requests (the schedule, the judgement and the answer are the same). Looked for each time this
   * node sees a newer generation become current, among the newest answered requests its watcher saw, proven.
   */
  const staleAnswers = new Map<bigint, WatchedRequest>()
  let staleCheckedFor = 0

  async function findStaleAnswers(): Promise<void> {
    const current = node.generation
    if (current <= 1 || current <= staleCheckedFor) return
    const answered = cursor
      .requests()
      .filter((r) => r.onboardedBlock !== null && r.requestId !== node.memberId)
      .sort((a, b) => (a.requestId < b.requestId ? 1 : a.requestId > b.requestId ? -1 : 0))
      .slice(0, MAX_MEMBER_HINTS)
    if (answered.length > 0) {
      const proven = await chainView.latest({ requests: answered.map((r) => r.requestId) })
      for (const r of answered) {
        const onChain = proven.request(r.requestId)
        if (onChain.status === 'fulfilled' && onChain.generation < BigInt(current) && onChain.expiresAt > proven.block.blockNumber) {
          staleAnswers.set(r.requestId, r)
          logger.info({ requestId: r.requestId.toString(), answeredUnder: onChain.generation.toString(), current }, 'request answered under an older generation: it is answered again')
        }
      }
    }
    staleCheckedFor = current
  }

  function candidates() {
    const open_ = cursor
      .pendingRequests()
      .filter((r) => !skipped.has(r.requestId) && !node.overBudget(r.requester) && open(r.requestId, stores.requests.get(r.requestId)))
    // A stale answer is judged again even if this node made it (its record says fulfilled); a refusal still stands.
    const stale = [...staleAnswers.values()].filter((r) => !skipped.has(r.requestId) && stores.requests.get(r.requestId)?.decision !== 'refused')
    return interleaveByRequester([...open_, ...stale.filter((r) => !open_.some((p) => p.requestId === r.requestId))], maxBatch)
  }

  /** Schedules the next judgement of each temporarily refused request in `results`; forgets the others. */
  function scheduleRetries(results: Awaited<ReturnType<KeymanagerNode['help']>>) {
    for (const result of results) {
      if (result.decision !== 'refused' || !TEMPORARY_REFUSALS.has(result.reason)) {
        retries.delete(result.requestId)
        continue
      }
      const times = (retries.get(result.requestId)?.times ?? 0) + 1
      const wait = Math.min(retryMaxMs, retryBaseMs * 2 ** (times - 1))
      retries.set(result.requestId, { times, at: clock() + wait })
      logger.info({ requestId: result.requestId.toString(), reason: result.reason, retryInMs: wait }, 'temporary refusal: judged again later')
    }
  }

  function failedRound(requestIds: bigint[]) {
    for (const requestId of requestIds) {
      const n = (attempts.get(requestId) ?? 0) + 1
      attempts.set(requestId, n)
      if (n >= maxAttempts) {
        skipped.add(requestId)
        logger.warn({ requestId: requestId.toString() }, `giving up on request after ${n} failed rounds`)
      }
    }
  }

  /** When this node first saw each batch (its oldest pending request) and the gathering window it drew for it. */
  const batchSeen = new Map<bigint, { at: number; gatherMs: number; rank?: number }>()
  const oldest = (requests: { requestId: bigint }[]) => requests.reduce((a, b) => (b.requestId < a.requestId ? b : a)).requestId
  /** Most answered requests proven per batch as possible members (the newest; every helper takes the same ones). */
  const MAX_MEMBER_HINTS = 1024

  /** This node's rank on `batch` (0 acts first), from the members the verified view proves confirmed. */
  async function scheduleRank(batch: bigint): Promise<number> {
    const self = node.memberId
    // Hints: requests the watcher saw answered (the newest MAX_MEMBER_HINTS, so one proof stays bounded) and our own.
    const hinted = cursor
      .requests()
      .filter((r) => r.onboardedBlock !== null)
      .map((r) => r.requestId)
      .sort((a, b) => (a < b ? 1 : a > b ? -1 : 0))
      .slice(0, MAX_MEMBER_HINTS)
    const ids = [...new Set([...hinted, ...(self === null ? [] : [self])])]
    if (ids.length === 0) return 0
    const proven = await chainView.latest({ requests: ids })
    const members: ScheduleMember[] = ids.flatMap((id) => {
      const r = proven.request(id)
      return r.status === 'confirmed' ? [{ memberId: id, key: r.key }] : []
    })
    lastMembers = members
    return helperRank(batch, members, self)
  }

  /** The member set the last `scheduleRank` proved: it predicts, without a read, who is designated on a new batch. */
  let lastMembers: ScheduleMember[] | undefined

  const escrowOn = options.escrow ?? true
  const escrowCheckMs = options.escrowCheckMs ?? 60_000
  /** When (monotonic ms) this node next asks whether a generation waits for its escrow. */
  let nextEscrowCheck = 0
  /** The escrow batch this node waits on, when it first saw it, its gathering window and its rank. */
  let escrowWait: { batch: bigint; at: number; gatherMs: number; rank: number } | undefined
  let escrows = 0

  /**
   * One escrow action at most (see the header); returns the generations it published. A failure is logged and tried
   * again at the next check: it never holds up helping or rotating (a host that lies about the guardians' keys stalls
   * only the escrow, with its reason in the log).
   */
  async function escrowStep(): Promise<number[]> {
    if (clock() < nextEscrowCheck) return []
    nextEscrowCheck = clock() + escrowCheckMs
    try {
      const need = await node.escrowNeeded()
      if (!need || need.generations.length === 0) {
        escrowWait = undefined
        return []
      }
      const batch = escrowBatch(need.guardianSet, BigInt(need.generations[0]!))
      if (escrowWait?.batch !== batch) escrowWait = { batch, at: clock(), gatherMs: jitterMin + random() * (jitterMax - jitterMin), rank: await scheduleRank(batch) }
      const turnAt = escrowWait.at + turnDelayMs(escrowWait.rank, { gatherMs: escrowWait.gatherMs, turnMs: slotMs })
      if (clock() < turnAt) {
        // Look again when this node's turn comes, not a whole check interval later.
        nextEscrowCheck = Math.min(nextEscrowCheck, turnAt)
        return []
      }
      const rank = escrowWait.rank
      escrowWait = undefined
      const result = await node.publishEscrow()
      const published = result.generations.filter((g) => g.status === 'published').map((g) => g.generation)
      const escrowed = result.generations.filter((g) => g.status === 'escrowed').map((g) => g.generation)
      logger.info({ guardianSet: result.guardianSet, rank, published, escrowed }, 'auto-escrow round')
      escrows += published.length
      return published
    } catch (error) {
      logger.warn({ error: (error as Error).message.split('\n')[0] }, 'auto-escrow: not published this time')
      return []
    }
  }

  /** One help round; returns how many requests were answered. */
  async function helpRound(): Promise<number> {
    // The contract refuses answers while a proposal is pending; requests wait (they are not given up on).
    if (proposalPending) return 0
    const first = candidates()
    if (first.length === 0) return 0
    const batch = oldest(first)
    if (!batchSeen.has(batch)) {
      if (batchSeen.size > 1000) batchSeen.clear()
      batchSeen.set(batch, { at: clock(), gatherMs: jitterMin + random() * (jitterMax - jitterMin) })
    }
    const seen = batchSeen.get(batch)!
    if (seen.rank === undefined) {
      // The helper the last proven member set designates sends its freshness mark now, so that the mark's block and
      // its finality pass while the batch gathers (src/chain/view/freshness.ts `markAhead`). A wrong prediction (the
      // set changed) costs one unused mark, or none made ahead. A failure only means the mark is made later.
      const designated = lastMembers !== undefined && node.memberId !== null && helperRank(batch, lastMembers, node.memberId) === 0
      logger.debug({ batch: batch.toString(), requests: first.length, designated }, 'auto-help: batch seen')
      if (designated) {
        await node.markAhead(batch).catch((error: unknown) => logger.warn({ error: (error as Error).message.split('\n')[0] }, 'auto-help: freshness mark not sent ahead'))
      }
      // Every rank waits out the gathering window first, so the proof of the member set is read after it: on the devnet
      // a read of the view makes the beacon simulator mine the blocks that finalize the newest one, and read at once
      // by every helper they would come before the designated helper's mark.
      const gathering = seen.at + seen.gatherMs - clock()
      if (gathering > 0) await sleep(gathering, 'jitter')
      if (stopped) return 0
      seen.rank = await scheduleRank(batch)
    }
    // The wait for this node's turn, in steps of one poll with a look at the watcher's store after each: a batch answered
    // or replaced before then ends it, so that a helper of a later rank does not sleep through the next batch (it may be
    // the designated one there). The countdown also ends it under a clock that stands still (tests).
    const turnAt = seen.at + turnDelayMs(seen.rank, { gatherMs: seen.gatherMs, turnMs: slotMs })
    let remaining = turnAt - clock()
    while (remaining > 0) {
      const slice = Math.min(remaining, pollMs)
      await sleep(slice, 'jitter')
      if (stopped) return 0
      const now = candidates()
      if (now.length === 0 || oldest(now) !== batch) return 0
      remaining = Math.min(remaining - slice, turnAt - clock())
    }
    if (stopped) return 0
    const waiting = candidates()
    // Answered by the helper whose turn it was, or another batch now (its own order and turns): nothing to do yet.
    if (waiting.length === 0 || oldest(waiting) !== batch) return 0
    // The RPC reports a request as soon as it is mined; the verified view has it once its block is final (two devnet
    // blocks, about 13 minutes on Ethereum). Until the view reaches the newest request's block the batch waits; a
    // request still unknown to a view past its block never existed there (a lying RPC, a reorg) and is left.
    const header = await chainView.head()
    if (waiting.some((r) => r.blockNumber > header.blockNumber)) return 0
    const proven = await chainView.read(header, { requests: waiting.map((r) => r.requestId) })
    const ready = []
    for (const request of waiting) {
      const onChain = proven.request(request.requestId)
      if (onChain.status === 'none') {
        skipped.add(request.requestId)
        continue
      }
      // Answered (under the current generation; the watcher will see `Onboarded`), or confirmed.
      const staleAnswer = onChain.status === 'fulfilled' && onChain.generation < BigInt(node.generation)
      if (onChain.status === 'confirmed' || (onChain.status === 'fulfilled' && !staleAnswer)) {
        staleAnswers.delete(request.requestId)
        continue
      }
      if (onChain.expiresAt <= proven.block.blockNumber) {
        skipped.add(request.requestId)
        staleAnswers.delete(request.requestId)
        continue
      }
      ready.push(request)
    }
    if (ready.length === 0) return 0
    rounds++
    try {
      const results = await node.help(ready, { batch })
      const fulfilled = results.filter((r) => r.decision === 'fulfilled').length
      scheduleRetries(results)
      failedRound(
        results.flatMap((r) => (r.decision === 'refused' && (isChainViewReason(r.reason) || r.reason === TEMPORARILY_UNAVAILABLE) ? [r.requestId] : [])),
      )
      logger.info({ batch: batch.toString(), rank: seen.rank, requests: ready.map((r) => r.requestId.toString()), fulfilled }, 'auto-help round')
      return fulfilled
    } catch (error) {
      // Transient for the node, not the request's fault: a proposal became pending, or this node lacks a generation.
      if (error instanceof KeymanagerError && /^(proposal_pending|missing_generation)/.test(error.message)) throw error
      failedRound(ready.map((r) => r.requestId))
      throw error
    }
  }

  /** Moves this node's own registration one step forward. */
  async function registerStep(): Promise<void> {
    if (node.state === 'uninitialized') {
      if ((await registry.generation()) === 0n) return
      const reg = await node.register()
      logger.info({ enckey: reg.enckey, requestId: reg.requestId }, 'auto-register: onboarding requested')
      return
    }
    if (node.state !== 'registering') return
    const registration = stores.registrations.latestOpen()
    if (!registration) return
    const ours = (address: string) => address.toLowerCase() === registration.address.toLowerCase()
    let requestId = registration.requestId
    // A reorg can give the replayed request another id; the watcher's record of an id says whose request it is.
    const recorded = requestId === null ? undefined : cursor.request(requestId)
    if (requestId === null || (recorded && !ours(recorded.requester))) {
      // The watcher's store, not a log scan (docs/protocol.md#limits): the request shows up once the watcher has seen it.
      const request = cursor.latestRequestBy(registration.address)
      if (!request) {
        // Not seen yet. Its tx may still be open (sent, or replayed after a reorg): wait. Reverted or dropped: register again.
        if (node.dropLostRegistration()) await node.register()
        return
      }
      requestId = request.requestId
      stores.registrations.markRequested(registration.address, requestId, request.transactionHash, Math.floor(Date.now() / 1000))
    }
    const proven = await chainView.latest({ requests: [requestId] })
    const onChain = proven.request(requestId)
    if (onChain.status === 'fulfilled' || onChain.status === 'confirmed') {
      const done = await node.complete(registration.address)
      logger.info({ requestId: done.requestId, xPub: done.xPub }, 'auto-register: onboarded and confirmed')
      return
    }
    if (onChain.status !== 'pending') return
    if (onChain.expiresAt <= proven.block.blockNumber) {
      logger.warn({ requestId: requestId.toString() }, 'auto-register: request expired; registering again')
      stores.registrations.setStatus(registration.address, 'expired', Math.floor(Date.now() / 1000))
      await node.register()
      return
    }
    // The contract records blockhash(refBlockNumber) when the request is mined. If a reorg replaced the reference
    // block, the replayed request records the new block's hash, which the quote does not bind: every helper refuses
    // it (stale_reference), and waiting for it to expire would take requestTtl blocks. Register again now.
    const event = cursor.request(requestId)
    if (event && ours(event.requester) && event.refBlockHash.toLowerCase() !== registration.refBlockHash.toLowerCase()) {
      logger.warn(
        { requestId: requestId.toString(), refBlockNumber: registration.refBlockNumber.toString() },
        'auto-register: the reference block of the request was reorged away; registering again',
      )
      stores.registrations.setStatus(registration.address, 'expired', Math.floor(Date.now() / 1000))
      await node.register()
    }
  }

  /** One rotation action at most (see the header). */
  async function rotateStep(): Promise<void> {
    if (node.memberId === null) {
      const joined = await node.joinAsMember()
      logger.info(joined, 'auto-rotate: membership')
      return
    }
    await node.rotation.catchUp()
    const status = await node.rotation.status()
    proposalPending = status.proposal !== null
    if (status.memberStatus !== 'confirmed') return
    const rank = status.memberRank
    if (status.proposal) {
      const p = status.proposal
      if (!p.acknowledgedByThisNode && !p.refusedByThisNode) {
        await node.rotation.acknowledge().catch((error: unknown) => {
          if (!(error instanceof KeymanagerError && error.code === 'conflict')) throw error
          logger.warn({ proposal: p.id, error: error.message }, 'auto-rotate: proposal not acknowledged')
        })
        const after = await node.rotation.status()
        if (after.proposal && after.proposal.acks >= after.proposal.quorum) await node.rotation.commit()
        return
      }
      if (p.acks >= p.quorum) {
        if (since(`commit:${p.id}`) >= rank * proposerSlotMs) await node.rotation.commit()
        return
      }
      if (p.refusedByThisNode && since(`supersede:${p.id}`) >= supersedeAfterMs + rank * proposerSlotMs) {
        logger.warn({ proposal: p.id, reason: p.refusedByThisNode.reason }, 'auto-rotate: proposing a replacement for a proposal this node refused')
        await node.rotation.propose({ supersede: true })
      }
      return
    }
    if (status.rotation.open && since(`propose:${status.rotation.startedAt}`) >= rank * proposerSlotMs) {
      await node.rotation.propose()
      proposalPending = true
    }
  }

  /** Wall-clock time before which a failed re-confirmation is not tried again (liveness only). */
  let reconfirmAfter = 0

  async function step(): Promise<void> {
    if (options.register && (node.state === 'uninitialized' || node.state === 'registering')) await registerStep()
    // A node that stopped after sealing its secret and before its confirmation was mined is ready with its registration
    // still open: it confirms (at most once: the same call stored earlier is waited for) and keeps its node key.
    if (options.register && !options.rotate && node.state === 'ready' && node.memberId === null && stores.registrations.latestOpen()) {
      const joined = await node.joinAsMember()
      logger.info(joined, 'auto-register: confirmation finished after a restart')
    }
    // A member whose confirmation a reorg took and whose replay reverted confirms again (the check is local first). A
    // failure (the call would still revert) is logged and tried again a minute later; it never holds up help.
    if (node.state === 'ready' && node.memberId !== null && Date.now() >= reconfirmAfter)
      await node.confirmAgainIfLost().then(
        (sent) => sent && logger.info({ memberId: node.memberId }, 'auto: confirmation sent again'),
        (error: unknown) => {
          reconfirmAfter = Date.now() + 60_000
          logger.warn({ memberId: node.memberId, error: (error as Error).message.split('\n')[0] }, 'auto: confirming again failed; trying again in a minute')
        },
      )
    if (options.rotate && node.state === 'ready') await rotateStep()
    if (escrowOn && node.state === 'ready') await escrowStep()
    if (options.help && node.state === 'ready') {
      await findStaleAnswers()
      await helpRound()
    }
  }

  async function run() {
    let failures = 0
    while (!stopped) {
      try {
        await step()
        if (failures > 0) logger.info({ retries: failures }, 'auto: working again')
        failures = 0
        lastError = undefined
      } catch (error) {
        if (stopped) break
        failures++
        const message = (error as Error).message.split('\n')[0]
        if (message !== lastError) logger.warn({ error: message }, 'auto: step failed; retrying')
        lastError = message
      }
      if (stopped) break
      await sleep(failures > 0 ? Math.min(pollMs * 2 ** failures, 10_000) : pollMs, 'idle')
    }
  }

  return {
    step,
    helpRound,
    escrowStep,
    start() {
      loop ??= run()
    },
    /** Stops after the current step; a tx already stored in the outbox is finished by the next start. */
    async stop() {
      stopped = true
      wakers.idle?.()
      wakers.jitter?.()
      await loop
    },
    /** Wakes the loop early (new events). */
    poke() {
      wakers.idle?.()
    },
    get rounds() {
      return rounds
    },
    /** Generations this node escrowed by itself. */
    get escrows() {
      return escrows
    },
  }
}
export type AutoRunner = ReturnType<typeof createAutoRunner>
