// `npm run bench`: throughput as ratios against baselines measured in the same run, on the same cores.
// Tests never assert wall time; this script is where speed is measured.
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { runDevnet } from '../src/devnet/network.ts'
import { signDigest } from '../src/keys/signature.ts'
import { attestationDigest } from '../src/keys/typedData.ts'
import { load } from './bench/load.ts'
import { alternate, rateRatioCell, timeRatioCell } from './bench/ratio.ts'
import { benchOnboarding } from './bench-onboarding.ts'
import { benchScale, scaleTable } from './bench-scale.ts'
import { benchFootprint } from './bench-footprint.ts'
import { benchLightClient } from './bench-lightClient.ts'
import { benchKzg } from './bench-kzg.ts'
import { benchDecision } from './bench-decision.ts'
import { benchQuoteVerification } from './bench-quote.ts'
import { benchHelperRate } from './bench-helper.ts'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4)
// Onboarding at scale: waves of newcomers sent together, answered by helper sidecars (scripts/bench-scale.ts).
const sizes = (value: string) => value.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0)
const SCALE = sizes(process.env.BENCH_SCALE ?? '1,10,50,200')
// Newcomers as their own sidecar processes, started one after another (scripts/bench-onboarding.ts): off unless
// BENCH_ONBOARDING="1,10,50" is set (each process costs ~1.5 s of CPU to start, so it measures the machine).
const ONBOARDING = sizes(process.env.BENCH_ONBOARDING ?? '')
const CONCURRENCY = 32
/** Alternating rounds per ratio (scripts/bench/ratio.ts). */
const ROUNDS = 4

function fmt(n: number) {
  return n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(1)
}

async function startBare(): Promise<{ url: string; signUrl: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'bench/bareServer.ts')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
  const { port } = JSON.parse(line) as { port: number }
  return { url: `http://127.0.0.1:${port}/bare`, signUrl: `http://127.0.0.1:${port}/bare-attest`, stop: () => child.kill() }
}

/** Raw signing rate on one core: the same EIP-712 digest + RFC 6979 signature /attest does, no HTTP. */
function rawSigning(seconds: number): number {
  const key = secp256k1.utils.randomSecretKey()
  const registry = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
  const appData = new Uint8Array(32)
  const deadline = performance.now() + seconds * 1000
  let n = 0
  const start = performance.now()
  while (performance.now() < deadline) {
    appData[0] = n & 0xff
    signDigest(attestationDigest({ chainId: 31337, registry, hostname: 'app', appData }), key)
    n++
  }
  return n / ((performance.now() - start) / 1000)
}

const report: string[] = []
const print = (line: string) => {
  process.stdout.write(line + '\n')
  report.push(line)
}

print(`keymanager bench: ${SECONDS}s per figure, ${CONCURRENCY} connections, client and server on the same cores`)
const devnet = await runDevnet({ nodes: 1, dir: mkdtempSync(join(tmpdir(), 'km-bench-')), print: () => {} })
const bare = await startBare()
try {
  const node = devnet.info.nodes[0]!
  const pod = { 'x-keymanager-pod': 'bench' }
  const appData = 'ab'.repeat(32)
  // Each route against its baseline in alternating rounds (scripts/bench/ratio.ts): both over HTTP from this client,
  // each server in its own process, on the same cores, so a burst of other work on the machine hits both sides.
  let failed = 0
  const rate = (url: string, headers: Record<string, string> = {}) => async () => {
    const r = await load(url, { seconds: SECONDS / ROUNDS, concurrency: CONCURRENCY, headers })
    failed += r.errors
    return r.perSecond
  }
  await load(bare.url, { seconds: 1, concurrency: CONCURRENCY }) // warm-up (JIT)
  await load(`${node.podUrl}/sealkey`, { seconds: 1, concurrency: CONCURRENCY, headers: pod })
  await load(`${node.podUrl}/attest/${appData}`, { seconds: 1, concurrency: CONCURRENCY, headers: pod })
  const sealkey = await alternate(ROUNDS, rate(bare.url), rate(`${node.podUrl}/sealkey`, pod))
  const attest = await alternate(ROUNDS, rate(`${bare.signUrl}/${appData}`), rate(`${node.podUrl}/attest/${appData}`, pod))
  const signing = rawSigning(SECONDS / 2)
  if (failed) throw new Error(`bench saw ${failed} failed requests`)
  print('')
  print(`| figure | rate | ratio to baseline (median of ${ROUNDS} alternating rounds) |`)
  print(`|---|---|---|`)
  print(`| bare hono GET, own process (baseline) | ${fmt(sealkey.baseline)} req/s | 1.00 |`)
  print(`| GET /sealkey | ${fmt(sealkey.subject)} req/s | ${rateRatioCell(sealkey.ratio, 'bare hono', '≥ 0.5')} |`)
  print(`| EIP-712 digest + secp256k1 sign behind a bare hono route, own process (baseline) | ${fmt(attest.baseline)} req/s | 1.00 |`)
  print(`| GET /attest/:appdata | ${fmt(attest.subject)} req/s | ${rateRatioCell(attest.ratio, 'signing behind bare hono', '≥ 0.8')} |`)
  print(`| for reference: the same signing, no HTTP, one core in the bench process | ${fmt(signing)} /s | (not a baseline: another kind of process) |`)
} finally {
  bare.stop()
  await devnet.stop()
}

await benchQuoteVerification(print)
await benchHelperRate(print)
await benchLightClient(print)
const kzg = benchKzg()
print('')
print('| blob sidecar, one full blob (after its commitment) | time | ratio |')
print('|---|---|---|')
print(`| v0 (EIP-4844): one blob proof (baseline) | ${kzg.v0ProofMs.toFixed(0)} ms | 1.00 |`)
print(`| v1 (EIP-7594): 128 cell proofs | ${kzg.cellProofsMs.toFixed(0)} ms | ${timeRatioCell(kzg.ratio, '× the v0 proof')} |`)
print(`| v1 check of 128 cell proofs (verifyCellKzgProofBatch) | ${kzg.cellVerifyMs.toFixed(0)} ms | ${(kzg.cellVerifyMs / kzg.v0ProofMs).toFixed(1)} × the v0 proof |`)
print(`| trusted setup load, once per process on its first blob | ${kzg.setupLoadMs.toFixed(0)} ms | |`)
await benchDecision(print)
if (SCALE.length > 0) scaleTable(await benchScale(() => {}, SCALE), print)
await benchFootprint(print, { decisions: Number(process.env.BENCH_DECISIONS ?? 1000) })
if (ONBOARDING.length > 0) {
  print('')
  print('| onboarding (auto mode, newcomers as sidecar processes, started → all ready) | wall time | blobs | txs request/fulfill/confirm | reverted txs | gas per newcomer |')
  print('|---|---|---|---|---|---|')
  for (const r of await benchOnboarding(() => {}, ONBOARDING))
    print(`| ${r.newcomers} newcomers | ${r.wallSeconds.toFixed(1)} s | ${r.blobs} | ${r.txs.requestOnboard}/${r.txs.fulfillOnboard}/${r.txs.confirmOnboard} | ${r.reverted} | ${r.gasPerNode.toLocaleString('en')} |`)
}
