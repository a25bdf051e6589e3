// Real `eth_getProof` answers from anvil, after real transactions (anvil_setStorageAt would change what older blocks
// prove), checked against the block's state root and decoded through the storage layout; then the same answers
// tampered with as a lying RPC would.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { keccak256, numberToHex, toRlp, type Address, type Hex } from 'viem'
import { startAnvil, type Anvil } from '../../devnet/anvil.ts'
import { keyManagerAbi } from '../keyManagerArtifact.ts'
import { clientsFor, deployRegistryFixture, fundedAccount, type RegistryFixture } from '../../../test/registryFixture.ts'
import { buildTrie } from '../../../test/referenceTrie.ts'
import { verifyAccountProof, verifyRegistryProof, type GetProofResponse } from './accountProof.ts'
import { ChainViewError, type ChainViewReason } from './errors.ts'
import { fmspcSlot, measurementSlot, requestSlot, slotHex, KEY_MANAGER_LAYOUT } from './layout.ts'
import { querySlots, registryState, type RegistryQuery } from './registryState.ts'

type Proof = GetProofResponse & { storageHash: Hex; storageProof: { key: Hex; value: Hex; proof: Hex[] }[]; accountProof: Hex[] }

function rejects(fn: () => unknown, reason: ChainViewReason, pattern?: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ChainViewError, `expected a ChainViewError, got ${String(error)}`)
    assert.equal(error.reason, reason, error.message)
    if (pattern) assert.match(error.message, pattern)
    return true
  })
}

describe('registry proofs from anvil', () => {
  let anvil: Anvil
  let fixture: RegistryFixture
  let clients: ReturnType<typeof clientsFor>
  let codeHash: Hex
  let requestId: bigint
  const allowed = keccak256('0x01') // not a real measurement: only its slot matters here
  const fmspc: Hex = '0x00906ed50000'

  before(async () => {
    anvil = await startAnvil()
    clients = clientsFor(anvil.rpcUrl)
    fixture = await deployRegistryFixture(anvil.rpcUrl)
    const newcomer = await fundedAccount(anvil.rpcUrl)
    requestId = (await fixture.requestOnboard(newcomer)).requestId
    const owner = clients.walletFor(fixture.owner)
    for (const [functionName, args] of [
      ['setTcbPolicy', [0b11, 86_400n, true]],
      ['setFmspc', [fmspc, true]],
      ['setMinTcbEvaluationDataNumber', [17]],
    ] as const) {
      const hash = await owner.writeContract({ address: fixture.address, abi: keyManagerAbi, functionName, args } as never)
      await clients.publicClient.waitForTransactionReceipt({ hash })
    }
    codeHash = keccak256((await clients.publicClient.getCode({ address: fixture.address }))!)
  })
  after(async () => {
    await anvil?.stop()
  })

  async function getProof(address: Address, slots: bigint[], blockNumber?: bigint): Promise<{ proof: Proof; stateRoot: Hex; blockNumber: bigint; timestamp: bigint }> {
    const block = await clients.publicClient.getBlock(blockNumber === undefined ? { blockTag: 'latest' } : { blockNumber })
    const proof = (await clients.publicClient.request({
      method: 'eth_getProof',
      params: [address, slots.map(slotHex), numberToHex(block.number)],
    } as never)) as Proof
    return { proof, stateRoot: block.stateRoot, blockNumber: block.number, timestamp: block.timestamp }
  }

  const query: RegistryQuery = { master: true, policy: true, requests: [1n], measurements: [allowed], fmspcs: [fmspc, '0x000000000001'] }

  test('default: every slot a decision reads verifies and decodes to what the contract answers', async () => {
    const query = { master: true, policy: true, requests: [requestId, 999n], measurements: [allowed], fmspcs: [fmspc, '0x000000000001' as Hex] }
    const slots = querySlots(query)
    const { proof, stateRoot, blockNumber, timestamp } = await getProof(fixture.address, slots)
    const { values, account } = verifyRegistryProof(proof, { stateRoot, address: fixture.address, codeHash, slots })
    assert.equal(account.codeHash, codeHash)
    for (const slot of slots) {
      const raw = await clients.publicClient.getStorageAt({ address: fixture.address, slot: slotHex(slot), blockNumber })
      assert.equal(values.get(slot), BigInt(raw ?? '0x0'), `slot ${slotHex(slot)}`)
    }
    const state = registryState({ blockNumber, timestamp }, query, values)
    const r = fixture.registry
    assert.equal(state.master().xPub, await r.xPub())
    assert.equal(state.master().generation, await r.generation())
    assert.equal(state.master().masterPubkey, await r.masterPubkey())
    assert.equal(state.requestTtl(), await r.requestTtl())
    assert.deepEqual(state.tcbPolicy(), await r.tcbPolicy())
    assert.deepEqual(state.tcbPolicy(), { acceptedStatuses: 3, maxCollateralAge: 86_400n, fmspcAllowlistOn: true, minTcbEvaluationDataNumber: 17 })
    // getRequest does not return the generation a request was answered under; it is 0 until answered.
    assert.deepEqual(state.request(requestId), { ...(await r.getRequest(requestId)), generation: 0n })
    assert.equal(state.request(requestId).status, 'pending')
    assert.deepEqual(state.request(999n), { ...(await r.getRequest(999n)), generation: 0n })
    assert.equal(state.isMeasurementAllowed(allowed), false)
    assert.equal(state.isFmspcAllowed(fmspc), await r.isFmspcAllowed(fmspc))
    assert.equal(state.isFmspcAllowed('0x000000000001'), false)
    assert.throws(() => state.request(2n), /not part of the query/)
  })

  test('default: a measurement is allowed from its activation time on, as the contract says', async () => {
    const owner = clients.walletFor(fixture.owner)
    const raw = `0x02${'11'.repeat(32)}${'22'.repeat(32)}00010002` as Hex
    const id = keccak256(raw)
    const hash = await owner.writeContract({ address: fixture.address, abi: keyManagerAbi, functionName: 'addMeasurement', args: [id, raw] } as never)
    await clients.publicClient.waitForTransactionReceipt({ hash })
    const q = { measurements: [id] }
    const { proof, stateRoot, blockNumber, timestamp } = await getProof(fixture.address, querySlots(q))
    const state = registryState({ blockNumber, timestamp }, q, verifyRegistryProof(proof, { stateRoot, address: fixture.address, codeHash, slots: querySlots(q) }).values)
    const onChain = await clients.publicClient.readContract({ address: fixture.address, abi: keyManagerAbi, functionName: 'measurementActivatesAt', args: [id], blockNumber } as never)
    assert.equal(state.measurementActivatesAt(id), onChain)
    assert.equal(state.measurementActivatesAt(id), timestamp) // measurementDelay 0: active from the block that added it
    assert.equal(state.isMeasurementAllowed(id), true)
    // One second before activation, at the same state, the measurement is not active yet.
    const early = registryState({ blockNumber, timestamp: timestamp - 1n }, q, verifyRegistryProof(proof, { stateRoot, address: fixture.address, codeHash, slots: querySlots(q) }).values)
    assert.equal(early.isMeasurementAllowed(id), false)
  })

  test('default: a slot set back to zero (a removed measurement) proves 0', async () => {
    const owner = clients.walletFor(fixture.owner)
    const raw = `0x02${'33'.repeat(32)}${'44'.repeat(32)}00010002` as Hex
    const id = keccak256(raw)
    for (const [functionName, args] of [
      ['addMeasurement', [id, raw]],
      ['removeMeasurement', [id]],
    ] as const) {
      const hash = await owner.writeContract({ address: fixture.address, abi: keyManagerAbi, functionName, args } as never)
      await clients.publicClient.waitForTransactionReceipt({ hash })
    }
    const q = { measurements: [id] }
    const { proof, stateRoot, blockNumber, timestamp } = await getProof(fixture.address, querySlots(q))
    const state = registryState({ blockNumber, timestamp }, q, verifyRegistryProof(proof, { stateRoot, address: fixture.address, codeHash, slots: querySlots(q) }).values)
    assert.equal(state.measurementActivatesAt(id), 0n)
    assert.equal(state.isMeasurementAllowed(id), false)
  })

  test('default: an account without code and an address with no account', async () => {
    const eoa = fixture.owner.address
    const { proof, stateRoot } = await getProof(eoa, [])
    const account = verifyAccountProof(stateRoot, eoa, proof.accountProof)
    assert.ok(account && account.nonce > 0n && account.balance > 0n)
    assert.equal(account.codeHash, keccak256('0x'))
    const nobody = '0x000000000000000000000000000000000000dEaD' as Address
    const none = await getProof(nobody, [])
    assert.equal(verifyAccountProof(none.stateRoot, nobody, none.proof.accountProof), null)
    rejects(() => verifyRegistryProof(none.proof, { stateRoot: none.stateRoot, address: nobody, codeHash, slots: [] }), 'registry_code_mismatch', /no account/)
  })

  test('error: a lying RPC: altered values, proofs, storage root, code hash, block', async () => {
    const slots = querySlots(query)
    const honest = await getProof(fixture.address, slots)
    const expected = { stateRoot: honest.stateRoot, address: fixture.address, codeHash, slots }
    const copy = (): Proof => structuredClone(honest.proof)
    // The values the RPC states beside its proofs are never read: changing them changes nothing.
    const claims = copy()
    for (const entry of claims.storageProof) entry.value = '0x1'
    claims.storageHash = keccak256('0x99')
    assert.deepEqual(verifyRegistryProof(claims, expected).values, verifyRegistryProof(honest.proof, expected).values)

    // A storage trie of the attacker's own, with its root as `storageHash`: refused, the root comes from the account.
    const xPubSlot = KEY_MANAGER_LAYOUT.xPub.slot
    const forged = buildTrie([{ key: Uint8Array.from(Buffer.from(keccak256(slotHex(xPubSlot)).slice(2), 'hex')), value: toRlp('0x1234', 'bytes') }])
    const forgedAnswer = copy()
    forgedAnswer.storageHash = forged.root
    forgedAnswer.storageProof.find((e) => BigInt(e.key) === xPubSlot)!.proof = forged.prove(Uint8Array.from(Buffer.from(keccak256(slotHex(xPubSlot)).slice(2), 'hex')))
    rejects(() => verifyRegistryProof(forgedAnswer, expected), 'invalid_proof')

    // One byte of a storage proof node.
    const flipped = copy()
    const entry = flipped.storageProof.find((e) => BigInt(e.key) === requestSlot(requestId))!
    entry.proof[entry.proof.length - 1] = entry.proof.at(-1)!.replace(/.$/, (c) => (c === '0' ? '1' : '0')) as Hex
    rejects(() => verifyRegistryProof(flipped, expected), 'invalid_proof')

    // Proofs swapped between two slots; a slot left out; a proof cut short to pass for "absent".
    const swapped = copy()
    const [first, second] = [swapped.storageProof[0]!, swapped.storageProof[1]!]
    ;[first.proof, second.proof] = [second.proof, first.proof]
    rejects(() => verifyRegistryProof(swapped, expected), 'invalid_proof')
    const missing = copy()
    missing.storageProof = missing.storageProof.filter((e) => BigInt(e.key) !== measurementSlot(allowed))
    rejects(() => verifyRegistryProof(missing, expected), 'invalid_proof', /no storage proof/)
    const cut = copy()
    const fmspcEntry = cut.storageProof.find((e) => BigInt(e.key) === fmspcSlot(fmspc))!
    fmspcEntry.proof = fmspcEntry.proof.slice(0, 1)
    rejects(() => verifyRegistryProof(cut, expected), 'invalid_proof')

    // The account proof changed; the pinned code hash differs; proofs of another block's state.
    const account = copy()
    account.accountProof[0] = account.accountProof[0]!.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')) as Hex
    rejects(() => verifyRegistryProof(account, expected), 'invalid_proof')
    rejects(() => verifyRegistryProof(honest.proof, { ...expected, codeHash: keccak256('0x6000') }), 'registry_code_mismatch', /code hash/)
    const earlier = await getProof(fixture.address, slots, honest.blockNumber - 2n)
    rejects(() => verifyRegistryProof(earlier.proof, expected), 'invalid_proof')
    rejects(() => verifyRegistryProof(null, expected), 'invalid_proof')
    rejects(() => verifyRegistryProof({ accountProof: 'nope' }, expected), 'invalid_proof')
  })
})
