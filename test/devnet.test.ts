// End to end on a real anvil with real blobs, real SQLite and real HTTP between separate sidecar processes;
// only the TEE is simulated (docs/protocol.md#tee-providers). The walk-through, then the refusals of docs/protocol.md#help.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, createWalletClient, hexToBytes, http, type Address, type Hex } from 'viem'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { envelopeToBlobs } from '../src/chain/envelope.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { DEVNET_MEASUREMENT_LABEL, devAccount, hostCall, runDevnet, waitUntilReady, type DevnetNodeInfo } from '../src/devnet/network.ts'
import { blobSources, collateralIssuedAt, platform, rogueBuild } from './devnetNodes.ts'
import { onboardRequestsOn } from './chainChecks.ts'
import { runPolicy } from '../src/cli/policy.ts'
import { registerReportData } from '../src/keys/reportData.ts'
import { addressOfPublicKey } from '../src/keys/signature.ts'
import { DEVNET_FMSPC } from '../src/devnet/pki.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { foundry } from 'viem/chains'
import { runAudit } from '../src/cli/audit.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

async function getJson(url: string, init?: RequestInit) {
  const res = await fetch(url, init)
  const text = await res.text()
  return { status: res.status, text, body: JSON.parse(text) as Record<string, any> }
}

async function refusal(helper: DevnetNodeInfo, requester: Address | string) {
  const res = await fetch(`${helper.hostUrl}/helper/${requester}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${helper.hostToken}` },
  })
  const body = (await res.json()) as { error: { code: string; reason: string; requestId: string } }
  return { status: res.status, ...body.error }
}

async function statusReason(helper: DevnetNodeInfo, requestId: string) {
  const status = await hostCall<{ requests: { requestId: string; decision: string; reason: string }[] }>(helper, 'GET', '/status')
  return status.requests.find((r) => r.requestId === requestId)
}

describe('devnet: onboarding end to end', () => {
  let devnet: Devnet
  const lines: string[] = []

  before(async () => {
    devnet = await runDevnet({ nodes: 3, dir: mkdtempSync(join(tmpdir(), 'km-devnet-')), print: (l) => lines.push(l) })
  })
  after(async () => {
    await devnet?.stop()
  })

  test('default: every node holds the master key; sealkeys agree; attestations verify on chain', async () => {
    assert.equal(devnet.info.nodes.length, 3)
    assert.equal(await devnet.verify(), true, lines.join('\n'))
    const registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    const xPub = await registry.xPub()
    for (const node of devnet.info.nodes) {
      const status = await hostCall<{ state: string; xPub: Address; generation: number; chainView: { mode: string; head: { blockNumber: string } | null } }>(node, 'GET', '/status')
      assert.equal(status.state, 'ready')
      // The walk-through ran on the verified chain view: light-client headers from the devnet beacon chain.
      assert.equal(status.chainView.mode, 'light-client')
      assert.ok(status.chainView.head !== null && BigInt(status.chainView.head.blockNumber) > 0n, 'a verified header')
      assert.equal(status.xPub.toLowerCase(), xPub.toLowerCase())
      assert.equal(status.generation, 1)
    }
    const a = await getJson(`${devnet.info.nodes[1]!.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': 'app' } })
    const b = await getJson(`${devnet.info.nodes[2]!.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': 'app' } })
    const c = await getJson(`${devnet.info.nodes[2]!.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': 'db' } })
    assert.equal(a.body.key, b.body.key)
    assert.notEqual(a.body.key, c.body.key)
    assert.match(a.body.key, /^0x[0-9a-f]{64}$/)
    assert.match(a.body.appId, /^0x[0-9a-f]{40}$/)
    // An attestation for one pod does not verify under another pod's hostname.
    const appData = '0x' + '11'.repeat(32)
    const att = await getJson(`${devnet.info.nodes[1]!.podUrl}/attest/${appData.slice(2)}`, { headers: { 'x-keymanager-pod': 'app' } })
    assert.equal(att.body.signer.toLowerCase(), xPub.toLowerCase())
    assert.equal(await registry.verifyAttestation('app', appData as Hex, att.body.signature), true)
    assert.equal(await registry.verifyAttestation('db', appData as Hex, att.body.signature), false)
  })

  test('default: a ready node restarts without loading the KZG setup (it loads on the first blob made or checked)', async () => {
    const node = devnet.nodes[2]!
    await new Promise<void>((resolve) => {
      node.child.once('exit', () => resolve())
      node.child.kill('SIGTERM')
    })
    await devnet.restartNode(node)
    await waitUntilReady(node)
    const listening = readFileSync(join(node.dir, 'node.log'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"msg":"listening"'))
      .map((line) => JSON.parse(line) as { kzgLoaded: boolean })
    assert.equal(listening.length, 2, 'started twice')
    assert.equal(listening[1]!.kzgLoaded, false)
  })

  test('error: a newcomer whose measurement is not allowed gets nothing', async () => {
    const rogue = await devnet.addNode({ configure: rogueBuild('unreviewed-build') })
    const reg = await hostCall<{ enckey: Address; requestId: string }>(rogue, 'POST', '/register')
    const helper = devnet.info.nodes[0]!
    const refused = await refusal(helper, reg.enckey)
    assert.equal(refused.status, 422)
    assert.equal(refused.reason, 'measurement_not_allowed')
    const recorded = await statusReason(helper, reg.requestId)
    assert.equal(recorded?.reason, 'measurement_not_allowed')
    // The refused build is named by its measurement id, so an operator can see what was turned away.
    assert.match((recorded as { measurementId?: string } | undefined)?.measurementId ?? '', /^0x[0-9a-f]{64}$/)
    const done = await fetch(`${rogue.hostUrl}/register/${reg.enckey}`, { method: 'POST', headers: { authorization: `Bearer ${rogue.hostToken}` } })
    assert.equal(done.status, 409)
    assert.equal((await getJson(`${rogue.podUrl}/sealkey`, { headers: { 'x-keymanager-pod': 'app' } })).status, 503)
  })

  /** Sends requestOnboard as a malicious host would, with a chosen key, quote and reference block. */
  async function hostileRequest(args: { pubkey64: Uint8Array; quoteKey: Uint8Array; refAge: bigint; quoteDigest?: Uint8Array; envelopeDigest?: Uint8Array }) {
    const digest = new Uint8Array(32).fill(0x5e)
    const wallet = createWalletClient({ account: devAccount(12), chain: { ...foundry, rpcUrls: { default: { http: [devnet.anvil.rpcUrl] } } }, transport: http(devnet.anvil.rpcUrl) })
    const head = await devnet.publicClient.getBlockNumber({ cacheTime: 0 })
    const ref = await devnet.publicClient.getBlock({ blockNumber: head - args.refAge })
    // A genuine platform of this devnet (its PCK chain verifies), run by a malicious host.
    const provider = simulatedQuoteProvider({ platform: devnet.pki.mintPlatform(), measurement: simulatedMeasurement('devnet') })
    const quote = await provider.getQuote(
      registerReportData({
        chainId: foundry.id,
        registry: devnet.registry,
        pubkey64: args.quoteKey,
        refBlockNumber: ref.number,
        refBlockHash: ref.hash,
        settingsDigest: args.quoteDigest ?? digest,
      }),
    )
    const blobs = envelopeToBlobs({
      kind: 'register',
      teeType: 'tdx',
      quote,
      pubkey64: args.pubkey64,
      refBlockNumber: ref.number,
      refBlockHash: hexToBytes(ref.hash),
      settingsDigest: args.envelopeDigest ?? digest,
    })
    const registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    await sendBlobTransaction({ walletClient: wallet, publicClient: devnet.publicClient, to: devnet.registry, data: registry.calldata.requestOnboard(bytesToHex(args.pubkey64), ref.number), blobs })
    const [request] = await onboardRequestsOn(devnet.publicClient, devnet.registry, { requester: addressOfPublicKey(args.pubkey64) })
    return request!
  }

  test('error: a quote binding another key than the request gets nothing', async () => {
    const victim = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    const attacker = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    // The quote binds `victim`, the request and envelope carry `attacker`: the helper must not encrypt to it.
    const request = await hostileRequest({ pubkey64: attacker, quoteKey: victim, refAge: 1n })
    const refused = await refusal(devnet.info.nodes[0]!, request.requestId.toString())
    assert.equal(refused.reason, 'report_data_mismatch')
    assert.equal((await statusReason(devnet.info.nodes[0]!, request.requestId.toString()))?.reason, 'report_data_mismatch')
  })

  test('error: an envelope that names other settings than the quote binds gets nothing', async () => {
    const key = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    // Report data v2 binds the newcomer's settingsDigest: a host cannot pass a quote off as made under other settings.
    const request = await hostileRequest({ pubkey64: key, quoteKey: key, refAge: 1n, quoteDigest: new Uint8Array(32).fill(1), envelopeDigest: new Uint8Array(32).fill(2) })
    const refused = await refusal(devnet.info.nodes[0]!, request.requestId.toString())
    assert.equal(refused.reason, 'report_data_mismatch')
  })

  test('error: a stale reference block gets nothing', async () => {
    await devnet.publicClient.request({ method: 'anvil_mine' as never, params: ['0x64'] as never })
    const key = secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)
    const request = await hostileRequest({ pubkey64: key, quoteKey: key, refAge: 100n })
    const refused = await refusal(devnet.info.nodes[1]!, request.requestId.toString())
    assert.equal(refused.reason, 'stale_reference')
    assert.equal((await statusReason(devnet.info.nodes[1]!, request.requestId.toString()))?.reason, 'stale_reference')
  })

  test('error: a tampered blob (versioned-hash mismatch) gets nothing', async () => {
    // A helper whose blob source lies: a proxy in front of anvil that flips one byte once switched on.
    let tamper = false
    const proxy: Server = createServer(async (req, res) => {
      const upstream = await fetch(devnet.anvil.rpcUrl + (req.url ?? '/'), {
        method: req.method,
        headers: { 'content-type': 'application/json' },
        body: req.method === 'POST' ? await new Response(req as any).text() : undefined,
      })
      let text = await upstream.text()
      if (tamper && req.url?.startsWith('/eth/v1/beacon/blobs')) text = text.replace(/"0x00/, '"0x01')
      res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text)
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
    try {
      const port = (proxy.address() as { port: number }).port
      const lying = await devnet.addNode({ configure: blobSources(`http://127.0.0.1:${port}`) })
      await devnet.onboard(lying, devnet.info.nodes[0]!)
      tamper = true
      const newcomer = await devnet.addNode()
      const reg = await hostCall<{ enckey: Address; requestId: string }>(newcomer, 'POST', '/register')
      const refused = await refusal(lying, reg.enckey)
      assert.equal(refused.reason, 'blob_hash_mismatch')
      assert.equal((await statusReason(lying, reg.requestId))?.reason, 'blob_hash_mismatch')
      // An honest helper still serves the same request.
      const helped = await hostCall<{ decision: string }>(devnet.info.nodes[0]!, 'POST', `/helper/${reg.enckey}`)
      assert.equal(helped.decision, 'fulfilled')
    } finally {
      proxy.close()
    }
  })

  test('error: bad input on every route is a 4xx JSON error, never a 5xx or a stack trace', async () => {
    const node = devnet.info.nodes[0]!
    const auth = { authorization: `Bearer ${node.hostToken}` }
    const pod = { 'x-keymanager-pod': 'app' }
    const cases: [string, string, RequestInit, number][] = [
      ['pod', '/attest/zz', { headers: pod }, 400],
      ['pod', '/attest/0x1234', { headers: pod }, 400],
      ['pod', `/attest/${'ab'.repeat(33)}`, { headers: pod }, 400],
      ['pod', `/attest/0x${'g'.repeat(64)}`, { headers: pod }, 400],
      ['pod', '/sealkey', { headers: { 'x-keymanager-pod': 'Not A Name!' } }, 400],
      ['pod', '/sealkey', { headers: { 'x-keymanager-pod': 'a'.repeat(300) } }, 400],
      ['pod', '/nope', {}, 404],
      ['host', '/status', {}, 401],
      ['host', '/status', { headers: { authorization: 'Bearer wrong-token-wrong-token' } }, 401],
      ['host', '/status', { headers: { authorization: node.hostToken } }, 401],
      ['host', '/helper/abc', { headers: auth }, 400],
      ['host', '/helper/0', { headers: auth }, 400],
      ['host', `/helper/${'9'.repeat(80)}`, { headers: auth }, 400],
      ['host', '/helper/99999', { headers: auth }, 404],
      ['host', `/helper/0x${'12'.repeat(20)}`, { headers: auth }, 404],
      ['host', '/register/0x1234', { method: 'POST', headers: auth }, 400],
      ['host', `/register/0x${'12'.repeat(20)}`, { method: 'POST', headers: auth }, 409],
      ['host', '/register', { method: 'POST', headers: auth, body: 'x'.repeat(100_000) }, 413],
      ['host', '/bootstrap', { method: 'POST', headers: auth }, 409],
      ['host', '/blobs/0x1234', { headers: auth }, 400],
      ['host', `/blobs/0x02${'00'.repeat(31)}`, { headers: auth }, 400],
      ['host', `/blobs/0x01${'00'.repeat(31)}`, { headers: auth }, 404],
      ['host', '/nope', { headers: auth }, 404],
    ]
    for (const [listener, path, init, expected] of cases) {
      const base = listener === 'pod' ? node.podUrl : node.hostUrl
      const res = await getJson(base + path, init)
      assert.equal(res.status, expected, `${listener} ${init.method ?? 'GET'} ${path.slice(0, 40)} → ${res.status} ${res.text.slice(0, 200)}`)
      assert.equal(typeof res.body.error?.code, 'string', path)
      assert.equal(typeof res.body.error?.message, 'string', path)
      assert.doesNotMatch(res.text, /\n\s+at |node_modules|\.ts:\d+/, `stack trace leaked for ${path}`)
    }
  })

  test('default: the blob archive serves blobs the node used, checked by hash', async () => {
    const node = devnet.info.nodes[0]!
    const [request] = await onboardRequestsOn(devnet.publicClient, devnet.registry, { requestId: 1n })
    const res = await fetch(`${node.hostUrl}/blobs/${request!.quoteBlobHash}`, { headers: { authorization: `Bearer ${node.hostToken}` } })
    assert.equal(res.status, 200)
    assert.equal((await res.arrayBuffer()).byteLength, 131072)
  })

  // docs/protocol.md#measurements-and-tcb-policy, docs/protocol.md#help: the helper verifies the newcomer's DCAP quote (production verifier, devnet root trusted
  // explicitly), then applies the on-chain policy *now*; each refusal reason is recorded in its /status. The owner
  // changes the policy with `keymanager policy` and every test puts it back.
  async function policy(...args: string[]) {
    const ownerKeyFile = join(devnet.devnetDir, 'owner.key')
    writeFileSync(ownerKeyFile, `0x${Buffer.from(devAccount(0).getHdKey().privateKey!).toString('hex')}`, { mode: 0o600 })
    const err: string[] = []
    const code = await runPolicy([...args, '--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry, '--owner-key-file', ownerKeyFile], () => {}, (l) => err.push(l))
    assert.equal(code, 0, err.join('\n'))
  }

  /** A new node registers; `helper` judges its request. */
  async function judgedNewcomer(options: Parameters<Devnet['addNode']>[0], helper: DevnetNodeInfo = devnet.info.nodes[0]!) {
    const newcomer = await devnet.addNode(options)
    const reg = await hostCall<{ enckey: Address; requestId: string }>(newcomer, 'POST', '/register')
    const refused = await refusal(helper, reg.enckey)
    const recorded = (await statusReason(helper, reg.requestId)) as { reason: string; message: string } | undefined
    return { newcomer, reg, refused, recorded }
  }

  test('error: a measurement removed on chain after it was allowed: a newcomer carrying it gets nothing', async () => {
    const { measurementId, measurementRaw } = measurementOf(
      await simulatedQuoteProvider({ measurement: simulatedMeasurement(DEVNET_MEASUREMENT_LABEL) }).getQuote(new Uint8Array(64)),
    )
    const registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    assert.equal(await registry.isMeasurementAllowed(measurementId), true)
    await policy('remove', measurementId)
    let reg
    try {
      const judged = await judgedNewcomer({})
      reg = judged.reg
      assert.equal(judged.refused.status, 422)
      assert.equal(judged.refused.reason, 'measurement_not_allowed')
      assert.equal(judged.recorded?.reason, 'measurement_not_allowed')
    } finally {
      await policy('add', measurementRaw)
    }
    // Allowed again: the same pending request is now served (the allow-list is read at judgement time).
    const helped = await hostCall<{ decision: string }>(devnet.info.nodes[0]!, 'POST', `/helper/${reg.enckey}`)
    assert.equal(helped.decision, 'fulfilled')
  })

  test('error: a platform whose TCB status the policy does not accept gets nothing', async () => {
    const { reg, refused, recorded } = await judgedNewcomer({ configure: platform({ tcbStatus: 'OutOfDate' }) })
    assert.equal(refused.reason, 'tcb_status_not_accepted')
    assert.equal(recorded?.reason, 'tcb_status_not_accepted')
    assert.equal(recorded?.message, 'TCB status OutOfDate is not accepted')
    // Once the owner accepts OutOfDate platforms, the same request is served.
    await policy('tcb', '--accept', 'UpToDate,OutOfDate')
    try {
      assert.equal((await hostCall<{ decision: string }>(devnet.info.nodes[1]!, 'POST', `/helper/${reg.enckey}`)).decision, 'fulfilled')
    } finally {
      await policy('tcb', '--accept', 'UpToDate')
    }
  })

  test('error: a platform whose FMSPC is not on the allow-list gets nothing', async () => {
    await policy('tcb', '--fmspc-allowlist', 'on', '--allow-fmspc', DEVNET_FMSPC)
    try {
      const { refused, recorded } = await judgedNewcomer({ configure: platform({ fmspc: '0xde7e000000f2' }) })
      assert.equal(refused.reason, 'fmspc_not_allowed')
      assert.equal(recorded?.reason, 'fmspc_not_allowed')
      assert.equal(recorded?.message, 'FMSPC 0xde7e000000f2 is not on the allow-list')
    } finally {
      await policy('tcb', '--fmspc-allowlist', 'off')
    }
  })

  test('error: collateral rated before the owner\'s minimum TCB evaluation data number gets nothing', async () => {
    // The devnet PCCS serves collateral with tcbEvaluationDataNumber 1; the owner asks for 2 (a TCB recovery).
    await policy('tcb', '--min-tcb-evaluation', '2')
    let enckey: Address
    try {
      const { reg, refused, recorded } = await judgedNewcomer({})
      enckey = reg.enckey
      assert.equal(refused.reason, 'tcb_evaluation_too_old')
      assert.equal(recorded?.reason, 'tcb_evaluation_too_old')
      assert.equal(recorded?.message, 'collateral has TCB evaluation data number 1, the policy requires at least 2')
    } finally {
      await policy('tcb', '--min-tcb-evaluation', '0')
    }
    assert.equal((await hostCall<{ decision: string }>(devnet.info.nodes[1]!, 'POST', `/helper/${enckey}`)).decision, 'fulfilled')
  })

  test('error: a helper whose collateral is older than the policy allows refuses', async () => {
    const issuedAt = Math.floor(Date.now() / 1000) - 3 * 86_400
    const staleHelper = await devnet.addNode({ configure: collateralIssuedAt(issuedAt) })
    await devnet.onboard(staleHelper, devnet.info.nodes[0]!)
    await policy('tcb', '--max-collateral-age', '86400')
    try {
      const { reg, refused, recorded } = await judgedNewcomer({}, staleHelper)
      assert.equal(refused.reason, 'collateral_too_old')
      assert.equal(recorded?.reason, 'collateral_too_old')
      assert.match(recorded?.message ?? '', /^collateral issued \d+ s ago, the policy accepts at most 86400 s$/)
      // A helper with fresh collateral (the devnet PCCS) serves the same request.
      assert.equal((await hostCall<{ decision: string }>(devnet.info.nodes[0]!, 'POST', `/helper/${reg.enckey}`)).decision, 'fulfilled')
    } finally {
      await policy('tcb', '--max-collateral-age', String(30 * 86_400))
    }
  })

  test('default: keymanager audit re-verifies every quote on chain; refused requests are listed, not failures', async () => {
    const lines: string[] = []
    const warnings: string[] = []
    const args = ['--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry, '--blobs', devnet.anvil.rpcUrl, '--blobs-kind', 'anvil']
    const trust = ['--root-ca', join(devnet.devnetDir, 'pki', 'root.pem'), '--pccs', devnet.pccsUrl]
    const code = await runAudit([...args, ...trust, '--json'], (l) => lines.push(l), (l) => warnings.push(l))
    const report = JSON.parse(lines.join('\n')) as {
      ok: boolean
      entries: { what: string; onChain: string; ok: boolean; reason: string | null; policyNow: string; settingsDigest: string | null }[]
    }
    assert.equal(code, 0)
    assert.equal(report.ok, true)
    assert.ok(warnings.some((w) => /TRUSTING A ROOT CA THAT IS NOT INTEL'S/.test(w)), 'trusting the devnet root is said out loud')
    const bootstrap = report.entries.find((e) => e.what === 'bootstrap')!
    assert.deepEqual([bootstrap.ok, bootstrap.onChain, bootstrap.policyNow], [true, 'bootstrapped', 'accepted'])
    const handedOut = report.entries.filter((e) => e.onChain === 'fulfilled' || e.onChain === 'confirmed')
    assert.ok(handedOut.length >= 4)
    assert.ok(handedOut.every((e) => e.ok))
    // Every node ever onboarded is named with the settings digest its quote binds: here, the devnet nodes' own.
    const digests = new Set(
      await Promise.all(devnet.nodes.map(async (n) => (await hostCall<{ settingsDigest: string }>(n, 'GET', '/status')).settingsDigest)),
    )
    for (const e of [bootstrap, ...handedOut]) assert.ok(e.settingsDigest !== null && digests.has(e.settingsDigest), `${e.what}: ${e.settingsDigest}`)
    // The hostile request whose quote binds another key is still there, unfulfilled, and the audit says why.
    assert.ok(report.entries.some((e) => e.onChain === 'pending' && !e.ok && e.reason?.startsWith('report_data_mismatch')))
    // The unreviewed build verifies as a quote, but today's allow-list does not accept it.
    assert.ok(report.entries.some((e) => e.onChain === 'pending' && e.ok && e.policyNow === 'measurement_not_allowed'))

    // Without trusting the devnet root every quote fails, so the bootstrap (a secret that exists) fails the audit.
    const untrusted = await runAudit([...args, '--pccs', devnet.pccsUrl], () => {}, () => {})
    assert.equal(untrusted, 1)
    await assert.rejects(runAudit(['--rpc', devnet.anvil.rpcUrl], () => {}, () => {}), /--rpc and --registry are required/)
    await assert.rejects(runAudit(['--rpc', devnet.anvil.rpcUrl, '--registry', devnet.registry], () => {}, () => {}), /give at least one blob source: --blobs, --archive or --peer/)
    await assert.rejects(runAudit([...args, '--blobs-kind', 'ipfs'], () => {}, () => {}), /--blobs-kind must be anvil or beacon/)
  })
})

