import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { encodeAbiParameters, keccak256, type Address } from 'viem'
import { designatedIndex, escrowBatch, helperOrder, helperRank, orderMembers, turnDelayMs, type ScheduleMember } from './helperSchedule.ts'

const address = (n: number): Address => `0x${n.toString(16).padStart(40, '0')}`
/** Members whose address order differs from their id order. */
const members: ScheduleMember[] = [
  { memberId: 7n, key: address(0x30) },
  { memberId: 2n, key: address(0x10) },
  { memberId: 9n, key: address(0x20) },
  { memberId: 4n, key: address(0x40) },
]

test('default: members are ordered by node-key address', () => {
  assert.deepEqual(
    orderMembers(members).map((m) => m.memberId),
    [2n, 9n, 7n, 4n],
  )
})

test('vector: the designated index is keccak256(abi.encode(tag, batch)) mod n', () => {
  // Recomputed here from the formula in docs/protocol.md#help-schedule, not through the module.
  const seed = BigInt(keccak256(encodeAbiParameters([{ type: 'string' }, { type: 'uint256' }], ['keymanager.help-schedule.v1', 12n])))
  assert.equal(designatedIndex(12n, 4), Number(seed % 4n))
  // Pinned values (docs/protocol.md#help-schedule vector): batch 12 among 4 members, batch 1 among 5.
  assert.equal(designatedIndex(12n, 4), 2)
  assert.equal(designatedIndex(1n, 5), 1)
})

test('default: ranks of one batch are a permutation, the designated member first, the next by address after it', () => {
  for (let batch = 1n; batch <= 50n; batch++) {
    const ranks = members.map((m) => helperRank(batch, members, m.memberId))
    assert.deepEqual([...ranks].sort(), [0, 1, 2, 3], `batch ${batch}: ${ranks}`)
    const order = helperOrder(batch, members)
    order.forEach((m, k) => assert.equal(helperRank(batch, members, m.memberId), k))
    const ordered = orderMembers(members)
    const start = ordered.indexOf(ordered.find((m) => m.memberId === order[0]!.memberId)!)
    assert.equal(order[1]!.memberId, ordered[(start + 1) % ordered.length]!.memberId, 'the next in address order covers')
  }
})

test('property: any member set and batch give distinct ranks 0..n-1, independent of input order', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.record({ id: fc.bigInt({ min: 1n, max: 2n ** 64n }), key: fc.bigInt({ min: 1n, max: 2n ** 160n - 1n }) }), {
        minLength: 1,
        maxLength: 40,
        selector: (m) => m.id,
      }),
      fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }),
      (raw, batch) => {
        const set = raw.map(({ id, key }) => ({ memberId: id, key: `0x${key.toString(16).padStart(40, '0')}` as Address }))
        const ranks = set.map((m) => helperRank(batch, set, m.memberId))
        assert.deepEqual(
          [...ranks].sort((a, b) => a - b),
          set.map((_, i) => i),
        )
        const shuffled = [...set].reverse()
        assert.deepEqual(
          shuffled.map((m) => helperRank(batch, shuffled, m.memberId)),
          [...ranks].reverse(),
        )
      },
    ),
    { seed: 15, numRuns: 300 },
  )
})

test('default: over many batches every member is designated, none much more than the others', () => {
  const counts = new Map<bigint, number>()
  for (let batch = 1n; batch <= 4000n; batch++) {
    const first = helperOrder(batch, members)[0]!.memberId
    counts.set(first, (counts.get(first) ?? 0) + 1)
  }
  assert.equal(counts.size, members.length)
  for (const [id, n] of counts) assert.ok(n > 800 && n < 1200, `member ${id} designated ${n} times of 4000`)
})

test('default: a node that is not a proven member goes after every member', () => {
  assert.equal(helperRank(3n, members, null), 4)
  assert.equal(helperRank(3n, members, 99n), 4, 'a member id the view does not prove confirmed')
  assert.equal(helperRank(3n, [], null), 0, 'no members yet (the bootstrap node alone): it acts first')
  assert.deepEqual(helperOrder(3n, []), [])
})

test('default: a member listed twice counts once', () => {
  const twice = [...members, members[0]!]
  assert.deepEqual(
    members.map((m) => helperRank(5n, twice, m.memberId)),
    members.map((m) => helperRank(5n, members, m.memberId)),
  )
})

test('default: each rank waits one more turn; a dead designated helper costs one turn', () => {
  assert.equal(turnDelayMs(0, { gatherMs: 1500, turnMs: 4000 }), 1500)
  assert.equal(turnDelayMs(1, { gatherMs: 1500, turnMs: 4000 }), 5500)
  assert.equal(turnDelayMs(3, { gatherMs: 0, turnMs: 4000 }), 12_000)
})

test('error: bad arguments', () => {
  assert.throws(() => designatedIndex(1n, 0), /member count must be a positive integer, got 0/)
  assert.throws(() => designatedIndex(-1n, 3), /must not be negative/)
  assert.throws(() => turnDelayMs(-1, { gatherMs: 0, turnMs: 1 }), /rank must be a non-negative integer, got -1/)
  assert.throws(() => turnDelayMs(1.5, { gatherMs: 0, turnMs: 1 }), /rank must be a non-negative integer/)
})

test('default: an escrow batch is keccak256(abi.encode("keymanager.escrow-schedule.v1", set, generation)), one per generation and set', () => {
  const byHand = BigInt(keccak256(encodeAbiParameters([{ type: 'string' }, { type: 'uint64' }, { type: 'uint64' }], ['keymanager.escrow-schedule.v1', 2n, 3n])))
  assert.equal(escrowBatch(2n, 3n), byHand)
  assert.notEqual(escrowBatch(2n, 3n), escrowBatch(3n, 2n))
  assert.notEqual(escrowBatch(1n, 1n), escrowBatch(2n, 1n), 'a new guardian set has its own designated member')
})

test('error: an escrow batch of a zero or out-of-range set or generation', () => {
  assert.throws(() => escrowBatch(0n, 1n), /guardian set and generation must be positive, got 0 and 1/)
  assert.throws(() => escrowBatch(1n, 0n), /must be positive/)
  assert.throws(() => escrowBatch(1n, 1n << 64n), /uint64|range/i)
})
