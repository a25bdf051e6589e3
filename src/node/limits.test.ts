// The helper's spam limits in isolation: the per-requester refusal budget (src/node/judge.ts) and the round-robin
// by requester that auto mode batches with (src/node/auto.ts). End to end on a devnet: test/spam.test.ts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { interleaveByRequester, TEMPORARY_REFUSALS } from './auto.ts'
import { createRefusalBudget } from './judge.ts'

test('default: a requester gets its budget of refusals per window; others and the next window are not affected', () => {
  const budget = createRefusalBudget({ count: 3, windowSeconds: 600 })
  const a = '0x00000000000000000000000000000000000000Aa'
  for (let i = 0; i < 3; i++) {
    assert.equal(budget.allowed(a, 1000 + i), true)
    budget.spend(a, 1000 + i)
  }
  assert.equal(budget.allowed(a, 1010), false)
  assert.equal(budget.allowed(a.toLowerCase(), 1010), false, 'the address is one key whatever its case')
  assert.equal(budget.allowed('0x00000000000000000000000000000000000000bb', 1010), true)
  assert.equal(budget.allowed(a, 1599), false)
  assert.equal(budget.allowed(a, 1600), true, 'a new window')
})

test('default: asking spends nothing (a served request costs its requester nothing)', () => {
  const budget = createRefusalBudget({ count: 1, windowSeconds: 60 })
  for (let i = 0; i < 100; i++) assert.equal(budget.allowed('0x01', 5), true)
  budget.spend('0x01', 5)
  assert.equal(budget.allowed('0x01', 5), false)
})

test('bounds: the budget remembers at most maxKeys requesters, the oldest windows going first', () => {
  const budget = createRefusalBudget({ count: 1, windowSeconds: 600 }, 100)
  for (let i = 0; i < 150; i++) budget.spend(`0x${i.toString(16)}`, 1)
  assert.equal(budget.allowed('0x0', 2), true, 'forgotten')
  assert.equal(budget.allowed(`0x${(149).toString(16)}`, 2), false, 'remembered')
})

test('security: a flood from one requester never keeps another requester out of the batch', () => {
  const flood = Array.from({ length: 10_000 }, (_, i) => ({ requestId: BigInt(i + 1), requester: '0xSPAM' }))
  const newcomer = { requestId: 10_001n, requester: '0xNEW' }
  const batch = interleaveByRequester([...flood, newcomer], 50)
  assert.equal(batch.length, 50)
  assert.deepEqual(batch.slice(0, 2), [flood[0], newcomer])
  assert.deepEqual(batch.slice(2).map((r) => r.requestId), Array.from({ length: 48 }, (_, i) => BigInt(i + 2)), 'the rest in order')
  assert.deepEqual(interleaveByRequester([], 50), [])
  assert.deepEqual(
    interleaveByRequester([{ requester: 'a', n: 1 }, { requester: 'a', n: 2 }, { requester: 'b', n: 3 }, { requester: 'A', n: 4 }], 10).map((r) => r.n),
    [1, 3, 2, 4],
  )
})

test('default: the temporary refusals are exactly the "not now" reasons', () => {
  assert.deepEqual([...TEMPORARY_REFUSALS].sort(), ['collateral_unavailable', 'measurement_not_yet_active', 'rate_limited'])
})
