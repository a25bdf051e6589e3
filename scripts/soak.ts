// `npm run soak [-- --seconds 1800] [--rate 1000]`: a pod listener (scripts/bench/podServer.ts, its own process) under
// a fixed request rate over mixed routes (/sealkey for many pods, /attest, dstack GetKey, GetQuote, Info, Sign,
// Version), its RSS sampled from /proc every few seconds. Prints the RSS samples, the least-squares slope of RSS over
// time after the first tenth (warm-up: JIT, caches filling), the rate reached and every non-2xx. Defaults: 30 min at
// 1,000 req/s. test/soak.test.ts runs a few seconds of it in `npm test`.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

export type SoakResult = {
  seconds: number
  targetRate: number
  requests: number
  perSecond: number
  non2xx: number
  /** Answers by HTTP status. */
  statuses: Record<string, number>
  errors: number
  samples: { t: number; rssMb: number }[]
  /** MB per minute, least squares over the samples after the first tenth of the run. */
  slopeMbPerMin: number
}

/** The mixed routes: many pod names (the /sealkey cache is bounded), random-looking app data, every dstack route a pod uses. */
function soakRequests(): { method: string; path: string; headers: Record<string, string>; body?: string }[] {
  const out: { method: string; path: string; headers: Record<string, string>; body?: string }[] = []
  for (let i = 0; i < 64; i++) {
    const pod = { 'x-keymanager-pod': `pod-${i}` }
    const json = { ...pod, 'content-type': 'application/json' }
    const hex = (((i + 1) * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(8)
    out.push(
      { method: 'GET', path: '/sealkey', headers: pod },
      { method: 'GET', path: '/sealkey', headers: pod },
      { method: 'GET', path: `/attest/${hex}`, headers: pod },
      { method: 'POST', path: '/GetKey', headers: json, body: JSON.stringify({ path: `/wallet/${i}`, purpose: 'soak' }) },
      { method: 'POST', path: '/GetQuote', headers: json, body: JSON.stringify({ report_data: hex + hex.slice(0, 32) }) }, // 48 bytes: 32 or fewer are reserved for protocol quotes
      { method: 'POST', path: '/Info', headers: json, body: '{}' },
      { method: 'POST', path: '/Sign', headers: json, body: JSON.stringify({ algorithm: 'secp256k1', data: hex }) },
      { method: 'POST', path: '/Version', headers: json, body: '{}' },
    )
  }
  return out
}

function rssMb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match ? Number(match[1]) / 1024 : NaN
}

function slope(points: { t: number; rssMb: number }[]): number {
  const n = points.length
  if (n < 2) return 0
  const mt = points.reduce((a, p) => a + p.t, 0) / n
  const mr = points.reduce((a, p) => a + p.rssMb, 0) / n
  const num = points.reduce((a, p) => a + (p.t - mt) * (p.rssMb - mr), 0)
  const den = points.reduce((a, p) => a + (p.t - mt) ** 2, 0)
  return den === 0 ? 0 : (num / den) * 60
}

export async function runSoak({ seconds, rate, sampleEveryMs = 5000 }: { seconds: number; rate: number; sampleEveryMs?: number }): Promise<SoakResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'bench/podServer.ts')], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve))
    const { port, pid } = JSON.parse(line) as { port: number; pid: number }
    const samples: { t: number; rssMb: number }[] = []
    const start = performance.now()
    samples.push({ t: 0, rssMb: rssMb(pid) })
    const sampler = setInterval(() => samples.push({ t: (performance.now() - start) / 1000, rssMb: rssMb(pid) }), sampleEveryMs)
    const result = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: 16,
      duration: seconds,
      overallRate: rate,
      requests: soakRequests(),
    })
    clearInterval(sampler)
    samples.push({ t: (performance.now() - start) / 1000, rssMb: rssMb(pid) })
    const steady = samples.filter((s) => s.t >= seconds / 10)
    return {
      seconds: result.duration,
      targetRate: rate,
      requests: result.requests.total,
      perSecond: result.requests.total / result.duration,
      non2xx: result.non2xx,
      statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count])),
      errors: result.errors + result.timeouts,
      samples,
      slopeMbPerMin: slope(steady),
    }
  } finally {
    child.kill()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1800' }, rate: { type: 'string', default: '1000' } } })
  const seconds = Number(values.seconds)
  const rate = Number(values.rate)
  console.log(`soak: ${seconds} s at ${rate} req/s over mixed pod routes (scripts/bench/podServer.ts)`)
  const r = await runSoak({ seconds, rate, sampleEveryMs: Math.max(1000, Math.min(10_000, (seconds * 1000) / 60)) })
  console.log(`  RSS samples (s: MB): ${r.samples.map((s) => `${s.t.toFixed(0)}: ${s.rssMb.toFixed(1)}`).join(', ')}`)
  console.log(
    `soak result: ${r.seconds} s, ${r.requests} requests (${r.perSecond.toFixed(0)} req/s of ${r.targetRate} asked), ${r.non2xx} non-2xx (by status: ${JSON.stringify(r.statuses)}), ${r.errors} errors; ` +
      `RSS ${r.samples[0]!.rssMb.toFixed(1)} → ${r.samples.at(-1)!.rssMb.toFixed(1)} MB, slope after warm-up ${r.slopeMbPerMin.toFixed(3)} MB/min`,
  )
  process.exit(r.non2xx > 0 || r.errors > 0 ? 1 : 0)
}
