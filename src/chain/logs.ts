// Bounded log reads (docs/protocol.md#limits): public RPCs refuse `eth_getLogs` over wide block ranges (many cap it at
// 1,000 to 10,000 blocks, some at fewer once a range holds many logs), so no read here asks for more than
// `maxRange` blocks at once. Scans that must cover a whole history (audit, policy list) go range by range; the node
// itself reads events only through its chain watcher, which moves at most `maxRange` blocks per poll.
import type { Abi, AbiEvent, Address, Log, PublicClient } from 'viem'

/** Default widest `eth_getLogs` range, in blocks (inclusive count). */
export const DEFAULT_MAX_LOG_RANGE = 1000

export type BoundedLogsParameters = {
  publicClient: PublicClient
  address: Address
  abi: Abi
  /** Only these events (all of the ABI's when omitted). */
  eventNames?: readonly string[]
  /** Indexed-argument filter; only with exactly one event name (the provider filters on the topics). */
  args?: Record<string, unknown>
  fromBlock: bigint
  toBlock: bigint
  /** Most blocks per request. Default 1,000. */
  maxRange?: number
  /** Called after each range, for progress output. */
  onRange?: (range: { from: bigint; to: bigint; logs: number }) => void
}

/** Every log of `address` decoded with `abi` between two blocks (inclusive), in chain order, asked `maxRange` blocks at a time. */
export async function getLogsBounded(parameters: BoundedLogsParameters): Promise<(Log & { eventName: string; args: Record<string, unknown> })[]> {
  const maxRange = BigInt(parameters.maxRange ?? DEFAULT_MAX_LOG_RANGE)
  if (maxRange < 1n) throw new RangeError('maxRange must be at least 1 block')
  const events = parameters.abi.filter(
    (item): item is AbiEvent => item.type === 'event' && (parameters.eventNames === undefined || parameters.eventNames.includes(item.name)),
  )
  if (events.length === 0) throw new RangeError('no such event in the ABI')
  if (parameters.args !== undefined && events.length !== 1) throw new RangeError('an argument filter needs exactly one event')
  const filter = parameters.args === undefined ? { events } : { event: events[0], args: parameters.args }
  const out: (Log & { eventName: string; args: Record<string, unknown> })[] = []
  for (let from = parameters.fromBlock; from <= parameters.toBlock; from += maxRange) {
    const to = from + maxRange - 1n < parameters.toBlock ? from + maxRange - 1n : parameters.toBlock
    // The events' topics go in the filter (one OR-ed topic0), so the provider returns only those.
    const logs = (await parameters.publicClient.getLogs({ address: parameters.address, ...filter, fromBlock: from, toBlock: to, strict: true } as never)) as unknown as (Log & {
      eventName: string
      args: Record<string, unknown>
    })[]
    out.push(...logs)
    parameters.onRange?.({ from, to, logs: logs.length })
  }
  return out
}
