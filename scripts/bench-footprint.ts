// A sidecar's footprint (docs/performance.md#footprint): restart time from sealed state and RSS under use.
//
// Production runs the bundle of `npm run build` with plain node (sidecar.Dockerfile). A devnet node runs the simulated
// TEE, which the production entry refuses, so the bench bundles the devnet entry exactly as the production entry is
// bundled (scripts/bench/bundle.ts, scripts/build.ts `bundleOptions`) and measures that; the tsx entry of a clone is
// measured beside it for comparison.
// - Restart: node 1 of a one-node devnet (bootstrapped, auto mode, helping) is stopped and started again on its data
//   dir, three times from each entry: spawn → `listening` (with the split: spawn → its first log line, by which its
//   modules are loaded, the RPC's chain id checked and the database and seal opened, and first log line → `listening`:
//   the light client restored and synced, the sealed secret checked through the verified view, listeners up), spawn →
//   `/healthz` ready (median), and whether the KZG setup was loaded by then. Baselines in the same run: spawn to first
//   output of bare `node` and of `node --import tsx` on an empty module.
// - RSS (VmRSS of the sidecar process, running from the bundle): after the restart, after 10k `GET /sealkey`, and after
//   1k onboarding decisions (newcomers held by this process, scripts/bench/newcomers.ts, sent in waves of 50 and
//   answered by node 1), with the peak (VmHWM); beside it the RSS after a restart from the tsx entry and that of an
//   idle `node --import tsx` process.
// The devnet's anvil runs Prague here: a v0 blob proof per request (~50 ms) instead of 128 cell proofs (~0.5 s), which
// only changes the bench process's cost of making 1k requests, not what the sidecar does with them.
// `scripts/bench.ts` calls it; run alone: node --import tsx scripts/bench-footprint.ts
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { devAccount, runDevnet, waitUntilReady, type NodeProcess } from '../src/devnet/network.ts'
import { bundleDevnetEntry } from './bench/bundle.ts'
import { PRODUCTION_RUNTIME } from './build.ts'
import { prepareNewcomers, sendTogether } from './bench/newcomers.ts'

type Restart = { listeningMs: number; readyMs: number; firstLogMs: number; kzgLoadedAtStart: boolean }

export type Footprint = {
  /** From the devnet entry bundled as production is (the figure the target is for). */
  bundledRestart: Restart
  /** From the tsx entry of a clone. */
  tsxRestart: Restart
  baselines: { nodeMs: number; tsxMs: number; tsxIdleRssMb: number }
  rssMb: { tsxAfterRestart: number; afterRestart: number; afterSealkey: number; afterDecisions: number; peak: number; anonAfterDecisions: number; fileAfterDecisions: number }
  decisions: number
  sealkeyCalls: number
  load: number
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no ${field} for process ${pid}`)
  return Number(m[1]) / 1024
}

/** Spawn → first stdout line, and the process's RSS at that moment (then it is killed). */
async function firstLine(args: string[], cwd: string): Promise<{ ms: number; rssMb: number }> {
  const started = performance.now()
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', () => resolve())
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code} before printing`)))
  })
  const ms = performance.now() - started
  const rssMb = procStatus(child.pid!, 'VmRSS')
  child.kill()
  return { ms, rssMb }
}

/** The log lines of `node.log` written at or after `sinceMs` (pino's `time`, ms since the epoch). */
function logSince(node: NodeProcess, sinceMs: number): { msg?: string; time?: number; kzgLoaded?: boolean }[] {
  return readFileSync(join(node.dir, 'node.log'), 'utf8')
    .split('\n')
    .flatMap((line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; time?: number; kzgLoaded?: boolean }
        return typeof entry.time === 'number' && entry.time >= sinceMs ? [entry] : []
      } catch {
        return []
      }
    })
}

async function stopNode(node: NodeProcess): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return
  await new Promise<void>((resolve) => {
    node.child.once('exit', () => resolve())
    node.child.kill('SIGTERM')
  })
}

export async function benchFootprint(
  print: (line: string) => void,
  { sealkeyCalls = 10_000, decisions = 1000, restarts = 3 }: { sealkeyCalls?: number; decisions?: number; restarts?: number } = {},
): Promise<Footprint> {
  const dir = mkdtempSync(join(tmpdir(), 'km-bench-footprint-'))
  const root = join(import.meta.dirname, '..')
  const devnet = await runDevnet({ nodes: 1, dir, auto: true, hardfork: 'prague', print: () => {} })
  try {
    const node = devnet.nodes[0]!
    // Baselines: what any process costs before our code runs.
    const empty = join(dir, 'empty.ts')
    writeFileSync(empty, "process.stdout.write('ready\\n')\nsetInterval(() => {}, 1000)\n")
    const nodeStarts: number[] = []
    const tsxStarts: number[] = []
    let tsxIdleRssMb = 0
    for (let i = 0; i < restarts; i++) {
      nodeStarts.push((await firstLine(['-e', "process.stdout.write('ready\\n'); setInterval(() => {}, 1000)"], root)).ms)
      const tsx = await firstLine(['--import', 'tsx', empty], root)
      tsxStarts.push(tsx.ms)
      tsxIdleRssMb = tsx.rssMb
    }

    /** Stops node 1 and starts it again from `entry` (the tsx entry when undefined), `restarts` times; medians. */
    async function restartFrom(entry: string | undefined): Promise<Restart> {
      const runs: Restart[] = []
      for (let i = 0; i < restarts; i++) {
        await stopNode(node)
        const spawnedAt = Date.now()
        const started = performance.now()
        // The bundle as production runs it (node flags and environment of sidecar.Dockerfile).
        await devnet.restartNode(node, entry ? { entry, env: { NODE_OPTIONS: PRODUCTION_RUNTIME.nodeFlags.join(' '), ...PRODUCTION_RUNTIME.env } } : {})
        const listeningMs = performance.now() - started
        await waitUntilReady(node, 60_000)
        const readyMs = performance.now() - started
        const lines = logSince(node, spawnedAt)
        runs.push({
          listeningMs,
          readyMs,
          firstLogMs: lines.length > 0 ? lines[0]!.time! - spawnedAt : Number.NaN,
          kzgLoadedAtStart: lines.find((l) => l.msg === 'listening')?.kzgLoaded === true,
        })
      }
      return {
        listeningMs: median(runs.map((r) => r.listeningMs)),
        readyMs: median(runs.map((r) => r.readyMs)),
        firstLogMs: median(runs.map((r) => r.firstLogMs)),
        kzgLoadedAtStart: runs.some((r) => r.kzgLoadedAtStart),
      }
    }
    const tsxRestart = await restartFrom(undefined)
    const tsxAfterRestart = procStatus(node.child.pid!, 'VmRSS')
    // From here on node 1 runs from the bundle, as production does.
    const bundle = await bundleDevnetEntry(root)
    let bundledRestart: Restart
    try {
      bundledRestart = await restartFrom(bundle.entry)
    } finally {
      bundle.remove()
    }

    const pid = node.child.pid!
    const afterRestart = procStatus(pid, 'VmRSS')

    // 10k /sealkey calls.
    const result = await autocannon({ url: `${node.podUrl}/sealkey`, connections: 16, amount: sealkeyCalls, headers: { 'x-keymanager-pod': 'bench' } })
    if (result.non2xx + result.errors > 0) throw new Error(`/sealkey: ${result.non2xx} non-2xx, ${result.errors} errors`)
    const afterSealkey = procStatus(pid, 'VmRSS')

    // 1k onboarding decisions by node 1, in waves of 50 newcomers sent together.
    const payer = devAccount(5)
    let decided = 0
    while (decided < decisions) {
      const n = Math.min(50, decisions - decided)
      const sent = await sendTogether(devnet.publicClient, await prepareNewcomers({ count: n, payer, publicClient: devnet.publicClient, registry: devnet.registry, pki: devnet.pki }))
      const ids = new Set(sent.map((s) => s.requestId))
      const from = sent[0]!.blockNumber
      for (let tries = 0; ; tries++) {
        if (tries > 2400) throw new Error(`requests ${[...ids].join(',')} not all fulfilled after 10 min`)
        await new Promise((r) => setTimeout(r, 250))
        const events = await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName: 'Onboarded', fromBlock: from, strict: true })
        if (events.filter((e) => ids.has(e.args.requestId)).length === ids.size) break
      }
      decided += n
    }
    const afterDecisions = procStatus(pid, 'VmRSS')
    const peak = procStatus(pid, 'VmHWM')
    const anonAfterDecisions = procStatus(pid, 'RssAnon')
    const fileAfterDecisions = procStatus(pid, 'RssFile')
    const load = loadavg()[0]!

    const footprint: Footprint = {
      bundledRestart,
      tsxRestart,
      baselines: { nodeMs: median(nodeStarts), tsxMs: median(tsxStarts), tsxIdleRssMb },
      rssMb: { tsxAfterRestart, afterRestart, afterSealkey, afterDecisions, peak, anonAfterDecisions, fileAfterDecisions },
      decisions: decided,
      sealkeyCalls,
      load,
    }
    footprintTable(footprint, print)
    return footprint
  } finally {
    await devnet.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

export function footprintTable(f: Footprint, print: (line: string) => void) {
  const mb = (x: number) => `${x.toFixed(0)} MB`
  const ms = (x: number) => `${(x / 1000).toFixed(2)} s`
  const restartRows = (what: string, r: Restart, target: boolean) => {
    print(`| ${what}: spawn → /healthz ready (median of 3) | ${ms(r.readyMs)} | ${target ? `≤ 1.5 s${r.readyMs > 1500 ? ' (MISSED)' : ' (met)'}` : ''} |`)
    print(`| ${what}: spawn → first log line (modules loaded, RPC chain id, database and seal opened) / → listening | ${ms(r.firstLogMs)} / ${ms(r.listeningMs)} | |`)
    print(`| ${what}: KZG setup loaded at start | ${r.kzgLoadedAtStart ? 'yes' : 'no (on first blob)'} | no |`)
  }
  print('')
  print(`| sidecar footprint (load average ${f.load.toFixed(1)} on 2 cores) | figure | target |`)
  print('|---|---|---|')
  restartRows('restart from sealed state, bundle (as production)', f.bundledRestart, true)
  restartRows('restart from sealed state, tsx entry', f.tsxRestart, false)
  print(`| baseline: bare node, spawn → first output | ${ms(f.baselines.nodeMs)} | |`)
  print(`| baseline: node --import tsx, empty module, spawn → first output | ${ms(f.baselines.tsxMs)} | |`)
  print(`| RSS after restart, bundle / tsx entry | ${mb(f.rssMb.afterRestart)} / ${mb(f.rssMb.tsxAfterRestart)} | |`)
  print(`| RSS after ${f.sealkeyCalls.toLocaleString('en')} GET /sealkey (bundle) | ${mb(f.rssMb.afterSealkey)} | |`)
  print(`| RSS after ${f.decisions.toLocaleString('en')} onboarding decisions (bundle) | ${mb(f.rssMb.afterDecisions)} | ≤ 150 MB${f.rssMb.afterDecisions > 150 ? ' (MISSED)' : ' (met)'} |`)
  print(`| … of which anonymous (V8 heap, native allocations) / file-backed (code, mapped files) | ${mb(f.rssMb.anonAfterDecisions)} / ${mb(f.rssMb.fileAfterDecisions)} | |`)
  print(`| RSS peak (VmHWM, bundle) | ${mb(f.rssMb.peak)} | |`)
  print(`| baseline: RSS of an idle node --import tsx | ${mb(f.baselines.tsxIdleRssMb)} | |`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const decisions = Number(process.env.BENCH_DECISIONS ?? 1000)
  await benchFootprint((line) => process.stdout.write(line + '\n'), { decisions })
}
