// Onboarding at scale (docs/performance.md#onboarding-at-scale): a devnet whose helpers are real sidecars in auto
// mode (node 1 bootstrapped, the others joined by themselves and confirmed: members), then waves of 1, 10, 50 and 200
// newcomers whose requests are sent together (scripts/bench/newcomers.ts: held by this process, real quotes and blob
// transactions). Per wave: blocks from each request to its fulfilment, the last fulfilment after the last request,
// `fulfillOnboard` transactions (reverted ones apart), freshness marks, transactions per newcomer, and that every
// answer decrypts under its newcomer's key. Blocks on the devnet: anvil mines one per transaction (automine), and the
// devnet beacon server mines the empty ones that finalize a block a node waits for.
// `scripts/bench.ts` calls it; run alone: node --import tsx scripts/bench-scale.ts [sizes…]  (BENCH_HELPERS=4,
// BENCH_FINALITY_DEPTH=2, BENCH_BLOCK_TIME=2; 0 for automine)
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { devAccount, runDevnet } from '../src/devnet/network.ts'
import { answerDecrypts, prepareNewcomers, registryTxs, sendTogether } from './bench/newcomers.ts'

export type ScaleWave = {
  newcomers: number
  requestBlocks: number
  blocksToFulfil: { median: number; max: number }
  lastAfterLastRequest: number
  fulfilTxs: number
  fulfilReverted: number
  markTxs: number
  markReverted: number
  txsPerNewcomer: number
  decrypted: number
  seconds: number
  load: number
  /** The devnet's finality depth in this run (blocks from a block to its finality). */
  finalityDepth: number
  /** Seconds between blocks (interval mining), or undefined for automine (a block per transaction). */
  blockTime: number | undefined
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

export async function benchScale(
  print: (line: string) => void,
  sizes = [1, 10, 50, 200],
  helpers = Number(process.env.BENCH_HELPERS ?? 4),
  // The devnet's own depth by default (the one the tests use); BENCH_FINALITY_DEPTH=1 measures a chain whose blocks
  // finalize at the next one (docs/performance.md#onboarding-at-scale says what each gives).
  finalityDepth = Number(process.env.BENCH_FINALITY_DEPTH ?? 2),
  // A block every 2 s by default, as a real chain has a slot time, whoever asks (docs/performance.md#onboarding-at-scale:
  // the target is read there). BENCH_BLOCK_TIME=0: automine, a block per transaction, and the beacon simulator mines
  // the empties that finalize a block someone waits for (the tests' devnet).
  blockTimeSeconds = Number(process.env.BENCH_BLOCK_TIME ?? 2),
): Promise<ScaleWave[]> {
  if (!Number.isSafeInteger(helpers) || helpers < 1) throw new Error(`BENCH_HELPERS must be an integer ≥ 1, got ${process.env.BENCH_HELPERS ?? helpers}`)
  if (!Number.isSafeInteger(finalityDepth) || finalityDepth < 1)
    throw new Error(`BENCH_FINALITY_DEPTH must be an integer ≥ 1, got ${process.env.BENCH_FINALITY_DEPTH ?? finalityDepth}`)
  if (!Number.isSafeInteger(blockTimeSeconds) || blockTimeSeconds < 0)
    throw new Error(`BENCH_BLOCK_TIME must be an integer ≥ 0 (seconds; 0: automine), got ${process.env.BENCH_BLOCK_TIME ?? blockTimeSeconds}`)
  const blockTime = blockTimeSeconds === 0 ? undefined : blockTimeSeconds
  const dir = mkdtempSync(join(tmpdir(), 'km-bench-scale-'))
  const started = performance.now()
  const devnet = await runDevnet({ nodes: helpers, dir, auto: true, print: () => {}, finalityDepth, ...(blockTime === undefined ? {} : { blockTime }) })
  print(
    `scale bench: ${helpers} helper sidecars in auto mode (node 1 bootstrapped, ${helpers - 1} joined by themselves), devnet finality depth ${finalityDepth}, ${blockTime === undefined ? 'automine' : `a block every ${blockTime} s`}, in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  )
  const waves: ScaleWave[] = []
  try {
    if (blockTime !== undefined) {
      // The helpers' confirmations (their membership) must be final before the first wave, as on a network that has
      // run a while: until a helper's view proves the members, every node ranks them alike and all answer the batch.
      // With automine the beacon simulator finalizes at once; with interval mining it takes `finalityDepth` blocks.
      const setUp = await devnet.publicClient.getBlockNumber({ cacheTime: 0 })
      while ((await devnet.publicClient.getBlockNumber({ cacheTime: 0 })) <= setUp + BigInt(finalityDepth) + 1n) await new Promise((r) => setTimeout(r, blockTime * 500))
    }
    const payer = devAccount(helpers + 3)
    const { publicClient, registry } = devnet
    for (const n of sizes) {
      const newcomers = await prepareNewcomers({ count: n, payer, publicClient, registry, pki: devnet.pki })
      const before = await publicClient.getBlockNumber({ cacheTime: 0 })
      const t0 = performance.now()
      const sent = await sendTogether(publicClient, newcomers, { intervalMining: blockTime !== undefined })
      const ids = new Set(sent.map((s) => s.requestId))
      const fulfilledAt = new Map<bigint, bigint>()
      const deadline = performance.now() + 15 * 60_000
      while (fulfilledAt.size < ids.size) {
        if (performance.now() > deadline) throw new Error(`${n} newcomers: ${ids.size - fulfilledAt.size} requests not fulfilled after 15 min`)
        await new Promise((r) => setTimeout(r, 250))
        const events = await publicClient.getContractEvents({ address: registry, abi: keyManagerAbi, eventName: 'Onboarded', fromBlock: before + 1n, strict: true })
        for (const e of events) if (ids.has(e.args.requestId) && !fulfilledAt.has(e.args.requestId)) fulfilledAt.set(e.args.requestId, e.blockNumber)
      }
      const seconds = (performance.now() - t0) / 1000
      const load = loadavg()[0]!
      // Helpers whose turn came after the fulfilment may still have a transaction in flight: give them a few turns.
      await new Promise((r) => setTimeout(r, 15_000))
      const after = await publicClient.getBlockNumber({ cacheTime: 0 })
      const txs = await registryTxs(publicClient, registry, before + 1n, after)
      const requestBlocks = sent.map((s) => Number(s.blockNumber))
      const firstRequest = Math.min(...requestBlocks)
      const lastRequest = Math.max(...requestBlocks)
      const lastFulfil = Math.max(...[...fulfilledAt.values()].map(Number))
      const byId = new Map(txs.fulfils.filter((f) => !f.reverted).flatMap((f) => f.requestIds.map((id) => [id, f] as const)))
      const decrypted = sent.filter((s) => byId.has(s.requestId) && answerDecrypts(byId.get(s.requestId)!, s, registry)).length
      const blocks = sent.map((s) => Number(fulfilledAt.get(s.requestId)! - s.blockNumber))
      const wave: ScaleWave = {
        newcomers: n,
        requestBlocks: lastRequest - firstRequest + 1,
        blocksToFulfil: { median: median(blocks), max: Math.max(...blocks) },
        lastAfterLastRequest: lastFulfil - lastRequest,
        fulfilTxs: txs.counts.fulfillOnboard,
        fulfilReverted: txs.reverted.fulfillOnboard,
        markTxs: txs.counts.markFresh,
        markReverted: txs.reverted.markFresh,
        // Every registry transaction of the wave, the newcomers' own requests included, per newcomer.
        txsPerNewcomer: (txs.counts.requestOnboard + txs.counts.fulfillOnboard + txs.counts.markFresh + txs.counts.confirmOnboard) / n,
        decrypted,
        seconds,
        load,
        finalityDepth,
        blockTime,
      }
      waves.push(wave)
      print(
        `${n} newcomers: requests in ${wave.requestBlocks} blocks; request → fulfilment median ${wave.blocksToFulfil.median} max ${wave.blocksToFulfil.max} blocks; last fulfilled ${wave.lastAfterLastRequest} blocks after the last request; ` +
          `fulfillOnboard ${wave.fulfilTxs} (${wave.fulfilReverted} reverted), markFresh ${wave.markTxs} (${wave.markReverted} reverted); ${wave.txsPerNewcomer.toFixed(2)} txs per newcomer; ` +
          `${decrypted}/${n} answers decrypt; ${seconds.toFixed(1)} s; load ${load.toFixed(1)}`,
      )
    }
  } finally {
    await devnet.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  return waves
}

/** The markdown table `scripts/bench.ts` prints. */
export function scaleTable(waves: ScaleWave[], print: (line: string) => void) {
  print('')
  if (waves.length > 0) {
    const mining = waves[0]!.blockTime === undefined ? 'automine: a block per transaction, the beacon simulator mines the empties that finalize' : `interval mining: a block every ${waves[0]!.blockTime} s (BENCH_BLOCK_TIME)`
    print(`Devnet finality depth ${waves[0]!.finalityDepth} (BENCH_FINALITY_DEPTH; the tests' devnet uses 2), ${mining}.`)
    print('')
  }
  print('| newcomers (sent together) | request blocks | blocks request → fulfilled (median / max) | last fulfilled after last request | fulfillOnboard (reverted) | markFresh (reverted) | txs per newcomer | answers decrypt | wall | load avg |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  for (const w of waves) {
    const target = w.newcomers === 50 ? (w.fulfilTxs <= 2 && w.fulfilReverted === 0 && w.lastAfterLastRequest <= 5 ? ' (target met)' : ' (TARGET MISSED: ≤ 2 tx, 0 reverted, ≤ 5 blocks)') : ''
    print(
      `| ${w.newcomers}${target} | ${w.requestBlocks} | ${w.blocksToFulfil.median} / ${w.blocksToFulfil.max} | ${w.lastAfterLastRequest} | ${w.fulfilTxs} (${w.fulfilReverted}) | ${w.markTxs} (${w.markReverted}) | ${w.txsPerNewcomer.toFixed(2)} | ${w.decrypted}/${w.newcomers} | ${w.seconds.toFixed(1)} s | ${w.load.toFixed(1)} |`,
    )
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((x) => Number.isInteger(x) && x > 0)
  const waves = await benchScale((line) => process.stdout.write(line + '\n'), sizes.length > 0 ? sizes : undefined)
  scaleTable(waves, (line) => process.stdout.write(line + '\n'))
}
