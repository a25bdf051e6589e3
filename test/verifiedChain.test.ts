// The verified chain view end to end (docs/protocol.md#verified-chain-view): a devnet whose nodes verify the chain with
// the light client (devnet beacon server) and storage proofs, and a host that lies through everything it controls:
// the RPC (src/devnet/rpcProxy.ts between a node and anvil), the beacon URL (withholding, a fork signed by other
// keys), and the answers a newcomer sees. Every refusal must carry its reason in /status, and the master secret must
// never be encrypted to the attacker's key: checked in every fulfillOnboard blob on chain and in the helpers' outboxes.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import {
  bytesToHex,
  concatBytes,
  createPublicClient,
  createWalletClient,
  encodeAbiParameters,
  encodeEventTopics,
  fromRlp,
  http,
  keccak256,
  numberToHex,
  pad,
  toFunctionSelector,
  toRlp,
  type Address,
  type Hex,
  type PublicClient,
} from 'viem'
import { foundry } from 'viem/chains'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { envelopeToBlobs } from '../src/chain/envelope.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { measurementSlot, slotHex } from '../src/chain/view/layout.ts'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { startDevnetBeacon, type DevnetBeacon } from '../src/devnet/beaconServer.ts'
import { devAccount, hostCall, runDevnet, type DevnetNodeInfo, type NodeProcess } from '../src/devnet/network.ts'
import { startRpcProxy, type JsonRpcCall, type RpcProxy } from '../src/devnet/rpcProxy.ts'
import { eciesEncrypt, onboardAad } from '../src/keys/ecies.ts'
import { encodeSecretsList } from '../src/keys/secretsList.ts'
import { addressOfPublicKey } from '../src/keys/signature.ts'
import { attackerKey, buildMeasurement, encryptedTo, fund, hostileRequest, type Attacker } from './attacker.ts'
import { all, freshnessTimeout, viaProxies } from './devnetNodes.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
type Status = {
  state: string
  xPub: Address | null
  requests: { requestId: string; decision: string; reason: string | null; message: string | null }[]
  registration: { enckey: Address; status: string; lastRefusal: { reason: string; message: string } | null } | null
  chainView: {
    mode: string
    head: { blockNumber: string; blockHash: Hex } | null
    lastError: { reason: string; message: string } | null
    lightClient?: { lastError: { reason: string; message: string } | null; source: string | null }
  }
}

const ROGUE = 'attacker-build'

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** POST /helper/:ref on `helper`: the 422 refusal (reason) or the decision. */
async function askHelp(helper: DevnetNodeInfo, ref: bigint | string) {
  const res = await fetch(`${helper.hostUrl}/helper/${ref}`, { method: 'POST', headers: { authorization: `Bearer ${helper.hostToken}` } })
  const body = (await res.json()) as { decision?: string; error?: { code: string; reason?: string; message: string } }
  return { status: res.status, reason: body.error?.reason, decision: body.decision, message: body.error?.message }
}

const statusOf = (node: DevnetNodeInfo) => hostCall<Status>(node, 'GET', '/status')

async function recordedReason(helper: DevnetNodeInfo, requestId: bigint) {
  return (await statusOf(helper)).requests.find((r) => r.requestId === requestId.toString())?.reason
}

const callData = (call: JsonRpcCall): Hex | undefined => {
  const tx = call.params?.[0] as { data?: Hex; input?: Hex } | undefined
  return tx?.data ?? tx?.input
}

describe('verified chain view: a hostile host lies through the RPC and the beacon URL', () => {
  let devnet: Devnet
  const lines: string[] = []
  const closers: (() => Promise<void>)[] = []
  let attacker: Attacker
  let rogueRequest: Awaited<ReturnType<typeof hostileRequest>>
  let rogueMeasurement: Awaited<ReturnType<typeof buildMeasurement>>

  before(async () => {
    devnet = await runDevnet({ nodes: 2, dir: mkdtempSync(join(tmpdir(), 'km-verified-')), print: (l) => lines.push(l) })
    attacker = attackerKey()
    rogueMeasurement = await buildMeasurement(ROGUE)
    // The attacker's own request: a genuine quote of a build the registry never allowed, bound to the attacker's key.
    rogueRequest = await hostileRequest(devnet, attacker, ROGUE)
  })
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => {})
    await devnet?.stop()
  })

  async function proxy(upstream: string): Promise<RpcProxy> {
    const p = await startRpcProxy({ upstream })
    closers.push(() => p.close())
    return p
  }

  const nodeIndex = (node: NodeProcess) => devnet.nodes.indexOf(node) + 1

  async function ownerCall(functionName: 'addMeasurement' | 'removeMeasurement', args: readonly unknown[]) {
    const hash = await devnet.owner.writeContract({ address: devnet.registry, abi: keyManagerAbi, functionName, args } as never)
    await devnet.publicClient.waitForTransactionReceipt({ hash })
  }

  test('default: nodes verify the chain with the light client; the devnet trust root is said out loud', async () => {
    assert.ok(devnet.beacon, 'the devnet runs its beacon server')
    assert.ok(lines.some((l) => l.includes('DEVNET TRUST ROOT') && l.includes(devnet.beacon!.checkpointRoot)), lines.join('\n'))
    for (const node of devnet.info.nodes) {
      const status = await statusOf(node)
      assert.equal(status.state, 'ready')
      assert.equal(status.chainView.mode, 'light-client')
      assert.ok(status.chainView.head && BigInt(status.chainView.head.blockNumber) > 0n)
    }
    const log = readFileSync(join(devnet.nodes[0]!.dir, 'node.log'), 'utf8')
    assert.match(log, /TRUSTING A DEVNET SYNC COMMITTEE/)
  })

  test('error: a lying RPC (allow-list answer, invented log, storage proof, block, code hash): each refused with its reason', async () => {
    const rpc = await proxy(devnet.anvil.rpcUrl)
    const helper = await devnet.addNode({ configure: viaProxies({ rpc: rpc.url }) })
    await devnet.onboard(helper, devnet.info.nodes[0]!)
    const id = rogueRequest.requestId
    const expectRefusal = async (ref: bigint | string, reason: string) => {
      const answer = await askHelp(helper, ref)
      assert.equal(answer.status, 422, JSON.stringify(answer))
      assert.equal(answer.reason, reason, answer.message)
      assert.equal(await recordedReason(helper, BigInt(ref)), reason)
    }

    // (a) isMeasurementAllowed says yes, and so do measurementActivatesAt, the slot and the value beside its proof.
    const slot = slotHex(measurementSlot(rogueMeasurement.measurementId))
    rpc.hooks = {
      response(call, result) {
        const data = call.method === 'eth_call' ? callData(call) : undefined
        if (data?.startsWith(toFunctionSelector('isMeasurementAllowed(bytes32)'))) return encodeAbiParameters([{ type: 'bool' }], [true])
        if (data?.startsWith(toFunctionSelector('measurementActivatesAt(bytes32)'))) return encodeAbiParameters([{ type: 'uint64' }], [1n])
        if (call.method === 'eth_getStorageAt' && (call.params as Hex[])[1] === slot) return numberToHex(1, { size: 32 })
        if (call.method === 'eth_getProof') for (const e of (result as { storageProof: { key: Hex; value: Hex }[] }).storageProof) if (e.key === slot) e.value = '0x1'
        return result
      },
    }
    await expectRefusal(id, 'measurement_not_allowed')

    // (b) invented OnboardRequested logs in the helper's log scan (its watcher reads every registry log of a block
    // range, docs/protocol.md#limits): a new request's event altered to carry another key, and a copy of it for a
    // request id that does not exist. The hook is on before the request is made, so the watcher only ever sees the lies.
    const topic = encodeEventTopics({ abi: keyManagerAbi, eventName: 'OnboardRequested' })[0]
    const other = attackerKey()
    const liar = (log: { topics: Hex[]; data: Hex; logIndex: Hex }, requestId: bigint) => ({
      ...log,
      topics: encodeEventTopics({ abi: keyManagerAbi, eventName: 'OnboardRequested', args: { requestId, requester: other.address } }) as Hex[],
      data: encodeAbiParameters(
        [{ type: 'bytes' }, { type: 'bytes32' }, { type: 'uint64' }, { type: 'bytes32' }],
        [bytesToHex(other.pubkey64), rogueRequest.quoteBlobHash, rogueRequest.refBlockNumber, rogueRequest.refBlockHash],
      ),
    })
    rpc.hooks = {
      response(call, result) {
        if (call.method !== 'eth_getLogs' || !Array.isArray(result)) return result
        return (result as { topics: Hex[]; data: Hex; logIndex: Hex }[]).flatMap((log) => {
          if (log.topics[0] !== topic || BigInt(log.topics[1]!) <= id) return [log]
          return [liar(log, BigInt(log.topics[1]!)), { ...liar(log, 999n), logIndex: numberToHex(BigInt(log.logIndex) + 1000n) }]
        })
      },
    }
    const secondKey = attackerKey()
    const second = await hostileRequest(devnet, secondKey, ROGUE)
    await expectRefusal(999n, 'unknown_request')
    await expectRefusal(second.requestId, 'event_mismatch')

    // (c) one node of every storage proof altered.
    rpc.hooks = {
      response(call, result) {
        if (call.method !== 'eth_getProof') return result
        for (const entry of (result as { storageProof: { proof: Hex[] }[] }).storageProof) {
          if (entry.proof.length === 0) continue
          entry.proof[entry.proof.length - 1] = entry.proof.at(-1)!.replace(/..$/, (b) => (b === '00' ? '01' : '00')) as Hex
        }
        return result
      },
    }
    await expectRefusal(id, 'invalid_proof')

    // (d) the block: a state root of the attacker's choosing.
    rpc.hooks = { response: (call, result) => (call.method === 'eth_getBlockByHash' && result ? { ...(result as object), stateRoot: keccak256('0x01') } : result) }
    await expectRefusal(id, 'invalid_block')
    assert.equal((await statusOf(helper)).chainView.lastError?.reason, 'invalid_block')

    // (e) the code hash: the account leaf re-encoded with another code hash (and the hash the RPC states beside it).
    rpc.hooks = {
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
    await expectRefusal(id, 'invalid_proof')

    // An honest RPC again: the helper still refuses the attacker, for the real reason, and serves a genuine request.
    rpc.hooks = {}
    await expectRefusal(id, 'measurement_not_allowed')
    const control = attackerKey()
    const genuine = await hostileRequest(devnet, control, 'devnet', 14)
    assert.equal((await askHelp(helper, genuine.requestId)).decision, 'fulfilled')

    // M never reached the attacker's key; the same scan finds the genuine answer (it can see what is there).
    const helpers = [1, 2, nodeIndex(helper as NodeProcess)]
    assert.deepEqual(await encryptedTo(devnet, attacker, helpers).then(({ onChain, inOutboxes }) => ({ onChain, inOutboxes })), { onChain: 0, inOutboxes: 0 })
    assert.deepEqual(await encryptedTo(devnet, other, helpers).then(({ onChain, inOutboxes }) => ({ onChain, inOutboxes })), { onChain: 0, inOutboxes: 0 })
    assert.deepEqual(await encryptedTo(devnet, secondKey, helpers).then(({ onChain, inOutboxes }) => ({ onChain, inOutboxes })), { onChain: 0, inOutboxes: 0 })
    const seen = await encryptedTo(devnet, control, helpers)
    assert.deepEqual([seen.onChain, seen.inOutboxes], [1, 1])
    const onboarded = await devnet.publicClient.getContractEvents({ address: devnet.registry, abi: keyManagerAbi, eventName: 'Onboarded', args: { requestId: id }, fromBlock: 0n })
    assert.equal(onboarded.length, 0)
  })

  test('error: a node whose measured settings pin another registry code refuses to start', async () => {
    await assert.rejects(
      devnet.addNode({
        configure: ({ measured }) => {
          measured.chainView.registryCodeHash = keccak256('0x6000')
        },
      }),
      /exited with code 1/,
    )
    const dir = join(devnet.devnetDir, `node${devnet.nodes.length + 1}`)
    assert.match(readFileSync(join(dir, 'node.log'), 'utf8'), /code hash is 0x[0-9a-f]{64}, the measured settings pin 0x/)
  })

  test('error: a fork holding the attacker\'s allow-list entry, its light-client data signed outside the committee: refused', async () => {
    const rpc = await proxy(devnet.anvil.rpcUrl)
    const beacon = await proxy(devnet.beacon!.url)
    const helper = await devnet.addNode({ configure: all(viaProxies({ rpc: rpc.url, beacon: beacon.url }), freshnessTimeout(8)) })
    await devnet.onboard(helper, devnet.info.nodes[0]!)

    // The fork: anvil from the real chain's head, where the (impersonated) owner allows the attacker's build.
    const fork: Anvil = await startAnvil({ chainId: foundry.id, extraArgs: ['--fork-url', devnet.anvil.rpcUrl] })
    closers.push(() => fork.stop())
    const forkClient = createPublicClient({ chain: { ...foundry, rpcUrls: { default: { http: [fork.rpcUrl] } } }, transport: http(fork.rpcUrl) }) as PublicClient
    const forkPoint = await forkClient.getBlockNumber({ cacheTime: 0 })
    const owner = devAccount(0).address
    await forkClient.request({ method: 'anvil_impersonateAccount', params: [owner] } as never)
    const impersonated = createWalletClient({ account: owner, chain: { ...foundry, rpcUrls: { default: { http: [fork.rpcUrl] } } }, transport: http(fork.rpcUrl) })
    const hash = await impersonated.writeContract({
      address: devnet.registry,
      abi: keyManagerAbi,
      functionName: 'addMeasurement',
      args: [rogueMeasurement.measurementId, rogueMeasurement.measurementRaw],
    } as never)
    await forkClient.waitForTransactionReceipt({ hash })
    const allowedOnFork = await forkClient.readContract({ address: devnet.registry, abi: keyManagerAbi, functionName: 'isMeasurementAllowed', args: [rogueMeasurement.measurementId] } as never)
    assert.equal(allowedOnFork, true, 'the fork holds the attacker\'s entry')

    // Light-client data for the fork from a beacon server with the devnet's validators root but other keys, at slots
    // past anything the helper has finalized, so the helper's light client does look at them.
    const real = devnet.beacon!
    const forkHead = await forkClient.getBlockNumber({ cacheTime: 0 })
    const forkBeacon: DevnetBeacon = await startDevnetBeacon({
      rpcUrl: fork.rpcUrl,
      genesisValidatorsRoot: real.chainSpec.genesisValidatorsRoot,
      anchorSlot: real.anchor.slot + Number(forkHead - real.anchor.blockNumber) + 16,
    })
    closers.push(() => forkBeacon.stop())

    rpc.upstream = fork.rpcUrl
    beacon.upstream = forkBeacon.url
    const answer = await askHelp(helper, rogueRequest.requestId)
    assert.equal(answer.status, 422, JSON.stringify(answer))
    assert.equal(answer.reason, 'stale_chain_view', answer.message)
    assert.equal(await recordedReason(helper, rogueRequest.requestId), 'stale_chain_view')
    const status = await statusOf(helper)
    assert.equal(status.chainView.lightClient?.lastError?.reason, 'invalid_update', JSON.stringify(status.chainView.lightClient))
    assert.ok(BigInt(status.chainView.head!.blockNumber) <= forkHead, 'the view never moved onto the fork')

    // Nothing for the attacker on either chain (the fork's own blocks: those before it are the real chain's), nor in
    // the helper's outbox.
    assert.deepEqual(await encryptedTo(devnet, attacker, [nodeIndex(helper)]).then((r) => [r.onChain, r.inOutboxes]), [0, 0])
    const onFork = await encryptedTo({ ...devnet, publicClient: forkClient } as never, attacker, [], { fromBlock: forkPoint + 1n })
    assert.equal(onFork.onChain, 0)
  })

  test('error: withholding: the host stops serving updates after a measurement is removed; the helper refuses stale_chain_view', async () => {
    const beacon = await proxy(devnet.beacon!.url)
    const helper = await devnet.addNode({ configure: all(viaProxies({ beacon: beacon.url }), freshnessTimeout(8)) })
    await devnet.onboard(helper, devnet.info.nodes[0]!)

    // A build the owner allows; a request of it with a key the attacker holds.
    const build = await buildMeasurement('soon-removed')
    await ownerCall('addMeasurement', [build.measurementId, build.measurementRaw])
    const victim = attackerKey()
    const request = await hostileRequest(devnet, victim, 'soon-removed', 15)
    // The helper's view covers the request while the build is allowed; then the host freezes it there.
    await until(async () => BigInt((await statusOf(helper)).chainView.head?.blockNumber ?? '0') >= request.blockNumber, 'helper view at the request')
    beacon.freeze()
    await ownerCall('removeMeasurement', [build.measurementId])

    const answer = await askHelp(helper, request.requestId)
    assert.equal(answer.status, 422, JSON.stringify(answer))
    assert.equal(answer.reason, 'stale_chain_view', answer.message)
    assert.equal(await recordedReason(helper, request.requestId), 'stale_chain_view')
    // Updates flow again: the view shows the removal, and the helper refuses for that.
    beacon.release()
    assert.equal((await askHelp(helper, request.requestId)).reason, 'measurement_not_allowed')
    assert.deepEqual(await encryptedTo(devnet, victim, [1, 2, nodeIndex(helper)]).then((r) => [r.onChain, r.inOutboxes]), [0, 0])
  })

  test('error: a newcomer whose RPC fakes Onboarded and xPub refuses the host\'s secret', async () => {
    const rpc = await proxy(devnet.anvil.rpcUrl)
    const newcomer = await devnet.addNode({ configure: viaProxies({ rpc: rpc.url }) })
    const reg = await hostCall<{ enckey: Address; pubkey64: Hex; requestId: string }>(newcomer, 'POST', '/register')
    const requestId = BigInt(reg.requestId)

    // The host's own master secret, encrypted to the newcomer's registration key, posted as a blob of its own.
    const fake = secp256k1.utils.randomSecretKey()
    const fakeXPub = addressOfPublicKey(secp256k1.getPublicKey(fake, false).subarray(1))
    const ciphertext = eciesEncrypt(
      concatBytes([new Uint8Array([4]), Buffer.from(reg.pubkey64.slice(2), 'hex')]),
      encodeSecretsList([{ generation: 1n, secret: fake }]),
      onboardAad({ chainId: foundry.id, registry: devnet.registry, requestId, generation: 1n }),
    )
    // The newcomer's watcher reads every registry log of a block range (docs/protocol.md#limits). While the host
    // posts its blob, it holds log reads back, so that the watcher first scans that block with the fake log in it.
    rpc.hooks = { request: (call) => (call.method === 'eth_getLogs' ? { error: { code: -32005, message: 'try again later' } } : undefined) }
    await fund(devnet, devAccount(16).address)
    const payer = createWalletClient({ account: devAccount(16), chain: devnet.chain, transport: http(devnet.anvil.rpcUrl) })
    const posted = await sendBlobTransaction({
      walletClient: payer,
      publicClient: devnet.publicClient,
      to: devAccount(17).address,
      blobs: envelopeToBlobs({ kind: 'onboard', generation: 1n, entries: [{ requestId, ciphertext }] }),
    })
    const onboardedTopic = encodeEventTopics({ abi: keyManagerAbi, eventName: 'Onboarded' })[0]
    const fakeLog = {
      address: devnet.registry,
      topics: encodeEventTopics({ abi: keyManagerAbi, eventName: 'Onboarded', args: { requestId } }),
      data: encodeAbiParameters([{ type: 'bytes32' }, { type: 'uint256' }], [posted.blobVersionedHashes[0]!, 0n]),
      blockNumber: numberToHex(posted.receipt.blockNumber),
      blockHash: posted.receipt.blockHash,
      transactionHash: posted.hash,
      transactionIndex: '0x0',
      logIndex: '0x0',
      removed: false,
    }
    rpc.hooks = {
      response(call, result) {
        const data = call.method === 'eth_call' ? callData(call) : undefined
        if (data?.startsWith(toFunctionSelector('xPub()'))) return encodeAbiParameters([{ type: 'address' }], [fakeXPub])
        const filter = call.method === 'eth_getLogs' ? (call.params?.[0] as { fromBlock?: Hex; toBlock?: Hex; topics?: (Hex | Hex[] | null)[] }) : undefined
        const first = filter?.topics?.[0]
        if (!filter || (first && ![first].flat().includes(onboardedTopic))) return result
        // The real answer's log is hidden; the host's own is shown in its place.
        const shown = (result as { topics: Hex[] }[]).filter((log) => !(log.topics[0] === onboardedTopic && BigInt(log.topics[1]!) === requestId))
        const block = posted.receipt.blockNumber
        const covers = (!filter.fromBlock || BigInt(filter.fromBlock) <= block) && (!filter.toBlock || !filter.toBlock.startsWith('0x') || BigInt(filter.toBlock) >= block)
        return covers ? [...shown, fakeLog] : shown
      },
    }
    const complete = async () => {
      const res = await fetch(`${newcomer.hostUrl}/register/${reg.enckey}`, { method: 'POST', headers: { authorization: `Bearer ${newcomer.hostToken}` } })
      return { status: res.status, body: await res.text() }
    }

    // Before any helper answered: the verified chain shows the request pending.
    const early = await complete()
    assert.equal(early.status, 502, early.body)
    assert.equal((await statusOf(newcomer)).registration?.lastRefusal?.reason, 'not_fulfilled')
    // A helper answers for real; the host hides that answer and points the newcomer at its own blob: not the proven
    // master key.
    assert.equal((await askHelp(devnet.info.nodes[0]!, requestId)).decision, 'fulfilled')
    const fooled = await complete()
    assert.equal(fooled.status, 502, fooled.body)
    const refused = await statusOf(newcomer)
    assert.equal(refused.registration?.lastRefusal?.reason, 'not_master_key')
    assert.equal(refused.state, 'registering')
    assert.equal((await fetch(`${newcomer.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': 'app' } })).status, 503)
    // The host stops lying: the newcomer looks for its request's answers again (its watcher had only the host's), the
    // genuine one is accepted, and the node holds the real master key.
    rpc.hooks = {}
    const genuine = await complete()
    assert.equal(genuine.status, 200, genuine.body)
    const ready = await statusOf(newcomer)
    assert.equal(ready.state, 'ready')
    assert.equal(ready.xPub?.toLowerCase(), (await devnet.publicClient.readContract({ address: devnet.registry, abi: keyManagerAbi, functionName: 'xPub' } as never) as Address).toLowerCase())
    assert.notEqual(ready.xPub?.toLowerCase(), fakeXPub.toLowerCase())
  })

  test('security: a host clock two years ahead or behind: decisions use verified chain time, the skew is logged', async () => {
    const year = 365 * 86_400
    for (const [offset, payer] of [
      [2 * year, 19],
      [-2 * year, 20],
    ] as const) {
      // With the host's clock, collateral would be long expired (ahead) or its certificates not yet valid (behind).
      const helper = await devnet.addNode({
        env: { NODE_OPTIONS: `--import ${new URL('./hostClock.mjs', import.meta.url).href}`, HOST_CLOCK_OFFSET_SECONDS: String(offset) },
      })
      await devnet.onboard(helper, devnet.info.nodes[0]!)
      const key = attackerKey()
      const request = await hostileRequest(devnet, key, 'devnet', payer)
      const answer = await askHelp(helper, request.requestId)
      assert.equal(answer.decision, 'fulfilled', JSON.stringify(answer))
      const log = readFileSync(join(helper.dir, 'node.log'), 'utf8')
      assert.match(log, /host clock and verified chain time disagree \(decisions use chain time\)/)
      const skew = log.split('\n').find((line) => line.includes('host clock and verified chain time disagree'))!
      const drift = (JSON.parse(skew) as { hostClockMinusChain: number }).hostClockMinusChain
      assert.ok(Math.abs(drift - offset) < 3600, `logged drift ${drift} for an offset of ${offset}`)
    }
  })

  test('default: a node restarts from its sealed light-client store, though the beacon node no longer serves its bootstrap', async () => {
    const node = devnet.nodes[1]!
    await new Promise<void>((resolve) => {
      node.child.once('exit', () => resolve())
      node.child.kill('SIGTERM')
    })
    let bootstrapAsked = 0
    const beacon = await proxy(devnet.beacon!.url)
    beacon.hooks = {
      http(path, answer) {
        if (!path.includes('/light_client/bootstrap/')) return answer
        bootstrapAsked++
        return { status: 404, body: '{"code":404,"message":"not found"}' }
      },
    }
    await devnet.restartNode(node, {
      configure: ({ host }) => {
        host.chain.beaconUrl = beacon.url
      },
    })
    const status = await statusOf(devnet.info.nodes[1]!)
    assert.equal(status.state, 'ready', 'the sealed secret matched the proven master key')
    assert.equal(status.chainView.lightClient?.source, 'sealed-store')
    assert.equal(bootstrapAsked, 0)
    assert.match(readFileSync(join(node.dir, 'node.log'), 'utf8'), /light client resumed from its sealed store/)
    // It keeps following the chain and still serves: it verifies and answers a new request.
    const key = attackerKey()
    const request = await hostileRequest(devnet, key, 'devnet', 18)
    assert.equal((await askHelp(devnet.info.nodes[1]!, request.requestId)).decision, 'fulfilled')
  })
})
