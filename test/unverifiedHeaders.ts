// TEST DOUBLE, NOT A LIGHT CLIENT: hands anvil's own blocks to the chain view as if a light client had verified them,
// so that the execution half (block path, proofs, layout, freshness) can be tested on its own. Nothing here is
// verified; production and the devnet use the sync-committee light client (src/chain/lightClient/).
import type { Hex } from 'viem'
import type { HeaderSource, VerifiedHeader } from '../src/chain/lightClient/types.ts'

export type UnverifiedHeaderSource = HeaderSource & {
  /** Stop moving: serve the last header from now on (a withholding host). */
  freeze(): void
  release(): void
  /** Serve exactly this header next (a replayed old one, a made-up one). */
  override(header: VerifiedHeader | undefined): void
}

/** anvil's block `latest - lag`, read over JSON-RPC, presented as "verified" (it is not). */
export function unverifiedAnvilHeaders(rpcUrl: string, { lag = 0 }: { lag?: number } = {}): UnverifiedHeaderSource {
  let frozen: VerifiedHeader | undefined
  let forced: VerifiedHeader | undefined
  let last: VerifiedHeader | undefined
  const call = async (method: string, params: unknown[]) => {
    const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
    return ((await res.json()) as { result: Record<string, Hex> }).result
  }
  return {
    async latest() {
      if (forced) return forced
      if (frozen) return frozen
      const head = BigInt(((await call('eth_blockNumber', [])) as unknown as Hex))
      const n = head > BigInt(lag) ? head - BigInt(lag) : 0n
      const b = await call('eth_getBlockByNumber', [`0x${n.toString(16)}`, false])
      last = { slot: n, beaconRoot: `0x${'00'.repeat(32)}`, blockNumber: n, blockHash: b.hash!, stateRoot: b.stateRoot!, timestamp: BigInt(b.timestamp!), finalized: true }
      return last
    },
    freeze() {
      frozen = last
    },
    release() {
      frozen = undefined
    },
    override(header) {
      forced = header
    },
  }
}
