// A sidecar's footprint (docs/performance.md#footprint): restart time from sealed state and RSS under use.
//
// - Restart: node 1 of a one-node devnet (bootstrapped, auto mode, helping) is stopped and started again on its data
//   dir, three times: time from spawn to its `listening` line and to `/healthz` ready (median), and whether the KZG
//   setup was loaded by then. Baselines in the same run: spawn to first output of bare `node`, of `node --import tsx`
//   on an empty module, and of the same sidecar from a bundle (esbuild, scripts/bench/bundle.ts) instead of tsx.
// - RSS (VmRSS of the sidecar process): after the restart, after 10k `GET /sealkey`, and after 1k onboarding decisions
//   (newcomers held by this process, scripts/bench/newcomers.ts, sent in waves of 50 and answered by node 1), with the
//   peak (VmHWM); beside it the RSS of an idle `node --import tsx` process.
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
import { devAccount, runDevnet, waitUntilReady } from '../src/devnet/network.ts'
import { bundleDevnetEntry } from './bench/bundle.ts'
import { prepareNewcomers, sendTogether } from './bench/newcomers.ts'

export type Footprint = {
  restart: { listeningMs: number; readyMs: number; kzgLoadedAtStart: boolean }
  bundledRestart: { listeningMs: number; readyMs: number; rssMb: number }
  baselines: { nodeMs: number; tsxMs: number; tsxIdleRssMb: number }
  rssMb: { afterRestart: number; afterSealkey: number; afterDecisions: number; peak: number }
  decisions: number
  sealkeyCalls: number
  load: number
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
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

    async function restartOnce(env?: Record<string, string>) {
      await new Promise<void>((resolve) => {
        node.child.once('exit', () => resolve())
        node.child.kill('SIGTERM')
      })
      const started = performance.now()
      await devnet.restartNode(node, env ? { env } : {})
      const listeningMs = performance.now() - started
      await waitUntilReady(node, 60_000)
      return { listeningMs, readyMs: performance.now() - started }
    }
    const runs = []
    for (let i = 0; i < restarts; i++) runs.push(await restartOnce())
    const log = readFileSync(join(node.dir, 'node.log'), 'utf8').trim().split('\n')
    const listening = log.reverse().map((l) => { try { return JSON.parse(l) as { msg?: string; kzgLoaded?: boolean } } catch { return {} } }).find((l) => l.msg === 'listening')
    const restart = { listeningMs: median(runs.map((r) => r.listeningMs)), readyMs: median(runs.map((r) => r.readyMs)), kzgLoadedAtStart: listening?.kzgLoaded === true }

    // The same restarts from a bundle (no tsx loader): spawn → listening → ready, then back to the tsx entry.
    const bundle = await bundleDevnetEntry(root)
    const bundled = []
    let bundledRssMb = 0
    try {
      for (let i = 0; i < restarts; i++) {
        await new Promise<void>((resolve) => {
          if (node.child.exitCode !== null || node.child.signalCode !== null) return resolve()
          node.child.once('exit', () => resolve())
          node.child.kill('SIGTERM')
        })
        const started = performance.now()
        const child = spawn(process.execPath, [bundle, 'serve', '--measured', node.measuredPath, '--config', node.configPath], { stdio: ['ignore', 'pipe', 'ignore'] })
        const podUrl = await new Promise<string>((resolve, reject) => {
          createInterface({ input: child.stdout! }).on('line', (line) => {
            try {
              const entry = JSON.parse(line) as { msg?: string; podUrl?: string }
              if (entry.msg === 'listening' && entry.podUrl) resolve(entry.podUrl)
            } catch {
              // not a log line
            }
          })
          child.once('exit', (code) => reject(new Error(`bundled sidecar exited with ${code} during start-up`)))
        })
        const listeningMs = performance.now() - started
        await waitUntilReady({ podUrl, hostUrl: '', hostToken: '' }, 60_000)
        bundled.push({ listeningMs, readyMs: performance.now() - started })
        bundledRssMb = procStatus(child.pid!, 'VmRSS')
        // Stand in for node.child so the next stop (or restartNode) stops this one.
        node.child = child
      }
    } finally {
      rmSync(join(root, 'dist', 'bench'), { recursive: true, force: true })
    }
    await new Promise<void>((resolve) => {
      if (node.child.exitCode !== null || node.child.signalCode !== null) return resolve()
      node.child.once('exit', () => resolve())
      node.child.kill('SIGTERM')
    })
    await devnet.restartNode(node)
    await waitUntilReady(node, 60_000)
    const bundledRestart = { listeningMs: median(bundled.map((r) => r.listeningMs)), readyMs: median(bundled.map((r) => r.readyMs)), rssMb: bundledRssMb }

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
    const load = loadavg()[0]!

    const footprint: Footprint = {
      restart,
      bundledRestart,
      baselines: { nodeMs: median(nodeStarts), tsxMs: median(tsxStarts), tsxIdleRssMb },
      rssMb: { afterRestart, afterSealkey, afterDecisions, peak },
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
  print('')
  print(`| sidecar footprint (load average ${f.load.toFixed(1)} on 2 cores) | figure | target |`)
  print('|---|---|---|')
  print(`| restart from sealed state: spawn → listening (median of 3) | ${ms(f.restart.listeningMs)} | |`)
  print(`| restart from sealed state: spawn → /healthz ready | ${ms(f.restart.readyMs)} | ≤ 1.5 s${f.restart.readyMs > 1500 ? ' (MISSED)' : ''} |`)
  print(`| KZG setup loaded at start | ${f.restart.kzgLoadedAtStart ? 'yes' : 'no (on first blob)'} | no |`)
  print(`| same restart from an esbuild bundle (no tsx loader): spawn → listening / ready | ${ms(f.bundledRestart.listeningMs)} / ${ms(f.bundledRestart.readyMs)} | |`)
  print(`| baseline: bare node, spawn → first output | ${ms(f.baselines.nodeMs)} | |`)
  print(`| baseline: node --import tsx, empty module, spawn → first output | ${ms(f.baselines.tsxMs)} | |`)
  print(`| RSS after restart | ${mb(f.rssMb.afterRestart)} | |`)
  print(`| RSS after restart from the bundle | ${mb(f.bundledRestart.rssMb)} | |`)
  print(`| RSS after ${f.sealkeyCalls.toLocaleString('en')} GET /sealkey | ${mb(f.rssMb.afterSealkey)} | |`)
  print(`| RSS after ${f.decisions.toLocaleString('en')} onboarding decisions | ${mb(f.rssMb.afterDecisions)} | ≤ 150 MB${f.rssMb.afterDecisions > 150 ? ' (MISSED)' : ''} |`)
  print(`| RSS peak (VmHWM) | ${mb(f.rssMb.peak)} | |`)
  print(`| baseline: RSS of an idle node --import tsx | ${mb(f.baselines.tsxIdleRssMb)} | |`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const decisions = Number(process.env.BENCH_DECISIONS ?? 1000)
  await benchFootprint((line) => process.stdout.write(line + '\n'), { decisions })
}
