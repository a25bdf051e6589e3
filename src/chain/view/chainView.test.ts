// The chain view on a real anvil, in both modes, behind the lying RPC proxy of src/devnet/rpcProxy.ts. Headers come
// from test/unverifiedHeaders.ts (a test double standing in for the light client, which has its own tests): what is
// tested here is everything the view does with a header it was handed.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { encodeAbiParameters, fromRlp, keccak256, numberToHex, toRlp, type Hex } from 'viem'
import { startAnvil, type Anvil } from '../../devnet/anvil.ts'
import { startRpcProxy, type RpcProxy } from '../../devnet/rpcProxy.ts'
import { clientsFor, deployRegistryFixture, fundedAccount, type RegistryFixture } from '../../../test/registryFixture.ts'
import { unverifiedAnvilHeaders, type UnverifiedHeaderSource } from '../../../test/unverifiedHeaders.ts'
import { createChainView, type ChainView } from './chainView.ts'
import { ChainViewError, type ChainViewReason } from './errors.ts'
import { measurementSlot, slotHex } from './layout.ts'

const logger = pino({ level: 'silent' })

async function refused(promise: Promise<unknown>, reason: ChainViewReason, pattern?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ChainViewError, `expected a ChainViewError, got ${String(error)}`)
    assert.equal(error.reason, reason, error.message)
    if (pattern) assert.match(error.message, pattern)
    return true
  })
}

describe('chain view', () => {
  let anvil: Anvil
  let proxy: RpcProxy
  let fixture: RegistryFixture
  let codeHash: Hex
  let requestId: bigint
  let headers: UnverifiedHeaderSource
  const rogue = keccak256('0xbad0')

  before(async () => {
    anvil = await startAnvil()
    proxy = await startRpcProxy({ upstream: anvil.rpcUrl })
    fixture = await deployRegistryFixture(anvil.rpcUrl)
    requestId = (await fixture.requestOnboard(await fundedAccount(anvil.rpcUrl))).requestId
    codeHash = keccak256((await clientsFor(anvil.rpcUrl).publicClient.getCode({ address: fixture.address }))!)
    headers = unverifiedAnvilHeaders(anvil.rpcUrl)
  })
  after(async () => {
    await proxy?.close()
    await anvil?.stop()
  })

  const rpcOf = (url: string) => ({
    async request({ method, params }: { method: string; params?: unknown }) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
      const body = (await res.json()) as { result?: unknown; error?: { message: string } }
      if (body.error) throw new Error(body.error.message)
      return body.result
    },
  })
  const lightClientView = (overrides: Partial<Parameters<typeof createChainView>[0]> = {}): ChainView =>
    createChainView({ mode: 'light-client', headers, rpc: rpcOf(proxy.url), registry: fixture.address, registryCodeHash: codeHash, logger, ...overrides })
  const trustedView = (): ChainView => createChainView({ mode: 'trusted-rpc', rpc: rpcOf(proxy.url), registry: fixture.address, registryCodeHash: codeHash, logger })

  test('default: both modes read what the contract answers; status shows the verified head', async () => {
    for (const view of [lightClientView(), trustedView()]) {
      const state = await view.latest({ master: true, policy: true, requests: [requestId], measurements: [rogue] })
      assert.equal(state.master().xPub, await fixture.registry.xPub())
      // getRequest does not return the generation a request was answered under; it is 0 until answered.
      assert.deepEqual(state.request(requestId), { ...(await fixture.registry.getRequest(requestId)), generation: 0n })
      assert.deepEqual(state.tcbPolicy(), await fixture.registry.tcbPolicy())
      assert.equal(state.isMeasurementAllowed(rogue), false)
      const status = view.status()
      assert.equal(status.mode, view.mode)
      assert.equal(status.head?.blockNumber, state.block.blockNumber.toString())
      assert.equal(typeof status.lagSeconds, 'number')
      assert.equal(status.lastError, null)
    }
  })

  test('default: the view never goes back to an older header', async () => {
    const view = lightClientView()
    const now = await view.head()
    await clientsFor(anvil.rpcUrl).testClient.mine({ blocks: 2 })
    const later = await view.head()
    assert.equal(later.blockNumber, now.blockNumber + 2n)
    headers.override({ slot: 0n, beaconRoot: `0x${'00'.repeat(32)}`, blockNumber: now.blockNumber, blockHash: now.blockHash, stateRoot: now.stateRoot, timestamp: now.timestamp, finalized: true })
    try {
      assert.equal((await view.head()).blockHash, later.blockHash)
    } finally {
      headers.override(undefined)
    }
  })

  test('error: an RPC lying about isMeasurementAllowed and the slot behind it fools trusted-rpc, not the light-client view', async () => {
    const slot = slotHex(measurementSlot(rogue))
    const yes = encodeAbiParameters([{ type: 'bool' }], [true])
    proxy.hooks = {
      response(call, result) {
        const [first] = (call.params ?? []) as [{ data?: Hex } | Hex | undefined]
        if (call.method === 'eth_call' && typeof first === 'object' && first?.data?.startsWith('0x' + keccak256(Buffer.from('isMeasurementAllowed(bytes32)')).slice(2, 10))) return yes
        if (call.method === 'eth_getStorageAt' && (call.params as Hex[])[1] === slot) return numberToHex(1, { size: 32 })
        // The value an eth_getProof answer states beside its proof, too.
        if (call.method === 'eth_getProof') for (const e of (result as { storageProof: { key: Hex; value: Hex }[] }).storageProof) if (e.key === slot) e.value = '0x1'
        return result
      },
    }
    try {
      assert.equal(await fixture.registry.isMeasurementAllowed(rogue), false, 'anvil itself says no')
      const fooled = await trustedView().latest({ measurements: [rogue] })
      assert.equal(fooled.isMeasurementAllowed(rogue), true, 'the trusted-rpc view believes the lie (why it is devnet only)')
      const proven = await lightClientView().latest({ measurements: [rogue] })
      assert.equal(proven.isMeasurementAllowed(rogue), false)
    } finally {
      proxy.hooks = {}
    }
  })

  test('error: an altered storage proof, block, account leaf, or pinned code hash is refused with its reason', async () => {
    const view = () => lightClientView()
    const q = { master: true, requests: [requestId] }
    // A storage proof node changed.
    proxy.hooks = {
      response(call, result) {
        if (call.method !== 'eth_getProof') return result
        const r = result as { storageProof: { proof: Hex[] }[] }
        const p = r.storageProof[0]!.proof
        p[p.length - 1] = p.at(-1)!.replace(/..$/, (b) => (b === '00' ? '01' : '00')) as Hex
        return result
      },
    }
    await refused(view().latest(q), 'invalid_proof')
    // The block: the state root swapped for one the attacker controls.
    proxy.hooks = {
      response: (call, result) => (call.method === 'eth_getBlockByHash' ? { ...(result as object), stateRoot: keccak256('0x01') } : result),
    }
    await refused(view().head(), 'invalid_block', /hashes to/)
    const lying = view()
    await refused(lying.latest(q), 'invalid_block')
    assert.equal(lying.status().lastError?.reason, 'invalid_block')
    // The account leaf re-encoded with another code hash: the proof no longer leads to it.
    proxy.hooks = {
      response(call, result) {
        if (call.method !== 'eth_getProof') return result
        const r = result as { accountProof: Hex[]; codeHash: Hex }
        const leaf = fromRlp(r.accountProof.at(-1)!, 'hex') as [Hex, Hex]
        const account = fromRlp(leaf[1], 'hex') as Hex[]
        account[3] = keccak256('0x6000')
        r.accountProof[r.accountProof.length - 1] = toRlp([leaf[0], toRlp(account)])
        r.codeHash = keccak256('0x6000')
        return result
      },
    }
    await refused(view().latest(q), 'invalid_proof')
    proxy.hooks = {}
    // Honest RPC, but the measured settings pin another contract.
    await refused(lightClientView({ registryCodeHash: keccak256('0x6000') }).latest(q), 'registry_code_mismatch', /code hash/)
    await refused(lightClientView({ registry: '0x000000000000000000000000000000000000dEaD' }).latest(q), 'registry_code_mismatch', /no account/)
    assert.ok((await view().latest(q)).master().generation === 1n, 'honest again')
  })

  test('error: a view held back by the host times out as stale_chain_view', async () => {
    const view = lightClientView()
    const at = await view.head()
    headers.freeze()
    try {
      await clientsFor(anvil.rpcUrl).testClient.mine({ blocks: 1 })
      await refused(view.waitForBlock(at.blockNumber + 1n, { timeoutMs: 300, pollMs: 50 }), 'stale_chain_view', /did not reach block/)
    } finally {
      headers.release()
    }
    assert.ok((await view.waitForBlock(at.blockNumber + 1n, { timeoutMs: 5000, pollMs: 50 })).blockNumber > at.blockNumber)
  })

  test('error: no header at all is unverified_chain', async () => {
    const view = lightClientView({ headers: { latest: () => Promise.reject(new Error('beacon node unreachable')) } })
    await refused(view.head(), 'unverified_chain', /beacon node unreachable/)
    assert.equal(view.status().head, null)
  })
})
