// The fixed-seed slice of `npm run fuzz` (test/fuzz/targets.ts): every target, a few thousand inputs in all.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { FUZZ_TARGETS } from './fuzz/targets.ts'

const SEED = 20261129
const TOTAL = 4000

let unhandled: unknown[] = []
process.on('unhandledRejection', (reason) => unhandled.push(reason))

for (const target of FUZZ_TARGETS) {
  test(`fuzz: ${target.name}`, async () => {
    unhandled = []
    const { property, teardown } = await target.setup()
    try {
      // A failure throws with the counterexample and the seed, so it replays with `npm run fuzz -- --seed`.
      await fc.assert(property, { numRuns: Math.max(10, Math.round(TOTAL * target.share)), seed: SEED, maxSkipsPerRun: 2 })
    } finally {
      await teardown?.()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.deepEqual(unhandled, [], 'no unhandled rejection')
  })
}
