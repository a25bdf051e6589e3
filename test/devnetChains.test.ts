// Issue: key chains verified on chain. Every node of a devnet answers dstack GetKey for the same pod with the same
// chain (RFC 6979 signatures are deterministic), and each chain verifies, off chain and with the registry's
// verifySignatureChain, to the one master key; a swapped purpose, another appId or another root does not.
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { hostCall, runDevnet } from '../src/devnet/network.ts'
import { blobSources } from './devnetNodes.ts'
import { onboardRequestsOn, onboardedEventOn } from './chainChecks.ts'
import { UsageError } from '../src/cli/args.ts'
import { runHostApi } from '../src/cli/hostApi.ts'
import { runVerifyChain } from '../src/cli/verifyChain.ts'
import { toHex0x } from '../src/keys/bytes.ts'
import { appIdForPod } from '../src/keys/derive.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
type GetKey = { key: string; signature_chain: string[] }

describe('devnet: dstack key chains from every node', () => {
  let devnet: Devnet
  const dir = mkdtempSync(join(tmpdir(), 'km-chains-'))

  before(async () => {
    devnet = await runDevnet({ nodes: 3, dir, print: () => {} })
  })
  after(async () => {
    await devnet?.stop()
  })

  async function getKey(podUrl: string, pod: string, path: string, purpose: string): Promise<GetKey> {
    const res = await fetch(`${podUrl}/GetKey`, {
      method: 'POST',
      headers: { 'x-keymanager-pod': pod, 'content-type': 'application/json' },
      body: JSON.stringify({ path, purpose }),
    })
    assert.equal(res.status, 200)
    return (await res.json()) as GetKey
  }

  async function verify(file: Record<string, unknown>, extra: string[]): Promise<{ code: number; steps: { step: string; ok: boolean }[] }> {
    const path = join(dir, `chain-${Math.random().toString(36).slice(2)}.json`)
    writeFileSync(path, JSON.stringify(file))
    const lines: string[] = []
    const code = await runVerifyChain([path, '--json', ...extra], (l) => lines.push(l), (l) => lines.push(l))
    const parsed = JSON.parse(lines.join('\n')) as { steps: { step: string; ok: boolean }[] }
    return { code, steps: parsed.steps }
  }

  test('default: the same chain from every node verifies on and off chain to the registry master key', async () => {
    const answers = await Promise.all(devnet.info.nodes.map((n) => getKey(n.podUrl, 'oracle', 'prices/signing', 'price-report')))
    for (const answer of answers) assert.deepEqual(answer, answers[0])
    const file = { ...answers[0], purpose: 'price-report', app_id: toHex0x(appIdForPod('oracle')) }
    const result = await verify(file, ['--rpc', devnet.info.rpcUrl, '--registry', devnet.registry])
    assert.equal(result.code, 0)
    assert.deepEqual(
      result.steps.map((s) => [s.step, s.ok]),
      [
        ['app-signature', true],
        ['kms-signature', true],
        ['on-chain', true],
      ],
    )
  })

  test('error: a swapped purpose, another appId or another root is rejected on and off chain', async () => {
    const answer = await getKey(devnet.info.nodes[1]!.podUrl, 'oracle', 'prices/signing', 'price-report')
    const onChain = ['--rpc', devnet.info.rpcUrl, '--registry', devnet.registry]
    const good = { ...answer, purpose: 'price-report', app_id: toHex0x(appIdForPod('oracle')) }

    const swapped = await verify({ ...good, purpose: 'withdrawal' }, onChain)
    assert.equal(swapped.code, 1)
    assert.equal(swapped.steps.find((s) => s.step === 'kms-signature')?.ok, false)
    assert.equal(swapped.steps.find((s) => s.step === 'on-chain')?.ok, false)

    const otherApp = await verify({ ...good, app_id: toHex0x(appIdForPod('billing')) }, onChain)
    assert.equal(otherApp.code, 1)
    assert.equal(otherApp.steps.find((s) => s.step === 'kms-signature')?.ok, false)
    assert.equal(otherApp.steps.find((s) => s.step === 'on-chain')?.ok, false)

    const otherRoot = await verify(good, ['--master-address', '0x000000000000000000000000000000000000dEaD'])
    assert.equal(otherRoot.code, 1)
    assert.equal(otherRoot.steps.find((s) => s.step === 'kms-signature')?.ok, false)
  })

  test('default: keymanager status/help/register --node drive the host API; errors are one line', async () => {
    const node = devnet.info.nodes[0]!
    const tokenFile = join(dir, 'host.token')
    writeFileSync(tokenFile, node.hostToken)
    const lines: string[] = []
    assert.equal(await runHostApi('status', ['--node', node.hostUrl, '--token-file', tokenFile, '--json'], {}, (l) => lines.push(l)), 0)
    assert.equal((JSON.parse(lines.join('\n')) as { state: string }).state, 'ready')
    assert.equal(await runHostApi('status', ['--node', node.hostUrl], { KEYMANAGER_HOST_TOKEN: node.hostToken }, () => {}), 0)

    await assert.rejects(runHostApi('status', ['--node', node.hostUrl], {}, () => {}), UsageError)
    await assert.rejects(runHostApi('status', ['--node', 'ftp://x', '--token-file', tokenFile], {}, () => {}), /--node must be an http\(s\) URL/)
    await assert.rejects(runHostApi('status', ['--node', node.hostUrl, '--bogus'], {}, () => {}), UsageError)
    await assert.rejects(runHostApi('status', ['--node', node.hostUrl], { KEYMANAGER_HOST_TOKEN: 'wrong-token-wrong-token' }, () => {}), /401 unauthorized/)
    await assert.rejects(runHostApi('help', ['--node', node.hostUrl, '--token-file', tokenFile], {}, () => {}), /help takes one ADDR/)
    await assert.rejects(runHostApi('help', ['424242', '--node', node.hostUrl, '--token-file', tokenFile], {}, () => {}), /404 not_found/)
    await assert.rejects(runHostApi('register', ['--node', node.hostUrl, '--token-file', tokenFile], {}, () => {}), /409 conflict: node is already ready/)
    await assert.rejects(runHostApi('bootstrap', ['--node', node.hostUrl, '--token-file', tokenFile], {}, () => {}), /409 conflict/)
  })

  test('default: a node whose beacon source has no blobs completes from a peer archive, hash-checked', async () => {
    const dead = 'http://127.0.0.1:9' // nothing listens: every blob fetch from the primary source fails
    const helper = devnet.info.nodes[0]!
    const withPeer = await devnet.addNode({ configure: blobSources(dead, [helper]) })
    const done = await devnet.onboard(withPeer, helper)
    assert.equal(done.state, 'ready')

    // Without a peer, the same situation cannot complete, and says why (an upstream failure, not bad input).
    const alone = await devnet.addNode({ configure: blobSources(dead) })
    const reg = await hostCall<{ enckey: string }>(alone, 'POST', '/register')
    await hostCall(helper, 'POST', `/helper/${reg.enckey}`)
    const res = await fetch(`${alone.hostUrl}/register/${reg.enckey}`, { method: 'POST', headers: { authorization: `Bearer ${alone.hostToken}` } })
    assert.equal(res.status, 502)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_failed')

    // The helper archived the response blob it made, so it can serve it to peers.
    const [request] = await onboardRequestsOn(devnet.publicClient, devnet.registry, { requester: reg.enckey as `0x${string}` })
    const onboarded = await onboardedEventOn(devnet.publicClient, devnet.registry, request!.requestId)
    const blob = await fetch(`${helper.hostUrl}/blobs/${onboarded!.responseBlobHash}`, { headers: { authorization: `Bearer ${helper.hostToken}` } })
    assert.equal(blob.status, 200)
    assert.equal((await blob.arrayBuffer()).byteLength, 131072)
  })
})

