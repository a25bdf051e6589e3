// Onboarding cost at scale (auto mode): a devnet with node 1 bootstrapped and N newcomers that join by
// themselves, each a separate `keymanager serve` process. Reports wall time (newcomers started → all ready),
// blobs, transactions and gas per newcomer, counted on chain. Each process costs ~100 MB and ~1.5 s of CPU to
// start, so large N is bounded by the machine (2 cores here), not by the protocol.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { toFunctionSelector, type Hex } from 'viem'
import { runDevnet } from '../src/devnet/network.ts'

const SELECTORS = {
  requestOnboard: toFunctionSelector('requestOnboard(bytes,uint64)'),
  fulfillOnboard: toFunctionSelector('fulfillOnboard(uint256[],bytes)'),
  confirmOnboard: toFunctionSelector('confirmOnboard(uint256,bytes)'),
}

export type OnboardingBench = { newcomers: number; wallSeconds: number; blobs: number; txs: Record<keyof typeof SELECTORS, number>; reverted: number; gasPerNode: number }

export async function benchOnboarding(print: (line: string) => void, sizes: number[] = [1, 10, 50]): Promise<OnboardingBench[]> {
  const results: OnboardingBench[] = []
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'km-bench-onboarding-'))
    let joinedIn = NaN
    const devnet = await runDevnet({
      nodes: n + 1,
      dir,
      auto: true,
      print: (line) => {
        const m = /joined by themselves in ([\d.]+) s/.exec(line)
        if (m) joinedIn = Number(m[1])
      },
    })
    try {
      const head = await devnet.publicClient.getBlockNumber({ cacheTime: 0 })
      const txs = { requestOnboard: 0, fulfillOnboard: 0, confirmOnboard: 0 }
      let blobs = 0
      let gas = 0n
      let reverted = 0
      for (let b = 0n; b <= head; b++) {
        const block = await devnet.publicClient.getBlock({ blockNumber: b, includeTransactions: true })
        for (const tx of block.transactions) {
          if (tx.to?.toLowerCase() !== devnet.registry.toLowerCase()) continue
          const kind = (Object.keys(SELECTORS) as (keyof typeof SELECTORS)[]).find((k) => tx.input.startsWith(SELECTORS[k]))
          if (!kind) continue
          txs[kind]++
          blobs += (tx as { blobVersionedHashes?: Hex[] }).blobVersionedHashes?.length ?? 0
          const receipt = await devnet.publicClient.getTransactionReceipt({ hash: tx.hash })
          gas += receipt.gasUsed
          if (receipt.status === 'reverted') reverted++
        }
      }
      const result = { newcomers: n, wallSeconds: joinedIn, blobs, txs, reverted, gasPerNode: Number(gas / BigInt(n)) }
      results.push(result)
      print(
        `${n} newcomers: ready in ${joinedIn.toFixed(1)} s; ${blobs} blobs; txs request/fulfill/confirm ${txs.requestOnboard}/${txs.fulfillOnboard}/${txs.confirmOnboard} (${reverted} reverted); ${result.gasPerNode} gas per newcomer`,
      )
    } finally {
      await devnet.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return results
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0)
  await benchOnboarding((line) => process.stdout.write(line + '\n'), sizes.length > 0 ? sizes : undefined)
}
