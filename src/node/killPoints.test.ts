import assert from 'node:assert/strict'
import { test } from 'node:test'
import { KILL_POINTS, killHookFromSpec } from './killPoints.ts'

test('default: the hook fires at the named point only, on its n-th time, once', () => {
  const fired: string[] = []
  const hook = killHookFromSpec('tx.fulfillOnboard.stored#2', (point) => fired.push(point))
  hook('tx.fulfillOnboard.sent')
  hook('tx.fulfillOnboard.stored')
  assert.deepEqual(fired, [])
  hook('tx.fulfillOnboard.stored')
  assert.deepEqual(fired, ['tx.fulfillOnboard.stored'])
  hook('tx.fulfillOnboard.stored')
  assert.equal(fired.length, 1)
  const first: string[] = []
  killHookFromSpec('bootstrap.pending-sealed', (p) => first.push(p))('bootstrap.pending-sealed')
  assert.deepEqual(first, ['bootstrap.pending-sealed'])
})

test('error: an unknown point or a bad count is refused, so a typo cannot make a crash test pass without a crash', () => {
  for (const spec of ['', 'bootstrap', 'tx.fulfillOnboard.queued', 'register.key-sealed#0', 'register.key-sealed#x', 'register.key-sealed#1#2'])
    assert.throws(() => killHookFromSpec(spec, () => undefined), /KEYMANAGER_KILL_AT: .* is not a kill point/, spec)
  assert.ok(KILL_POINTS.length >= 20)
  assert.equal(new Set(KILL_POINTS).size, KILL_POINTS.length)
})
