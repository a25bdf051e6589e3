// createNode in process (test/inProcessNode.ts): real quotes, DCAP verification, KZG, envelopes, ECIES and SQLite;
// the chain is a map the test mines the node's unsigned transactions into. The attacks on `judge`
// (docs/protocol.md#help) each change one thing a lying host, RPC or blob source controls.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { randomBytes } from '@noble/hashes/utils.js'
import { bytesToHex, keccak256, type Hex } from 'viem'
import { requestCommitment, type OnboardRequest } from '../chain/registry.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { publicKey64 } from '../keys/signature.ts'
import {
  bootstrapped,
  FakeChain,
  fulfillTx,
  measurement,
  nodeOn,
  persistentSeal,
  platform,
  registerBlob,
  removeNodeDirs,
  TTL,
  unsigned,
} from '../../test/inProcessNode.ts'
import type { KeymanagerNode } from './node.ts'

after(removeNodeDirs)

async function refusal(helper: KeymanagerNode, request: OnboardRequest) {
  const [result] = await helper.help([request])
  assert.equal(result!.decision, 'refused', 'refused')
  return result as { reason: string; message: string }
}

test('default: bootstrap, register, help, complete and confirm in process; the newcomer holds the same master key', async () => {
  const { chain, helper } = await bootstrapped()
  const newcomer = nodeOn(chain)
  await newcomer.node.start()
  const registration = await newcomer.node.register()
  assert.equal(newcomer.node.state, 'registering')
  const request = chain.mineRequest(unsigned(registration))
  assert.equal(request.requester.toLowerCase(), registration.enckey.toLowerCase())

  const [result] = await helper.node.help([request])
  assert.equal(result!.decision, 'fulfilled')
  assert.deepEqual(chain.mineFulfill(fulfillTx(result)), [request.requestId])
  assert.equal(helper.stores.requests.get(request.requestId)!.decision, 'pending', 'handed to the host, not yet known sent')

  const done = await newcomer.node.complete(registration.enckey)
  assert.equal(newcomer.node.state, 'ready')
  assert.equal(done.xPub, chain.xPub)
  assert.equal(newcomer.node.master().address, helper.node.master().address)
  chain.mineConfirm(unsigned({ tx: (done.confirm as { tx: unknown }).tx }))
  assert.equal(chain.requests.get(request.requestId)!.status, 'confirmed')
})

test('default: a restart from sealed state is ready with the same master key; a sealed key of another chain is refused', async () => {
  const { chain, helper } = await bootstrapped()
  const seal = persistentSeal()
  const first = nodeOn(chain, { seal })
  await first.node.start()
  const registration = await first.node.register()
  const request = chain.mineRequest(unsigned(registration))
  chain.mineFulfill(fulfillTx((await helper.node.help([request]))[0]))
  await first.node.complete(registration.enckey)
  first.node.stop()
  first.db.close()

  const again = nodeOn(chain, { seal, dataDir: first.dir })
  await again.node.start()
  assert.equal(again.node.state, 'ready')
  assert.equal(again.node.master().address, chain.xPub)
  again.db.close()

  chain.xPub = '0x000000000000000000000000000000000000bEEF'
  const wrong = nodeOn(chain, { seal, dataDir: first.dir })
  await assert.rejects(wrong.node.start(), /does not match the master key the verified chain shows/)
  wrong.db.close()
})

test('default: one fulfillOnboard answers a batch; a bad request in it is refused and left out', async () => {
  const { chain, helper } = await bootstrapped()
  const good = [await registerBlob(chain), await registerBlob(chain)].map((b) => chain.addRequest(b.pubkey64, b.quoteBlobHash, b.refBlockNumber))
  const forged = await registerBlob(chain, { quoteFor: publicKey64(randomBytes(32)) })
  const bad = chain.addRequest(forged.pubkey64, forged.quoteBlobHash, forged.refBlockNumber)
  const results = await helper.node.help([good[0]!, bad, good[1]!])
  assert.deepEqual(
    results.map((r) => [r.requestId, r.decision]),
    [
      [bad.requestId, 'refused'],
      [good[0]!.requestId, 'fulfilled'],
      [good[1]!.requestId, 'fulfilled'],
    ],
  )
  const txs = new Set(results.filter((r) => r.decision === 'fulfilled').map((r) => JSON.stringify(fulfillTx(r))))
  assert.equal(txs.size, 1, 'one transaction for the batch')
  assert.deepEqual(chain.mineFulfill(fulfillTx(results[1])), [good[0]!.requestId, good[1]!.requestId])
  assert.equal(helper.stores.requests.get(bad.requestId)!.reason, 'report_data_mismatch')
})

test('security: judge refuses what a lying host, RPC or blob source shows it, and records why', async () => {
  const { chain, helper } = await bootstrapped()
  const cases: [string, () => Promise<OnboardRequest>][] = [
    ['unknown_request', async () => ({ ...(await honest()), requestId: 999n })],
    [
      'already_fulfilled',
      async () => {
        const r = await honest()
        chain.requests.get(r.requestId)!.status = 'fulfilled'
        return r
      },
    ],
    [
      'expired',
      async () => {
        const r = await honest()
        chain.head += TTL
        return r
      },
    ],
    // The host altered the event it relays: another blob than the one the contract committed to.
    ['event_mismatch', async () => ({ ...(await honest()), quoteBlobHash: (await registerBlob(chain)).quoteBlobHash })],
    // The blob source serves a valid blob, but not the one with this versioned hash.
    [
      'blob_hash_mismatch',
      async () => {
        const r = await honest()
        const other = chain.blobs.get((await registerBlob(chain)).quoteBlobHash)!
        chain.serve = (hash) => (hash === r.quoteBlobHash ? other : chain.blobs.get(hash))
        return r
      },
    ],
    // A bootstrap envelope (its quote binds a master key, not a request) replayed as a request's blob.
    ['bad_envelope', async () => fromBlob(await registerBlob(chain, { kind: 'bootstrap' }))],
    // The request names one key, the blob carries another (the commitment matches the request's key).
    [
      'pubkey_mismatch',
      async () => {
        const blob = await registerBlob(chain)
        return fromBlob({ ...blob, pubkey64: bytesToHex(publicKey64(randomBytes(32))) })
      },
    ],
    // A reorg replaced the reference block: the chain now records another hash than the quote binds.
    [
      'stale_reference',
      async () => {
        const blob = await registerBlob(chain)
        const r = chain.addRequest(blob.pubkey64, blob.quoteBlobHash, blob.refBlockNumber)
        const replaced = { ...r, refBlockHash: keccak256('0x01') }
        chain.requests.get(r.requestId)!.commitment = requestCommitment(replaced)
        return replaced
      },
    ],
    [
      'stale_reference',
      async () => {
        const blob = await registerBlob(chain, { refBlockNumber: chain.head - 60n })
        return fromBlob(blob)
      },
    ],
    // A genuine quote over another key: the newcomer's key would not be the one the TEE holds.
    ['report_data_mismatch', async () => fromBlob(await registerBlob(chain, { quoteFor: publicKey64(randomBytes(32)) }))],
    // A quote from a platform that does not lead to the trusted root.
    ['untrusted_root', async () => fromBlob(await registerBlob(chain, { quoteProvider: simulatedQuoteProvider({ measurement }) }))],
    // A genuine quote of a build the registry does not allow.
    [
      'measurement_not_allowed',
      async () => fromBlob(await registerBlob(chain, { quoteProvider: simulatedQuoteProvider({ platform, measurement: simulatedMeasurement('other-build') }) })),
    ],
  ]
  async function honest() {
    return fromBlob(await registerBlob(chain))
  }
  function fromBlob(blob: { pubkey64: Hex; quoteBlobHash: Hex; refBlockNumber: bigint }) {
    return chain.addRequest(blob.pubkey64, blob.quoteBlobHash, blob.refBlockNumber)
  }
  for (const [reason, make] of cases) {
    chain.serve = (hash) => chain.blobs.get(hash)
    const request = await make()
    const refused = await refusal(helper.node, request)
    assert.equal(refused.reason, reason, `${reason}: ${refused.message}`)
    const record = helper.stores.requests.get(request.requestId)
    if (reason !== 'unknown_request') assert.equal(record?.reason, reason, 'recorded with its reason')
  }
  chain.serve = (hash) => chain.blobs.get(hash)
  const [ok] = await helper.node.help([await honest()])
  assert.equal(ok!.decision, 'fulfilled', 'an honest request after all of these still passes')
})

test('error: help before the node is ready, complete of an unknown key, bootstrap twice', async () => {
  const chain = new FakeChain()
  const { node } = nodeOn(chain)
  await node.start()
  await assert.rejects(node.help([]), { name: 'KeymanagerError', code: 'not_ready' })
  await assert.rejects(node.register(), { code: 'conflict', message: 'the registry is not bootstrapped yet' })
  chain.mineBootstrap(unsigned(await node.bootstrap()))
  await node.bootstrap()
  await assert.rejects(node.bootstrap(), { code: 'conflict', message: 'node is already ready' })
  const other = nodeOn(chain)
  await other.node.start()
  await assert.rejects(other.node.bootstrap(), { code: 'conflict', message: 'the registry is already bootstrapped; use /register' })
  await assert.rejects(other.node.complete('0x000000000000000000000000000000000000bEEF'), { code: 'not_found' })
})

test('reorg: a request whose receipt a reorg took away leaves the node registering, never registering twice', async () => {
  const { chain } = await bootstrapped()
  // The node's view of its outbox: the request was mined (the outbox saw its receipt), then a reorg took the block,
  // so the receipt read that follows finds nothing. `replay` is what the outbox later makes of the replayed tx.
  const sent: { label: string; data: Hex; blobs?: Hex[] }[] = []
  let replay: 'open' | 'reverted' = 'open'
  let waitFails = false
  const entry = (i: number) => ({ id: i + 1, nonce: i, label: sent[i]!.label, params: { data: sent[i]!.data } })
  const outbox = {
    send: async (tx: { label: string; data: Hex; blobs?: Hex[] }) => ({ id: sent.push(tx), hash: keccak256(tx.data) }),
    waitForReceipt: async (id: number) => {
      if (waitFails) throw new Error(`transaction ${id} not mined within 120000 ms; it stays in the outbox`)
      return { id, hash: keccak256(sent[id - 1]!.data), blockNumber: chain.head, status: 'success' as const }
    },
    findSame: (label: string, data: Hex) => {
      const i = sent.findIndex((tx) => tx.label === label && tx.data === data)
      return i < 0 || replay === 'reverted' ? undefined : entry(i)
    },
    openEntries: () => [],
    entriesLabelled: (label: string) => sent.flatMap((tx, i) => (tx.label === label ? [entry(i)] : [])),
  }
  const publicClient = {
    ...chain.publicClient,
    getTransactionReceipt: async ({ hash }: { hash: Hex }) => {
      throw new Error(`Transaction receipt with hash "${hash}" could not be found. The Transaction may not be processed on a block yet.`)
    },
  }
  const walletClient = { account: { address: '0x00000000000000000000000000000000000000Aa' } }
  const newcomer = nodeOn(chain, { context: { outbox: outbox as never, walletClient: walletClient as never, publicClient: publicClient as never } })
  await newcomer.node.start()

  const registration = await newcomer.node.register()
  assert.equal(registration.requestId, null, 'no id without a receipt')
  assert.equal(newcomer.node.state, 'registering')
  assert.equal(newcomer.stores.registrations.latestOpen()!.address.toLowerCase(), registration.enckey.toLowerCase())
  assert.equal(newcomer.node.dropLostRegistration(), false, 'its tx is still in the outbox: the node waits for the replay')

  // The replay is mined: the watcher's record gives the id, and the registration goes on as usual.
  const request = chain.mineRequest(sent[0]!)
  assert.equal(newcomer.stores.cursor.latestRequestBy(registration.enckey)!.requestId, request.requestId)

  // A wait that fails outright (the receipt timed out) leaves the node registering too, with one registration.
  waitFails = true
  const second = nodeOn(chain, { context: { outbox: outbox as never, walletClient: walletClient as never, publicClient: publicClient as never } })
  await second.node.start()
  await assert.rejects(second.node.register(), /not mined within/)
  assert.equal(second.node.state, 'registering')
  const open = second.stores.registrations.latestOpen()!
  assert.equal(newcomer.node.dropLostRegistration(), false)
  // Its replay reverted: the registration is given up, once, and a new one may be made.
  replay = 'reverted'
  assert.equal(second.node.dropLostRegistration(), true)
  assert.equal(second.stores.registrations.latestOpen(), undefined, `${open.address} expired`)
  assert.equal(second.node.dropLostRegistration(), false)
})

test('security: a helper whose master key is no longer the verified chain\'s encrypts nothing (master_key_changed)', async () => {
  const { chain, helper } = await bootstrapped()
  const newcomer = nodeOn(chain)
  await newcomer.node.start()
  const request = chain.mineRequest(unsigned(await newcomer.node.register()))
  // The proven master-key slot names another key than this helper's M (its generation's record still matches, so
  // only the last check before encrypting sees it).
  chain.masterSlotXPub = '0x00000000000000000000000000000000000b0b00'
  const result = await refusal(helper.node, request)
  assert.equal(result.reason, 'master_key_changed', result.message)
  assert.match(result.message, /not this node's/)
  assert.equal(helper.stores.requests.get(request.requestId)!.reason, 'master_key_changed', 'recorded for /status')
  // Back to the node's own key, the same request is answered.
  chain.masterSlotXPub = undefined
  const [again] = await helper.node.help([request])
  assert.equal(again!.decision, 'fulfilled')
})

test('security: a newcomer refuses an answer when the verified chain gives its request to another key (not_our_request)', async () => {
  const { chain, helper } = await bootstrapped()
  const newcomer = nodeOn(chain)
  await newcomer.node.start()
  const registration = await newcomer.node.register()
  const request = chain.mineRequest(unsigned(registration))
  const [result] = await helper.node.help([request])
  chain.mineFulfill(fulfillTx(result))
  // The proven request slot names another key than this registration's (the event the host showed said ours).
  const stored = chain.requests.get(request.requestId)!
  const ours = stored.key
  stored.key = '0x00000000000000000000000000000000000b0b00'
  await assert.rejects(newcomer.node.complete(registration.enckey), /onboarding response refused \(not_our_request\)/)
  assert.notEqual(newcomer.node.state, 'ready', 'no secret taken')
  stored.key = ours
  const done = await newcomer.node.complete(registration.enckey)
  assert.equal(done.xPub, chain.xPub, 'the real answer is taken once the chain shows the request as ours')
})
