import assert from 'node:assert/strict'
import { test } from 'node:test'
import { alternate, rateRatioCell, timeRatioCell } from '../scripts/bench/ratio.ts'
import { benchScale } from '../scripts/bench-scale.ts'

test('default: rounds alternate which side goes first, and the ratio is the median of per-round ratios', async () => {
  const order: string[] = []
  const rates = { baseline: [100, 100, 50, 100, 100], subject: [50, 60, 45, 40, 55] }
  let b = 0
  let s = 0
  const paired = await alternate(
    5,
    () => (order.push('b'), rates.baseline[b++]!),
    () => (order.push('s'), rates.subject[s++]!),
  )
  assert.deepEqual(order, ['b', 's', 's', 'b', 'b', 's', 's', 'b', 'b', 's'])
  // Per-round ratios 0.5, 0.6, 0.9, 0.4, 0.55: the median is 0.55, whatever one slow baseline round did.
  assert.equal(paired.ratio, 0.55)
  assert.equal(paired.baseline, 100)
  assert.equal(paired.subject, 50)
})

test('error: a rate ratio above 1 or a time ratio below 1 is printed as a measurement error, never as a result', () => {
  assert.equal(rateRatioCell(0.62, 'bare hono', '≥ 0.5'), '0.62 of bare hono (target ≥ 0.5)')
  assert.match(rateRatioCell(1.23, 'raw signing'), /^MEASUREMENT ERROR: 1\.23 > 1\.00 of raw signing .*not a result\)$/)
  assert.match(rateRatioCell(Number.NaN, 'x'), /^MEASUREMENT ERROR/)
  assert.equal(timeRatioCell(3.5, '× the v0 proof'), '3.50 × the v0 proof')
  assert.match(timeRatioCell(0.8), /^MEASUREMENT ERROR: 0\.80 < 1\.00/)
})

test('error: the scale bench refuses a helper count, finality depth or block time out of range, before any devnet starts', async () => {
  for (const [helpers, depth, blockTime, message] of [
    [4, 0, 2, /^BENCH_FINALITY_DEPTH must be an integer ≥ 1, got 0$/],
    [4, Number.NaN, 2, /^BENCH_FINALITY_DEPTH must be an integer ≥ 1, got NaN$/],
    [0, 2, 2, /^BENCH_HELPERS must be an integer ≥ 1, got 0$/],
    [4, 2, -1, /^BENCH_BLOCK_TIME must be an integer ≥ 0 \(seconds; 0: automine\), got -1$/],
    [4, 2, 1.5, /^BENCH_BLOCK_TIME must be an integer ≥ 0 \(seconds; 0: automine\), got 1.5$/],
  ] as const) {
    await assert.rejects(benchScale(() => assert.fail('nothing is printed'), [1], helpers, depth, blockTime), { message })
  }
})
