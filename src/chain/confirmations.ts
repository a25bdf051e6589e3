// Waiting for confirmations with progress (docs/protocol.md#command-line): on a live network an owner action is done
// once its block is buried, not when it is first mined; the CLI says where it stands while it waits. Default depth:
// 1 on the devnet (anvil never reorgs by itself), 3 elsewhere.
import type { PublicClient, TransactionReceipt } from 'viem'

export function defaultConfirmations(chainId: number): number {
  return chainId === 31337 ? 1 : 3
}

/** Resolves once `receipt`'s block has `confirmations` blocks (itself included) on the canonical chain. */
export async function waitForConfirmations(
  publicClient: Pick<PublicClient, 'getBlockNumber' | 'getTransactionReceipt'>,
  receipt: TransactionReceipt,
  confirmations: number,
  onProgress: (line: string) => void = () => {},
  pollMs = 1000,
): Promise<TransactionReceipt> {
  let shown = 0
  for (;;) {
    // Re-read the receipt: a reorg may have moved the tx to another block (or out of the chain, which throws).
    const current = await publicClient.getTransactionReceipt({ hash: receipt.transactionHash })
    const head = await publicClient.getBlockNumber({ cacheTime: 0 })
    const have = Number(head - current.blockNumber + 1n)
    if (have !== shown) {
      onProgress(`  ${receipt.transactionHash}: in block ${current.blockNumber}, ${Math.min(have, confirmations)}/${confirmations} confirmations`)
      shown = have
    }
    if (have >= confirmations) return current
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}
