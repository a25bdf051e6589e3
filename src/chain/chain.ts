import { defineChain, http, type Chain, type HttpTransport } from 'viem'

/** A viem chain for any EVM network known only by its id and RPC URL (devnets, testnets, L2s alike). */
export function chainFor(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  })
}

/**
 * The node's RPC transport (docs/protocol.md#limits). A provider's rate limit (JSON-RPC -32005 "limit exceeded", or
 * HTTP 429) is retried by viem itself, twice, after 150 and 300 ms; past that the call fails and its caller backs
 * off (the chain watcher and auto mode retry with a growing delay and log one line). A rate limit can delay a
 * decision, never change one: every decision reads the verified chain view.
 */
export function rpcTransport(rpcUrl: string, timeoutMs: number): HttpTransport {
  return http(rpcUrl, { retryCount: 2, timeout: timeoutMs })
}
