// Which blob sidecar the network's mempool takes (docs/protocol.md#blob-transactions): v1 (EIP-7594 cell proofs) from
// Osaka on, v0 before. Never assumed: it is discovered, in this order,
//   1. `eth_config` (EIP-7910): the fork the node runs at its head. Osaka is recognised by its new precompile,
//      P256VERIFY at 0x…0100 (EIP-7951), since the answer carries no fork name;
//   2. the network's Osaka activation time (a preset of src/chain/networks.ts, or the setting `chain.osakaTime`)
//      against the head block's timestamp;
// and when neither is known the send fails with an error saying what to set. The host could lie here (it controls
// the RPC); a wrong answer only makes the mempool refuse the tx, so this is a liveness matter, not a security one.
import type { PublicClient } from 'viem'
import { ChainError } from './errors.ts'
import type { SidecarVersion } from './blobTransaction.ts'

const P256VERIFY = '0x0000000000000000000000000000000000000100'

/** Neither eth_config nor a configured Osaka time tells which sidecar to build. */
export class HardforkUnknownError extends ChainError {
  override name = 'HardforkUnknownError'
  constructor() {
    super('upstream_failed', 'Cannot tell whether the network runs Osaka: the RPC does not answer eth_config and no Osaka time is set.', {
      metaMessages: ['set chain.osakaTime (unix seconds; 0 if the chain starts at Osaka), or use a network preset'],
    })
  }
}

type ForkConfig = { activationTime?: unknown; precompiles?: Record<string, unknown> } | null | undefined

function isOsaka(fork: ForkConfig): boolean {
  return Object.values(fork?.precompiles ?? {}).some((address) => typeof address === 'string' && address.toLowerCase() === P256VERIFY)
}

export type SidecarVersionSource = {
  /** The sidecar version the mempool takes now. */
  current(): Promise<SidecarVersion>
  /** How it was found the last time (for logs and /status). */
  readonly how: 'eth_config' | 'osaka-time' | undefined
}

/**
 * Discovers the sidecar version, cached for `cacheMs` (default 60 s) and re-asked when a fork scheduled by eth_config's
 * `next` is due: a tx signed before Osaka and sent again after it goes out re-wrapped.
 */
export function sidecarVersionSource(publicClient: PublicClient, options: { osakaTime?: bigint | undefined; cacheMs?: number } = {}): SidecarVersionSource {
  const cacheMs = options.cacheMs ?? 60_000
  let cached: { version: SidecarVersion; until: number; nextAt?: bigint } | undefined
  let how: SidecarVersionSource['how']

  async function discover(): Promise<{ version: SidecarVersion; nextAt?: bigint }> {
    let config: { current?: ForkConfig; next?: ForkConfig } | undefined
    try {
      config = (await publicClient.request({ method: 'eth_config' } as never)) as typeof config
    } catch {
      config = undefined
    }
    if (config && typeof config === 'object' && config.current) {
      how = 'eth_config'
      const nextAt = isOsaka(config.next) && typeof config.next?.activationTime === 'number' ? BigInt(config.next.activationTime) : undefined
      return { version: isOsaka(config.current) ? 1 : 0, ...(nextAt !== undefined ? { nextAt } : {}) }
    }
    if (options.osakaTime === undefined) throw new HardforkUnknownError()
    how = 'osaka-time'
    const head = await publicClient.getBlock({ blockTag: 'latest' })
    return { version: head.timestamp >= options.osakaTime ? 1 : 0, nextAt: options.osakaTime }
  }

  return {
    async current() {
      if (cached && Date.now() < cached.until) {
        if (cached.version === 1 || cached.nextAt === undefined) return cached.version
        const head = await publicClient.getBlock({ blockTag: 'latest' })
        if (head.timestamp < cached.nextAt) return cached.version
      }
      const found = await discover()
      cached = { ...found, until: Date.now() + cacheMs }
      return found.version
    },
    get how() {
      return how
    },
  }
}

/** A fixed version, for callers that already know it (tests, a host that measured it). */
export function fixedSidecarVersion(version: SidecarVersion): SidecarVersionSource {
  return { current: async () => version, how: undefined }
}
