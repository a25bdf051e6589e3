// A helper's decision with proofs against the same decision with trusted RPC reads (docs/protocol.md#verified-chain-view),
// measured in one run on one devnet, rounds alternated, each mode keeping its best round.
//
// "The decision" is exactly what src/node/judge.ts does for one genuine request once a fresh view is at hand: the
// request's slots, the policy, the measurement and (when on) the FMSPC entry read through the view, the blob's
// envelope (from memory, as from the node's archive), DCAP verification with cached collateral, report data and
// policy checks. Per decision the light-client mode also checks the block path (eth_getBlockByHash, RLP hash) of the
// verified header, as a node does once per new header; the header itself comes from the real light client, fetched
// once. The freshness wait (a mark transaction and finality) is not part of the decision: it is the price of the
// mode, reported apart as the devnet's mark-to-proof latency.
// `scripts/bench.ts` calls `benchDecision`; run alone: node --import tsx scripts/bench-decision.ts
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import pino from 'pino'
import { createPublicClient, createWalletClient, http } from 'viem'
import { anvilBlobSource } from '../src/chain/beacon.ts'
import { blobsToEnvelope, type Envelope } from '../src/chain/envelope.ts'
import { createLightClientHeaderSource } from '../src/chain/lightClient/lightClient.ts'
import type { VerifiedHeader } from '../src/chain/lightClient/types.ts'
import { createChainView, type ChainView, type ViewHeader } from '../src/chain/view/chainView.ts'
import { createFreshness } from '../src/chain/view/freshness.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { quoteVerifierFromOptions } from '../src/cli/quote.ts'
import { devAccount, runDevnet } from '../src/devnet/network.ts'
import { createJudge } from '../src/node/judge.ts'
import { createCollateralCache } from '../src/store/collateralCache.ts'
import { openDatabase } from '../src/store/database.ts'
import { attackerKey, hostileRequest } from '../test/attacker.ts'

export type DecisionBench = { lightClientMs: number; trustedMs: number; ratio: number; markToProofMs: number }

export async function benchDecision(print: (line: string) => void, { rounds = 6, perRound = 20 }: { rounds?: number; perRound?: number } = {}): Promise<DecisionBench> {
  const devnet = await runDevnet({ nodes: 1, dir: mkdtempSync(join(tmpdir(), 'km-bench-decision-')), print: () => {} })
  const db = openDatabase(':memory:')
  try {
    const logger = pino({ level: 'silent' })
    const rpc = createPublicClient({ chain: devnet.chain, transport: http(devnet.anvil.rpcUrl, { timeout: 60_000 }) })
    // A genuine request (the allowed build), bound to a key the bench holds: every check runs and passes.
    const request = await hostileRequest(devnet, attackerKey(), 'devnet', 5)
    const [blob] = await anvilBlobSource(devnet.anvil.rpcUrl).fetchBlobs({
      blockNumber: request.blockNumber,
      blockHash: request.blockHash,
      blockTimestamp: 0n,
      versionedHashes: [request.quoteBlobHash],
    })
    const envelope: Envelope = blobsToEnvelope([blob!])
    const { verifier } = quoteVerifierFromOptions({
      trustedRootCaFiles: [join(devnet.devnetDir, 'pki', 'root.pem')],
      pccsUrl: devnet.pccsUrl,
      cache: createCollateralCache(db),
    })

    // The real light client against the devnet beacon server, for a verified header at or after the request.
    const beacon = devnet.beacon!
    const lightClient = createLightClientHeaderSource({ chain: beacon.chain, checkpointRoot: beacon.checkpointRoot, beaconUrl: beacon.url })
    const synced = createChainView({ mode: 'light-client', headers: lightClient, rpc, registry: devnet.registry, registryCodeHash: devnet.registryCodeHash, logger })
    const at = await synced.waitForBlock(request.blockNumber, { timeoutMs: 120_000, pollMs: 100 })
    const verified: VerifiedHeader = { slot: at.slot!, beaconRoot: `0x${'00'.repeat(32)}`, blockNumber: at.blockNumber, blockHash: at.blockHash, stateRoot: at.stateRoot, timestamp: at.timestamp, finalized: true }

    // The mark's round trip on this devnet: send markFresh, wait until the light-client view proves it.
    const freshness = createFreshness({ view: synced, timeoutMs: 120_000, pollMs: 100 })
    const mark = freshness.newMark()
    const t0 = performance.now()
    const registry = createRegistryClient({ publicClient: rpc as never, address: devnet.registry })
    const wallet = createWalletClient({ account: devAccount(6), chain: devnet.chain, transport: http(devnet.anvil.rpcUrl, { timeout: 60_000 }) })
    const markTx = await wallet.sendTransaction({ to: devnet.registry, data: registry.calldata.markFresh(mark.mark) })
    const markBlock = (await rpc.waitForTransactionReceipt({ hash: markTx })).blockNumber
    await freshness.await(mark, markBlock)
    const markToProofMs = performance.now() - t0

    const judgeWith = (view: ChainView) =>
      createJudge({ chainId: devnet.chain.id, registryAddress: devnet.registry, chainView: view, quoteVerifier: verifier, maxReferenceAge: 64n, fetchEnvelope: async () => ({ envelope }) })
    /** One decision in each mode, each on a view of its own (the light-client one checks the block path anew). */
    const decide = {
      async lightClient() {
        const view = createChainView({ mode: 'light-client', headers: { latest: async () => verified }, rpc, registry: devnet.registry, registryCodeHash: devnet.registryCodeHash, logger })
        const header: ViewHeader = await view.head()
        await judgeWith(view)(request, { header, mark: mark.mark, markedAt: 1n })
      },
      async trusted() {
        const view = createChainView({ mode: 'trusted-rpc', rpc, registry: devnet.registry, logger })
        const header = await view.head()
        await judgeWith(view)(request, { header, mark: mark.mark, markedAt: 1n })
      },
    }
    for (let i = 0; i < 5; i++) {
      await decide.lightClient()
      await decide.trusted()
    }
    const best = { lightClient: Infinity, trusted: Infinity }
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 === 0 ? (['lightClient', 'trusted'] as const) : (['trusted', 'lightClient'] as const)) {
        const start = performance.now()
        for (let i = 0; i < perRound; i++) await decide[mode]()
        best[mode] = Math.min(best[mode], (performance.now() - start) / perRound)
      }
    }
    const ratio = best.lightClient / best.trusted
    print('')
    print('| helper decision (one genuine request, fresh view at hand) | time | ratio |')
    print('|---|---|---|')
    print(`| trusted-rpc reads (baseline) | ${best.trusted.toFixed(1)} ms | 1.00 |`)
    print(`| light-client: block hash check + account and storage proofs | ${best.lightClient.toFixed(1)} ms | ${ratio.toFixed(2)} of trusted-rpc (target ≤ 2) |`)
    print(`| freshness mark on the devnet: markFresh sent → proven in the verified view | ${Math.round(markToProofMs)} ms | (not part of the decision) |`)
    return { lightClientMs: best.lightClient, trustedMs: best.trusted, ratio, markToProofMs }
  } finally {
    db.close()
    await devnet.stop()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchDecision((line) => process.stdout.write(line + '\n'))
}
