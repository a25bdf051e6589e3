import { defineChain, type Chain } from 'viem'

/** A viem chain for any EVM network known only by its id and RPC URL (devnets, testnets, L2s alike). */
export function chainFor(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  })
}
