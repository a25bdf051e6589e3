// The short slice of `npm run soak` (scripts/soak.ts): a few seconds of mixed pod routes against a pod listener in its
// own process. It checks that every answer is a 2xx and that RSS is sampled; the RSS slope is a figure for the soak's
// report over minutes, not something a few seconds can judge.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runSoak } from '../scripts/soak.ts'

test('default: a short soak over mixed pod routes answers every request with a 2xx', async () => {
  const r = await runSoak({ seconds: 5, rate: 100, sampleEveryMs: 1000 })
  assert.ok(r.requests > 0, 'requests were made')
  assert.equal(r.errors, 0, 'no connection error or timeout')
  assert.equal(r.non2xx, 0, `every answer a 2xx: ${JSON.stringify(r.statuses)}`)
  assert.ok(r.samples.length >= 2 && r.samples.every((s) => s.rssMb > 0), 'RSS sampled from /proc')
})
