import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Hex } from 'viem'
import { checkPolicy, type TcbPolicy } from './policy.ts'
import { TCB_STATUS_BITS, type TcbStatus, type VerifiedQuote } from './types.ts'

const now = 1751328000
const measurementId: Hex = '0x8ee35132f2012859433fa8ab8a6b4515e0d1daaaa547214345f46bc18e0a8437'
const verified: VerifiedQuote = {
  teeType: 'tdx',
  status: 'UpToDate',
  advisoryIds: [],
  fmspc: '0xb0c06f000000',
  measurements: {},
  measurementId,
  measurementRaw: '0x01',
  reportData: new Uint8Array(64),
  collateralIssuedAt: now - 1000,
  tcbEvaluationDataNumber: 17,
}
const policy = (overrides: Partial<TcbPolicy> = {}): TcbPolicy => ({
  acceptedStatuses: 1 << TCB_STATUS_BITS.UpToDate,
  maxCollateralAge: 0,
  fmspcAllowlistOn: false,
  minTcbEvaluationDataNumber: 0,
  isFmspcAllowed: async (fmspc) => fmspc === '0xb0c06f000000',
  isMeasurementAllowed: async (id) => id === measurementId,
  ...overrides,
})

test('default: the default TCB policy accepts an UpToDate quote of an allowed measurement', async () => {
  assert.deepEqual(await checkPolicy(verified, policy(), now), { ok: true })
})

test('default: every status whose bit is set is accepted', async () => {
  for (const [status, bit] of Object.entries(TCB_STATUS_BITS)) {
    const quote = { ...verified, status: status as TcbStatus }
    assert.deepEqual(await checkPolicy(quote, policy({ acceptedStatuses: 1 << bit }), now), { ok: true }, status)
    assert.equal((await checkPolicy(quote, policy({ acceptedStatuses: 0x3f & ~(1 << bit) }), now)).ok, false, status)
  }
})

test('default: FMSPC allow-list on, FMSPC listed', async () => {
  assert.deepEqual(await checkPolicy(verified, policy({ fmspcAllowlistOn: true }), now), { ok: true })
})

test('default: collateral exactly maxCollateralAge old; bigint and number ages', async () => {
  assert.deepEqual(await checkPolicy(verified, policy({ maxCollateralAge: 1000n }), now), { ok: true })
  assert.deepEqual(await checkPolicy(verified, policy({ maxCollateralAge: 1000 }), now), { ok: true })
  // 0 is "no limit".
  assert.deepEqual(await checkPolicy({ ...verified, collateralIssuedAt: 0 }, policy({ maxCollateralAge: 0n }), now), { ok: true })
})

test('error: measurement_not_allowed', async () => {
  const other: Hex = `0x${'11'.repeat(32)}`
  assert.deepEqual(await checkPolicy({ ...verified, measurementId: other }, policy(), now), {
    ok: false,
    reason: 'measurement_not_allowed',
    message: `measurement ${other} is not allowed`,
  })
})

test('error: tcb_status_not_accepted', async () => {
  assert.deepEqual(await checkPolicy({ ...verified, status: 'SWHardeningNeeded' }, policy(), now), {
    ok: false,
    reason: 'tcb_status_not_accepted',
    message: 'TCB status SWHardeningNeeded is not accepted',
  })
})

test('error: Revoked is never accepted, whatever the mask', async () => {
  assert.deepEqual(await checkPolicy({ ...verified, status: 'Revoked' }, policy({ acceptedStatuses: 0xffff }), now), {
    ok: false,
    reason: 'tcb_status_not_accepted',
    message: 'TCB status Revoked is not accepted',
  })
})

test('error: fmspc_not_allowed', async () => {
  assert.deepEqual(await checkPolicy({ ...verified, fmspc: '0x00a067110000' }, policy({ fmspcAllowlistOn: true }), now), {
    ok: false,
    reason: 'fmspc_not_allowed',
    message: 'FMSPC 0x00a067110000 is not on the allow-list',
  })
  // Allow-list off: the FMSPC is not consulted.
  assert.deepEqual(await checkPolicy({ ...verified, fmspc: '0x00a067110000' }, policy(), now), { ok: true })
})

test('default: collateral at exactly the minimum TCB evaluation data number; 0 is no minimum', async () => {
  assert.deepEqual(await checkPolicy(verified, policy({ minTcbEvaluationDataNumber: 17 }), now), { ok: true })
  assert.deepEqual(await checkPolicy({ ...verified, tcbEvaluationDataNumber: 0 }, policy({ minTcbEvaluationDataNumber: 0 }), now), { ok: true })
})

test('error: tcb_evaluation_too_old', async () => {
  // An UpToDate rating from collateral older than the owner's minimum (an earlier TCB recovery) is not believed.
  assert.deepEqual(await checkPolicy(verified, policy({ minTcbEvaluationDataNumber: 18 }), now), {
    ok: false,
    reason: 'tcb_evaluation_too_old',
    message: 'collateral has TCB evaluation data number 17, the policy requires at least 18',
  })
})

test('error: collateral_too_old', async () => {
  assert.deepEqual(await checkPolicy(verified, policy({ maxCollateralAge: 999n }), now), {
    ok: false,
    reason: 'collateral_too_old',
    message: 'collateral issued 1000 s ago, the policy accepts at most 999 s',
  })
})

test('error: the measurement is checked first', async () => {
  const decision = await checkPolicy(
    { ...verified, measurementId: `0x${'11'.repeat(32)}`, status: 'Revoked', fmspc: '0x000000000000', collateralIssuedAt: 0 },
    policy({ fmspcAllowlistOn: true, maxCollateralAge: 1 }),
    now,
  )
  assert.equal(decision.ok || decision.reason, 'measurement_not_allowed')
})

test('error: invalid policy values', async () => {
  await assert.rejects(checkPolicy(verified, policy({ acceptedStatuses: 1.5 }), now), {
    name: 'RangeError',
    message: 'acceptedStatuses must be a uint16 bitmask, got 1.5',
  })
  await assert.rejects(checkPolicy(verified, policy({ acceptedStatuses: 0x10000 }), now), { name: 'RangeError' })
  await assert.rejects(checkPolicy(verified, policy({ maxCollateralAge: -1n }), now), {
    name: 'RangeError',
    message: 'maxCollateralAge must not be negative, got -1',
  })
  await assert.rejects(checkPolicy(verified, policy({ minTcbEvaluationDataNumber: -1 }), now), {
    name: 'RangeError',
    message: 'minTcbEvaluationDataNumber must be a uint32, got -1',
  })
})
