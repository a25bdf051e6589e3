// Freshness: the rule that keeps a host that withholds chain updates from making a node act on stale state
// (docs/protocol.md#verified-chain-view, "Freshness").
//
// The rule. Before a node encrypts `M` (help, rotate, guardian release) it generates a random 32-byte mark for that
// decision, gets `markFresh(mark)` onto the chain (sent through its outbox, or handed to the host to send), and
// waits until its verified view proves `freshnessMarkedAt(mark) != 0`. It then decides on that view and nothing
// older: every slot it reads is proven at a block at or after the one holding the mark. If the view does not get
// there within `timeoutMs`, the decision is refused with `stale_chain_view`.
//
// Why this rule. The light client proves that a header was finalized, never that it is recent: a host that stops
// passing on updates keeps the node on an old, genuine header, for instance one from before the owner removed a
// measurement. Any bound stated in time would rest on a clock, and the clock is the host's. A bound stated in
// blocks ("within N blocks of the request's block") would rest on the request, which the attacker makes: nothing
// stops it from being made after the host froze the node's view. The mark is the one thing the attacker cannot
// make early: it is random, generated inside the enclave after the decision began, so the block that holds it is
// after the decision began, and so is every state the node then reads. Withholding can only delay the decision
// (or make it time out), never move it into the past. A mark the host replays from another decision is of no use:
// a node only accepts the mark it made for the decision at hand (single use, in memory).
//
// It also makes time safe. "Now" for measurement activation, collateral age, TCB dates and request expiry is the
// verified header's timestamp (or number): a lower bound of real time, as every block is in the past. For the rules
// where a too-early "now" is the permissive direction (collateral age, TCB dates, expiry), the mark makes the bound
// tight: the header is at or after a block that was produced after the decision began.
//
// What it costs: one transaction (~25k gas) and the time to finality (~13 minutes on Ethereum, a few anvil blocks on
// a devnet) per decision; one mark serves a whole batch of requests answered together.
//
// How a decision uses it (help today; rotation and guardian release the same way):
//   const fresh = await ctx.freshness.requireFreshView((mark) => sendMarkFresh(mark))  // node with a gas key
//   const got = await ctx.freshness.hostMark('rotate')   // node without one: { needsMark } for the host to send, then
//                                                        // the fresh view on a later call
//   const state = await ctx.chainView.read(fresh.header, { ...every slot the decision reads })
// and decide on `state` only (time = `fresh.header.timestamp`). `stale_chain_view` (a ChainViewError) is the refusal.
//
// The wait is measured with the process's monotonic clock. It bounds how long the node keeps trying, and so how old
// the mark block may be at the moment of the decision; the decision itself uses only verified chain time.
import { randomBytes } from 'node:crypto'
import type { Hex } from 'viem'
import type { ChainView, ViewHeader } from './chainView.ts'
import { ChainViewError } from './errors.ts'

/** A view a decision may use: proven to include the mark made for it. */
export type FreshView = { header: ViewHeader; mark: Hex; markedAt: bigint }

export type PendingMark = { mark: Hex; createdAt: number }

export type FreshnessOptions = {
  view: ChainView
  /** Longest wait for the view to prove a mark (ms), from when the mark was made. */
  timeoutMs: number
  /** How often the view is polled while waiting (ms). */
  pollMs: number
  /** Monotonic clock, ms (default `performance.now`). */
  monotonicNow?: () => number
}

export function createFreshness(options: FreshnessOptions) {
  const { view } = options
  const clock = options.monotonicNow ?? (() => performance.now())

  /** A new random mark for one decision. */
  function newMark(): PendingMark {
    return { mark: `0x${randomBytes(32).toString('hex')}`, createdAt: clock() }
  }

  function expired(pending: PendingMark): boolean {
    return clock() - pending.createdAt > options.timeoutMs
  }

  /** One look: the fresh view, if the newest verified header already proves the mark; else undefined. */
  async function check(pending: PendingMark): Promise<FreshView | undefined> {
    const header = await view.head()
    const state = await view.read(header, { marks: [pending.mark] })
    const markedAt = state.markedAt(pending.mark)
    return markedAt === 0n ? undefined : { header, mark: pending.mark, markedAt }
  }

  /**
   * Waits until the view proves `pending`'s mark. `hintBlock` (where the RPC says the mark was mined) only saves
   * proof requests before then: a lie makes the wait longer or time out, never shorter.
   */
  async function await_(pending: PendingMark, hintBlock?: bigint, minBlock?: bigint): Promise<FreshView> {
    // `minBlock`: the decision also reads facts the RPC says were mined there (a batch's newest request): the view must
    // reach it too. A lie makes the wait longer or time out, or leaves such a fact unproven, never a staler view.
    const from = hintBlock === undefined ? minBlock : minBlock === undefined || hintBlock > minBlock ? hintBlock : minBlock
    let lastError: unknown
    let lastLooked: Hex | undefined
    for (;;) {
      if (expired(pending)) {
        const why = lastError instanceof Error ? `; last failure: ${lastError.message.split('\n')[0]}` : ''
        throw new ChainViewError(
          'stale_chain_view',
          `the verified chain view did not reach this decision's freshness mark within ${Math.round(options.timeoutMs / 1000)} s (verified head: block ${view.status().head?.blockNumber ?? 'none'})${why}`,
        )
      }
      try {
        const header = await view.head()
        if (header.blockHash !== lastLooked && (from === undefined || header.blockNumber >= from)) {
          lastLooked = header.blockHash
          const state = await view.read(header, { marks: [pending.mark] })
          const markedAt = state.markedAt(pending.mark)
          if (markedAt !== 0n) return { header, mark: pending.mark, markedAt }
        }
      } catch (error) {
        // A view that cannot be read now may be readable later (a lying RPC may stop lying); the deadline decides.
        if (error instanceof ChainViewError && error.reason !== 'unverified_chain' && error.reason !== 'stale_chain_view') throw error
        lastError = error
      }
      await new Promise((r) => setTimeout(r, options.pollMs))
    }
  }

  /**
   * The freshness rule in one call, for a node that sends its own transactions: a new random mark, `send(mark)` puts
   * `markFresh(mark)` on chain (the node's outbox; it returns where the RPC says it was mined, a hint), then the wait
   * for a verified view that proves it. Resolves to the view the decision must use, and nothing older; throws
   * `ChainViewError('stale_chain_view')` when the view does not get there within `timeoutMs` of the mark.
   */
  async function requireFreshView(
    send: (mark: Hex) => Promise<bigint | undefined>,
    options: { purpose?: string; minBlock?: bigint } = {},
  ): Promise<FreshView> {
    const prepared = options.purpose === undefined ? undefined : ahead.get(options.purpose)
    if (options.purpose !== undefined) ahead.delete(options.purpose)
    if (prepared && !expired(prepared.pending)) {
      const hint = await prepared.mined.catch(() => undefined)
      // Its transaction failed (reverted, dropped, not mined in time): a new mark, as if none had been made ahead.
      if (hint !== undefined) return await_(prepared.pending, hint, options.minBlock)
    }
    const pending = newMark()
    const hint = await send(pending.mark)
    return await_(pending, hint, options.minBlock)
  }

  /**
   * Marks made ahead of a decision, one per purpose, each taken (single use) by that purpose's next `requireFreshView`.
   * A decision may begin before it has all its inputs: a helper's begins when it first sees a batch of requests, and
   * the requests that join the batch while it gathers are judged in the same decision. Its mark is then made at that
   * moment, so that the mark's block and its finality run while the batch gathers instead of after it. The rule is
   * the same: the mark is random, made inside the enclave after the decision began, used once, and proven by the view
   * the decision reads, within `timeoutMs` of its making (an older one is dropped and a new one made). What the batch
   * adds later is read at or after the block the RPC says it was mined in (`minBlock`).
   */
  const ahead = new Map<string, { pending: PendingMark; mined: Promise<bigint | undefined> }>()

  /**
   * Makes the mark for `purpose`'s next decision now. `send(mark)` resolves once the transaction is broadcast, with a
   * promise of the block the RPC says it was mined in (undefined, or a rejection, when it failed).
   */
  async function markAhead(purpose: string, send: (mark: Hex) => Promise<{ mined: Promise<bigint | undefined> }>): Promise<void> {
    const held = ahead.get(purpose)
    if (held && !expired(held.pending)) return
    // Marks no decision took (their batch was answered by another helper): dropped once expired, and at most 16 kept.
    for (const [key, entry] of ahead) if (expired(entry.pending)) ahead.delete(key)
    while (ahead.size >= 16) ahead.delete(ahead.keys().next().value!)
    const pending = newMark()
    const { mined } = await send(pending.mark)
    mined.catch(() => undefined)
    ahead.set(purpose, { pending, mined })
  }

  /** Marks handed to the host, one per purpose (a node without a gas key), each good for one decision. */
  const hostMarks = new Map<string, PendingMark>()

  /**
   * The freshness rule for a node whose host sends its transactions: the first call for `purpose` (say `help`,
   * `rotate`) makes a mark and returns it for the host to send as `markFresh(mark)`; a later call returns the fresh view
   * once the verified view proves that mark (and forgets it: single use), or the same mark again while it does not.
   * An expired mark is replaced by a new one. The host learns nothing it could use: it can only send the mark or not.
   */
  async function hostMark(purpose: string): Promise<FreshView | { needsMark: Hex }> {
    const pending = hostMarks.get(purpose)
    if (pending && !expired(pending)) {
      const fresh = await check(pending)
      if (fresh) {
        hostMarks.delete(purpose)
        return fresh
      }
      return { needsMark: pending.mark }
    }
    const made = newMark()
    hostMarks.set(purpose, made)
    return { needsMark: made.mark }
  }

  return { newMark, expired, check, await: await_, requireFreshView, markAhead, hostMark, timeoutMs: options.timeoutMs }
}
export type Freshness = ReturnType<typeof createFreshness>
