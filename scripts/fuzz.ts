// `npm run fuzz [-- --total N] [--seed S] [--only TEXT]`: every fuzz target of test/fuzz/targets.ts, 10^6 inputs in
// total by default, split by each target's share. Prints per target the inputs run, the inputs the fetch API itself
// could not carry (skipped), the rate, and a summary line; exits 1 on any counterexample, unhandled rejection or
// uncaught exception. The seed is printed so a failure replays exactly.
import fc from 'fast-check'
import { parseArgs } from 'node:util'
import { FUZZ_TARGETS } from '../test/fuzz/targets.ts'

const { values } = parseArgs({
  options: { total: { type: 'string', default: '1000000' }, seed: { type: 'string' }, only: { type: 'string' } },
})
const total = Number(values.total)
if (!Number.isSafeInteger(total) || total < 1) throw new Error('--total must be a positive integer')
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed)

let unhandled = 0
process.on('unhandledRejection', (reason) => {
  unhandled++
  console.error(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`)
})
process.on('uncaughtException', (error) => {
  unhandled++
  console.error(`uncaught exception: ${error.stack ?? String(error)}`)
})

console.log(`fuzz: ${total} inputs in total, seed ${seed}`)
let runs = 0
let skipped = 0
let failures = 0
const started = performance.now()
for (const target of FUZZ_TARGETS) {
  if (values.only !== undefined && !target.name.includes(values.only)) continue
  const numRuns = Math.max(1, Math.round(total * target.share))
  const { property, teardown } = await target.setup()
  const t0 = performance.now()
  // maxSkipsPerRun: requests the fetch API refuses to build (bad header bytes) are skipped, not failures.
  const details = await fc.check(property, { numRuns, seed, maxSkipsPerRun: 2, endOnFailure: true })
  const seconds = (performance.now() - t0) / 1000
  await teardown?.()
  runs += details.numRuns
  skipped += details.numSkips
  const rate = Math.round(details.numRuns / seconds)
  console.log(`  ${details.failed ? 'FAIL' : 'ok  '} ${target.name}: ${details.numRuns} inputs, ${details.numSkips} skipped, ${seconds.toFixed(1)} s (${rate}/s)`)
  if (details.failed) {
    failures++
    console.log(`       counterexample: ${fc.stringify(details.counterexample)}`)
    console.log(`       ${String((details.errorInstance as Error)?.message ?? details.errorInstance).split('\n').slice(0, 6).join('\n       ')}`)
  }
}
// Let any promise a handler left behind settle before counting.
await new Promise((resolve) => setTimeout(resolve, 200))
const seconds = (performance.now() - started) / 1000
console.log(
  `fuzz total: ${runs} inputs run (${skipped} skipped), ${failures} failing targets, ${unhandled} unhandled rejections/exceptions, ${seconds.toFixed(0)} s, seed ${seed}`,
)
process.exit(failures > 0 || unhandled > 0 ? 1 : 0)
