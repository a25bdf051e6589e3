// Guardian escrow against a real anvil (docs/protocol.md#guardians): the proven guardian-set and recovery reads of the
// chain view agree with the contract's own view functions (a set waits for its delay), an escrow made by
// src/keys/escrow.ts is accepted by publishEscrow and found again through its proven hash, and `keymanager guardian
// verify` passes each guardian's share and fails a tampered one. A host that rewrites the escrow log is caught by the
// proven hash; one that rewrites the guardian keys log by the proven keys hash.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import pino from 'pino'
import { bytesToHex, createPublicClient, hexToBytes, http, keccak256, parseEventLogs, type Hex, type PublicClient, type TransactionReceipt } from 'viem'
import { foundry } from 'viem/chains'
import type { PrivateKeyAccount } from 'viem/accounts'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { createGenerationsClient, generationCalldata } from '../src/chain/generations.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { createChainView } from '../src/chain/view/chainView.ts'
import { runGuardian } from '../src/cli/guardian.ts'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { startRpcProxy } from '../src/devnet/rpcProxy.ts'
import { eciesEncrypt, escrowShareAad } from '../src/keys/ecies.ts'
import { makeEscrow, openEscrowShare } from '../src/keys/escrow.ts'
import { publicKey64, signDigest } from '../src/keys/signature.ts'
import { guardianEscrowDigest } from '../src/keys/typedData.ts'
import { provenActiveGuardianSet, provenEscrow, provenGuardianSet } from '../src/node/escrow.ts'
import { blobOf, clientsFor, fundedAccount } from './registryFixture.ts'

let anvil: Anvil
let dir: string
before(async () => {
  anvil = await startAnvil()
  dir = mkdtempSync(join(tmpdir(), 'km-escrow-'))
})
after(async () => {
  await anvil?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const newKey = () => secp256k1.utils.randomSecretKey()
const logger = pino({ level: 'silent' })

describe('guardian escrow on anvil', () => {
  test('proven guardian sets and escrows; guardian keygen and verify; a tampered share fails verify', async () => {
    const { publicClient, testClient, walletFor } = clientsFor(anvil.rpcUrl)
    const owner = await fundedAccount(anvil.rpcUrl)
    const host = await fundedAccount(anvil.rpcUrl)
    const DELAY = 600n
    const registry = await deployKeyManager({ walletClient: walletFor(owner), publicClient, owner: owner.address, measurementDelay: DELAY })
    const registryClient = createRegistryClient({ publicClient, address: registry })
    const generations = createGenerationsClient({ publicClient, address: registry })
    const domain = { chainId: foundry.id, registry }
    async function send(from: PrivateKeyAccount, data: Hex): Promise<TransactionReceipt> {
      const hash = await walletFor(from).sendTransaction({ to: registry, data })
      const receipt = await publicClient.waitForTransactionReceipt({ hash })
      assert.equal(receipt.status, 'success', `transaction ${hash} reverted`)
      return receipt
    }
    const m1 = newKey()
    await send(owner, registryClient.calldata.setBootstrapper(host.address))
    await sendBlobTransaction({ walletClient: walletFor(host), publicClient, to: registry, data: registryClient.calldata.bootstrap(bytesToHex(publicKey64(m1))), blobs: [blobOf('bootstrap')], abi: keyManagerAbi })

    // Guardian keys made by the CLI (mode 0600, never overwritten).
    const guardianFiles = Array.from({ length: 5 }, (_, i) => join(dir, `guardian-${i + 1}.key`))
    const pubkeys: Uint8Array[] = []
    for (const file of guardianFiles) {
      const lines: string[] = []
      assert.equal(await runGuardian(['keygen', '--key-file', file, '--json'], (l) => lines.push(l)), 0)
      const printed = JSON.parse(lines.join('\n')) as { pubkey64: Hex }
      assert.equal(statSync(file).mode & 0o777, 0o600)
      assert.deepEqual(publicKey64(hexToBytes(readFileSync(file, 'utf8').trim() as Hex)), hexToBytes(printed.pubkey64))
      pubkeys.push(hexToBytes(printed.pubkey64))
    }
    const errs: string[] = []
    assert.equal(await runGuardian(['keygen', '--key-file', guardianFiles[0]!], () => {}, (l) => errs.push(l)), 2)
    assert.match(errs.at(-1)!, /exists: a guardian key is never overwritten/)

    const view = createChainView({ mode: 'trusted-rpc', rpc: publicClient, registry, registryCodeHash: keccak256((await publicClient.getCode({ address: registry }))!), logger })
    const setReceipt = await send(owner, generationCalldata.setGuardians(bytesToHex(new Uint8Array(pubkeys.flatMap((k) => [...k]))), 3))
    const guardianSet = (parseEventLogs({ abi: keyManagerAbi, logs: setReceipt.logs, eventName: 'GuardiansProposed' })[0]!.args as { guardianSet: bigint }).guardianSet

    // Pending for its delay: neither the contract nor the proven reads call it active.
    let header = await view.head()
    assert.equal(await generations.activeGuardianSet(), 0n)
    assert.equal(await provenActiveGuardianSet(view, generations, header), undefined)
    const counters = (await view.read(header, { guardians: true })).guardianCounters()
    assert.deepEqual(counters, { count: 1n, settled: 0n, pending: guardianSet })
    await testClient.increaseTime({ seconds: Number(DELAY) })
    await testClient.mine({ blocks: 1 })
    header = await view.head()
    assert.equal(await generations.activeGuardianSet(), guardianSet)
    const proven = await provenActiveGuardianSet(view, generations, header)
    assert.ok(proven)
    assert.equal(proven.guardianSet, guardianSet)
    assert.equal(proven.threshold, 3)
    assert.deepEqual(proven.keys, pubkeys)
    const info = await generations.guardianSetInfo(guardianSet)
    const provenInfo = (await view.read(header, { guardianSets: [guardianSet] })).guardianSet(guardianSet)
    assert.deepEqual({ ...provenInfo, guardianSet: undefined }, { ...info, guardianSet: undefined })
    for (const [i, key] of pubkeys.entries()) {
      const address = (await import('../src/keys/escrow.ts')).guardianAddress(key)
      const state = await view.read(header, { guardianIndexes: [{ guardianSet, guardian: address }] })
      assert.equal(state.guardianIndex(guardianSet, address), i + 1)
      assert.equal(await generations.guardianIndex(guardianSet, address), i + 1)
    }

    // The escrow of generation 1, published and found through its proven hash.
    const escrow = makeEscrow(domain, { generation: 1n, guardianSet, guardianKeys: proven.keys, threshold: 3, secret: m1 })
    await send(host, generationCalldata.publishEscrow(1n, guardianSet, bytesToHex(escrow.commitments), escrow.encryptedShares, escrow.signature))
    header = await view.head()
    const record = (await view.read(header, { generations: [1n] })).generation(1n)
    assert.equal(record.escrowHash, escrow.hash)
    assert.equal(record.escrowGuardianSet, guardianSet)
    const found = await provenEscrow(domain, generations, record)
    assert.deepEqual(found?.encryptedShares, escrow.encryptedShares)

    const flags = ['--rpc', anvil.rpcUrl, '--registry', registry, '--insecure-trusted-rpc']
    for (const [i, file] of guardianFiles.entries()) {
      const lines: string[] = []
      const code = await runGuardian(['verify', '--guardian-key-file', file, ...flags], (l) => lines.push(l), () => {})
      assert.equal(code, 0, lines.join('\n'))
      assert.match(lines.join('\n'), new RegExp(`generation 1: share ${i + 1} of guardian set ${guardianSet} matches`))
    }
    // Bounded event reads: from --from-block, at most --max-log-range blocks per eth_getLogs. From block 0 in 2-block
    // ranges the logs are all found; from past the head the escrow log is not, and verify says so (exit 1).
    const narrow: string[] = []
    assert.equal(await runGuardian(['verify', '--guardian-key-file', guardianFiles[0]!, ...flags, '--from-block', '0', '--max-log-range', '2'], (l) => narrow.push(l), (l) => narrow.push(l)), 0, narrow.join('\n'))
    assert.match(narrow.join('\n'), new RegExp(`generation 1: share 1 of guardian set ${guardianSet} matches`))
    const late: string[] = []
    const past = String((await publicClient.getBlockNumber({ cacheTime: 0 })) + 1n)
    assert.equal(await runGuardian(['verify', '--guardian-key-file', guardianFiles[0]!, ...flags, '--from-block', past], (l) => late.push(l), (l) => late.push(l)), 1)
    assert.match(late.join('\n'), /^keymanager guardian: no EscrowPublished log of generation 1 matches its proven escrow hash$/m)
    // A key that is not a guardian's.
    const stranger = join(dir, 'stranger.key')
    writeFileSync(stranger, bytesToHex(newKey()))
    const strangerOut: string[] = []
    assert.equal(await runGuardian(['verify', '--guardian-key-file', stranger, ...flags], (l) => strangerOut.push(l), () => {}), 1)
    assert.match(strangerOut.join('\n'), /generation 1: not_a_guardian/)

    // A tampered escrow (a dealer holding M_1 encrypts a wrong value to guardian 3): the contract cannot see it; guardian
    // 3's verify does, and the others' still pass. A generation takes one escrow per set, so the guardians are named
    // again first (the same keys in a new set).
    const again = await send(owner, generationCalldata.setGuardians(bytesToHex(new Uint8Array(pubkeys.flatMap((k) => [...k]))), 3))
    const secondSet = (parseEventLogs({ abi: keyManagerAbi, logs: again.logs, eventName: 'GuardiansProposed' })[0]!.args as { guardianSet: bigint }).guardianSet
    await testClient.increaseTime({ seconds: Number(DELAY) })
    await testClient.mine({ blocks: 1 })
    const wrong = new Uint8Array(32).fill(9)
    const tampered = [...escrow.encryptedShares]
    tampered[2] = bytesToHex(eciesEncrypt(Uint8Array.of(4, ...pubkeys[2]!), wrong, escrowShareAad({ ...domain, generation: 1n, guardianSet: secondSet, index: 3 })))
    // The other guardians' shares are the honest ones, moved to the new set (each opened with its guardian's key).
    for (const i of [0, 1, 3, 4]) {
      const share = openEscrowShare(domain, escrow, { index: i + 1, guardianKey: hexToBytes(readFileSync(guardianFiles[i]!, 'utf8').trim() as Hex) })
      tampered[i] = bytesToHex(eciesEncrypt(Uint8Array.of(4, ...pubkeys[i]!), share.value, escrowShareAad({ ...domain, generation: 1n, guardianSet: secondSet, index: i + 1 })))
    }
    const tamperedMessage = { ...domain, generation: 1n, guardianSet: secondSet, commitments: escrow.commitments, encryptedShares: tampered }
    await send(host, generationCalldata.publishEscrow(1n, secondSet, bytesToHex(escrow.commitments), tampered, bytesToHex(signDigest(guardianEscrowDigest(tamperedMessage), m1))))
    const third: string[] = []
    assert.equal(await runGuardian(['verify', '--guardian-key-file', guardianFiles[2]!, ...flags, '--json'], (l) => third.push(l), () => {}), 1)
    const verdict = JSON.parse(third.join('\n')) as { ok: boolean; generations: { index: number; ok: boolean; reason: string }[] }
    assert.deepEqual(verdict.generations.map((g) => [g.index, g.ok, g.reason]), [[3, false, 'share_mismatch']])
    assert.equal(await runGuardian(['verify', '--guardian-key-file', guardianFiles[0]!, ...flags], () => {}, () => {}), 0)

    // Host lies (the RPC the guardian reads logs through): an escrow log rewritten to the first (honest) escrow's shares
    // does not match the proven hash of the tampered one now on chain, and is refused instead of believed.
    const proxy = await startRpcProxy({ upstream: anvil.rpcUrl })
    try {
      const lyingClient = createPublicClient({ chain: foundry, transport: http(proxy.url, { retryCount: 0 }) }) as PublicClient
      const lyingGenerations = createGenerationsClient({ publicClient: lyingClient, address: registry })
      const current = (await view.read(await view.head(), { generations: [1n] })).generation(1n)
      proxy.hooks.response = (call, result) => {
        if (call.method !== 'eth_getLogs' || !Array.isArray(result)) return result
        // Keep only the first EscrowPublished log (the honest escrow), hiding the one the chain now vouches for.
        const escrowTopic = keccak256(new TextEncoder().encode('EscrowPublished(uint64,uint64,bytes,bytes[])'))
        const escrows = result.filter((l: { topics: Hex[] }) => l.topics[0] === escrowTopic)
        return escrows.length > 1 ? result.filter((l: unknown) => l !== escrows[escrows.length - 1]) : result
      }
      await assert.rejects(provenEscrow(domain, lyingGenerations, current), /no EscrowPublished log of generation 1 matches its proven escrow hash/)
      // The guardian keys log rewritten (one key swapped for the host's): refused against the proven keys hash.
      const hostKey = publicKey64(newKey())
      proxy.hooks.response = (call, result) => {
        if (call.method !== 'eth_getLogs' || !Array.isArray(result)) return result
        const topic = keccak256(new TextEncoder().encode('GuardiansProposed(uint64,uint8,uint64,bytes)'))
        return result.map((l: { topics: Hex[]; data: Hex }) =>
          l.topics[0] === topic ? { ...l, data: l.data.replace(bytesToHex(pubkeys[0]!).slice(2), bytesToHex(hostKey).slice(2)) } : l,
        )
      }
      await assert.rejects(provenGuardianSet(view, lyingGenerations, await view.head(), guardianSet), /guardian_keys_mismatch/)
    } finally {
      await proxy.close()
    }
  })
})
