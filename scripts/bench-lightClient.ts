// Light-client speed (docs/protocol.md#verified-chain-view), one core, ratios against baselines measured in the same run:
// - processing one finality update (target ≤ 50 ms): LightclientSpec.onFinalityUpdate on a 512-signer Electra
//   update (execution branches of both headers, the finality branch, aggregating 512 pubkeys, one BLS verification),
//   and the same from the JSON a beacon node sends (decode + fork checks + processing), against one raw BLS aggregate
//   verification (aggregate 512 pubkeys, verify one signature) with @chainsafe/bls alone;
// - the devnet beacon server's cost per anvil block (follow, build the beacon block, state and body roots) and per
//   finality update with its mining, against anvil mining one block.
// `scripts/bench.ts` calls `benchLightClient`; run alone: node --import tsx scripts/bench-lightClient.ts
import bls from '@chainsafe/bls'
import { LightclientSpec } from '@lodestar/light-client/spec'
import { DOMAIN_SYNC_COMMITTEE } from '@lodestar/params'
import { ssz } from '@lodestar/types'
import { createLightClientHeaderSource } from '../src/chain/lightClient/lightClient.ts'
import { startAnvil } from '../src/devnet/anvil.ts'
import { lightClientBootstrap, lightClientFinalityUpdate, signSyncAggregate } from '../src/devnet/beaconChain.ts'
import { startDevnetBeacon } from '../src/devnet/beaconServer.ts'
import { craftChain } from '../test/lightClientFixtures.ts'
import { timeRatioCell } from './bench/ratio.ts'

export type LightClientBench = {
  baselineMs: number
  finalityUpdateMs: number
  finalityUpdateFromJsonMs: number
  server: { anvilMineMs: number; followPerBlockMs: number; finalityWithMiningMs: number; startMs: number; depth: number }
}

/** Best of `rounds` rounds of `n` calls, milliseconds per call (the best round: least disturbed by other work). */
function perCall(n: number, rounds: number, call: () => unknown): number {
  for (let i = 0; i < Math.min(n, 5); i++) call() // warm-up (JIT)
  let best = Infinity
  for (let r = 0; r < rounds; r++) {
    const start = performance.now()
    for (let i = 0; i < n; i++) call()
    best = Math.min(best, (performance.now() - start) / n)
  }
  return best
}

async function perCallAsync(n: number, rounds: number, call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(n, 3); i++) await call()
  let best = Infinity
  for (let r = 0; r < rounds; r++) {
    const start = performance.now()
    for (let i = 0; i < n; i++) await call()
    best = Math.min(best, (performance.now() - start) / n)
  }
  return best
}

export async function benchLightClient(print: (line: string) => void, { n = 40, rounds = 3 }: { n?: number; rounds?: number } = {}): Promise<LightClientBench> {
  const chain = craftChain({ slots: Array.from({ length: 12 }, (_, i) => 40 + i) })
  const committee = chain.committee(0)
  const update = chain.finality(50)
  const json = chain.json('LightClientFinalityUpdate', update)
  const spec = new LightclientSpec(chain.config, { allowForcedUpdates: false }, lightClientBootstrap(chain.block(40)))

  // Baseline: the BLS work every update needs, with nothing around it.
  const pubkeys = committee.syncCommittee.pubkeys.map((p) => bls.PublicKey.fromBytes(p))
  const root = ssz.phase0.BeaconBlockHeader.hashTreeRoot(chain.block(50).header)
  const aggregate = signSyncAggregate({ config: chain.config, committee, attestedRoot: root, signatureSlot: 51 })
  const signingRoot = ssz.phase0.SigningData.hashTreeRoot({ objectRoot: root, domain: chain.config.getDomain(50, DOMAIN_SYNC_COMMITTEE) })
  const baselineMs = perCall(n, rounds, () => {
    if (!bls.Signature.fromBytes(aggregate.syncCommitteeSignature, undefined, true).verify(bls.PublicKey.aggregate(pubkeys), signingRoot)) throw new Error('baseline did not verify')
  })

  // The header root is cached on the value after the first hash; a fresh decode each time keeps the figure honest.
  const finalityUpdateMs = perCall(n, rounds, () => spec.onFinalityUpdate(Number.MAX_SAFE_INTEGER, ssz.electra.LightClientFinalityUpdate.clone(update as never)))
  const finalityUpdateFromJsonMs = perCall(n, rounds, () => spec.onFinalityUpdate(Number.MAX_SAFE_INTEGER, ssz.electra.LightClientFinalityUpdate.fromJson(json.data)))
  if (spec.store.finalizedHeader.beacon.slot !== 48) throw new Error('bench update was not processed')

  // Devnet beacon server on a real anvil.
  const anvil = await startAnvil()
  let server: LightClientBench['server']
  try {
    const rpc = async (method: string, params: unknown[] = []) => {
      const response = await fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
      return ((await response.json()) as { result: unknown }).result
    }
    const started = performance.now()
    const beacon = await startDevnetBeacon({ rpcUrl: anvil.rpcUrl })
    const startMs = performance.now() - started
    try {
      const anvilMineMs = await perCallAsync(20, rounds, () => rpc('anvil_mine', ['0x1']))
      await beacon.follower.sync()
      let followPerBlockMs = Infinity
      for (let r = 0; r < rounds; r++) {
        await rpc('anvil_mine', ['0xc8'])
        const start = performance.now()
        await beacon.follower.sync()
        followPerBlockMs = Math.min(followPerBlockMs, (performance.now() - start) / 200)
      }
      const lc = createLightClientHeaderSource({ chain: beacon.chain, checkpointRoot: beacon.checkpointRoot, beaconUrl: beacon.url })
      await lc.sync()
      // One block of activity, then what a node's latest() costs: the server follows, mines `depth` blocks, signs; the
      // client verifies.
      const finalityWithMiningMs = await perCallAsync(10, rounds, async () => {
        await rpc('anvil_mine', ['0x1'])
        await lc.sync()
      })
      server = { anvilMineMs, followPerBlockMs, finalityWithMiningMs: finalityWithMiningMs - anvilMineMs, startMs, depth: beacon.follower.finalityDepth }
    } finally {
      await beacon.stop()
    }
  } finally {
    await anvil.stop()
  }

  const ms = (x: number) => `${x.toFixed(2)} ms`
  print('')
  print('| light client (one core) | time | ratio to baseline |')
  print('|---|---|---|')
  print(`| raw BLS: aggregate 512 pubkeys + verify one signature (baseline) | ${ms(baselineMs)} | 1.00 |`)
  print(`| LightclientSpec.onFinalityUpdate, 512 signers | ${ms(finalityUpdateMs)} | ${timeRatioCell(finalityUpdateMs / baselineMs, '(target ≤ 50 ms)')} |`)
  print(`| the same from the beacon node's JSON (decode + process) | ${ms(finalityUpdateFromJsonMs)} | ${timeRatioCell(finalityUpdateFromJsonMs / baselineMs)} |`)
  print('')
  print('| devnet beacon server | time | ratio to baseline |')
  print('|---|---|---|')
  print(`| anvil_mine of one block (baseline) | ${ms(server.anvilMineMs)} | 1.00 |`)
  print(`| follow one anvil block (fetch, beacon block, state and body roots) | ${ms(server.followPerBlockMs)} | ${(server.followPerBlockMs / server.anvilMineMs).toFixed(2)} (different work: not bounded by 1) |`)
  print(`| a node's sync after one new block: server follows, mines ${server.depth} blocks, signs; client verifies | ${ms(server.finalityWithMiningMs)} | ${timeRatioCell(server.finalityWithMiningMs / server.anvilMineMs)} |`)
  print(`| server start (first committees, anchor block) | ${ms(server.startMs)} | |`)
  return { baselineMs, finalityUpdateMs, finalityUpdateFromJsonMs, server }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchLightClient((line) => process.stdout.write(line + '\n'))
