// Generations on a real anvil with real blob transactions (docs/protocol.md#generations): the TypeScript digests,
// aads and secret sharing of src/keys against the contract. Members join; a planned rotation is proposed with the new
// secret ECIES-encrypted to each member in a blob, acknowledged by a member that decrypted its share, committed;
// generation 1 verifies during the overlap only; generation 2 is escrowed 3 of 5 to guardians; a fresh enclave is
// recovered with three released shares. (The node flows that do this by themselves are built on these pieces.)
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, hexToBytes, parseEventLogs, toBlobs, toHex, type Address, type Hex, type TransactionReceipt } from 'viem'
import { foundry } from 'viem/chains'
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { runEscrow } from '../src/cli/escrow.ts'
import { runGenerations } from '../src/cli/generations.ts'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { createGenerationsClient, generationCalldata } from '../src/chain/generations.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { eciesDecrypt, eciesEncrypt, escrowShareAad, releaseShareAad, rotationAad } from '../src/keys/ecies.ts'
import { packCommitments, recoverSecret, splitSecret, unpackCommitments, verifyShare, type SecretShare } from '../src/keys/secretSharing.ts'
import { addressOfPublicKey, publicKey33, publicKey64, signDigest } from '../src/keys/signature.ts'
import {
  attestationDigest,
  generationAckDigest,
  generationProposalDigest,
  guardianEscrowDigest,
  guardianEscrowHash,
  onboardReceiptDigest,
  onboardResponseDigest,
  shareReleaseDigest,
} from '../src/keys/typedData.ts'
import { blobOf, clientsFor, fundedAccount, versionedHashOf } from './registryFixture.ts'

let anvil: Anvil
before(async () => {
  anvil = await startAnvil()
})
after(async () => {
  await anvil?.stop()
})

const newKey = () => secp256k1.utils.randomSecretKey()
const hex = (bytes: Uint8Array) => bytesToHex(bytes)

/** A registry with generation 1 bootstrapped (by a bootstrapper the owner names) and `members` member nodes. */
async function registryWithMembers(members: number) {
  const { publicClient, testClient, walletFor } = clientsFor(anvil.rpcUrl)
  const ownerKey = generatePrivateKey()
  const owner = privateKeyToAccount(ownerKey)
  await testClient.setBalance({ address: owner.address, value: 10n ** 20n })
  const host = await fundedAccount(anvil.rpcUrl)
  const address = await deployKeyManager({ walletClient: walletFor(owner), publicClient, owner: owner.address, measurementDelay: 0n })
  const registry = createRegistryClient({ publicClient, address })
  const generations = createGenerationsClient({ publicClient, address })
  const domain = { chainId: foundry.id, registry: address }

  async function send(from: PrivateKeyAccount, data: Hex): Promise<TransactionReceipt> {
    const hash = await walletFor(from).sendTransaction({ to: address, data })
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'success', `transaction ${hash} reverted`)
    return receipt
  }
  const sendBlob = async (data: Hex, blob: Hex) =>
    (await sendBlobTransaction({ walletClient: walletFor(host), publicClient, to: address, data, blobs: [blob], abi: keyManagerAbi })).receipt
  const events = (receipt: TransactionReceipt, eventName: string) =>
    parseEventLogs({ abi: keyManagerAbi, logs: receipt.logs, eventName, strict: true } as never) as unknown as { args: Record<string, unknown> }[]

  // Generation 1: the owner names the host as bootstrapper, which sends the bootstrap blob transaction.
  const m1 = newKey()
  await send(owner, registry.calldata.setBootstrapper(host.address))
  await sendBlob(registry.calldata.bootstrap(hex(publicKey64(m1))), blobOf('bootstrap envelope'))

  // Members: request (blob), answer signed by M1 (blob), receipt by the node key.
  const nodeKeys = Array.from({ length: members }, newKey)
  const memberIds: bigint[] = []
  for (const nodeKey of nodeKeys) {
    const ref = await publicClient.getBlockNumber({ cacheTime: 0 })
    const requested = await sendBlob(registry.calldata.requestOnboard(hex(publicKey64(nodeKey)), ref), blobOf(`register ${memberIds.length}`))
    const requestId = events(requested, 'OnboardRequested')[0]!.args.requestId as bigint
    const response = blobOf(`onboard ${requestId}`)
    const responseDigest = onboardResponseDigest({ ...domain, requestIds: [requestId], responseBlobHash: versionedHashOf(response), generation: 1n })
    await sendBlob(registry.calldata.fulfillOnboard([requestId], hex(signDigest(responseDigest, m1))), response)
    const receipt = onboardReceiptDigest({ ...domain, requestId, xPub: addressOfPublicKey(publicKey33(m1)) })
    await send(host, registry.calldata.confirmOnboard(requestId, hex(signDigest(receipt, nodeKey))))
    memberIds.push(requestId)
  }
  assert.equal(await generations.memberCount(), BigInt(members))

  // Member `proposer` proposes `secret` as generation `generation`, encrypted to each member's node key in a blob.
  async function propose(generation: bigint, secret: Uint8Array, proposer = 0) {
    const proposalId = (await generations.proposalCount()) + 1n
    const ciphertexts = memberIds.map((memberId, i) =>
      eciesEncrypt(publicKey33(nodeKeys[i]!), secret, rotationAad({ ...domain, memberId, generation, proposal: proposalId })),
    )
    // The rotate envelope's format is the node's; here the blob just carries the ciphertexts in recipient order.
    const rotateBlob = toBlobs({ data: toHex(ciphertexts.map(hex).join(',')) })[0]!
    const proposalDigest = generationProposalDigest({
      ...domain,
      proposal: proposalId,
      generation,
      masterPubkey64: publicKey64(secret),
      recipientIds: memberIds,
      proposalBlobHash: versionedHashOf(rotateBlob),
    })
    const proposed = await sendBlob(
      generationCalldata.proposeGeneration(generation, memberIds[proposer]!, hex(publicKey64(secret)), memberIds, hex(signDigest(proposalDigest, nodeKeys[proposer]!))),
      rotateBlob,
    )
    return { proposalId, ciphertexts, rotateBlob, proposed }
  }

  // The owner's key in a file, for the CLI's signed path.
  const ownerKeyFile = join(mkdtempSync(join(tmpdir(), 'km-owner-')), 'owner.key')
  writeFileSync(ownerKeyFile, ownerKey, { mode: 0o600 })
  return { publicClient, testClient, walletFor, owner, ownerKeyFile, host, address, registry, generations, domain, send, sendBlob, events, m1, nodeKeys, memberIds, propose }
}

/** One CLI run, in process. */
async function cli(run: (out: (l: string) => void, err: (l: string) => void) => Promise<number>) {
  const out: string[] = []
  const err: string[] = []
  const code = await run((l) => out.push(l), (l) => err.push(l))
  return { code, out, err }
}

describe('generations on anvil', () => {
  test('rotation, overlap, escrow and recovery with the src/keys digests, aads and shares', async () => {
    const { publicClient, testClient, host, ownerKeyFile, address, registry, generations, domain, send, sendBlob, events, m1, nodeKeys, memberIds, propose } =
      await registryWithMembers(3)
    const chainFlags = ['--rpc', anvil.rpcUrl, '--registry', address]

    // A planned rotation with a one-hour overlap (`keymanager rotate start`). Member 0 proposes M2, encrypted to each
    // member's node key.
    const started = await cli((out, err) => runGenerations('rotate', ['start', '--overlap', '3600', '--force-delay', '0', ...chainFlags, '--owner-key-file', ownerKeyFile], out, err))
    assert.equal(started.code, 0, started.err.join('\n'))
    assert.match(started.out[0]!, /^✓ planned rotation to generation 2 started, overlap 3600 s/)
    const m2 = newKey()
    const { proposalId, ciphertexts, rotateBlob, proposed } = await propose(2n, m2)
    const proposedEvent = events(proposed, 'GenerationProposed')[0]!.args
    assert.equal(proposedEvent.proposalBlobHash, versionedHashOf(rotateBlob))
    assert.deepEqual(proposedEvent.recipientIds, memberIds)
    const pending = await generations.proposal()
    assert.equal(pending.id, proposalId)
    assert.equal(pending.quorum, 2)

    // Member 1 decrypts its share from the blob, checks it against the proposed key, and acknowledges.
    const secret1 = eciesDecrypt(nodeKeys[1]!, ciphertexts[1]!, rotationAad({ ...domain, memberId: memberIds[1]!, generation: 2n, proposal: proposalId }))
    assert.equal(addressOfPublicKey(publicKey33(secret1)), pending.xPub)
    const ack = generationAckDigest({ ...domain, proposal: proposalId, generation: 2n, xPub: pending.xPub })
    await send(host, generationCalldata.acknowledgeGeneration(proposalId, memberIds[1]!, hex(signDigest(ack, nodeKeys[1]!))))
    const committed = await send(host, generationCalldata.commitGeneration(proposalId))
    assert.equal(events(committed, 'GenerationCommitted')[0]!.args.generation, 2n)
    assert.equal(await registry.generation(), 2n)
    assert.equal(await registry.xPub(), addressOfPublicKey(publicKey33(m2)))
    assert.equal((await generations.generationInfo(2n)).masterPubkey, hex(publicKey33(m2)))

    // Both generations verify during the overlap; generation 1 stops after it.
    const attest = (secret: Uint8Array) =>
      registry.verifyAttestation('web', toHex(7n, { size: 32 }), hex(signDigest(attestationDigest({ ...domain, hostname: 'web', appData: toHex(7n, { size: 32 }) }), secret)))
    assert.equal(await attest(m1), true)
    assert.equal(await attest(m2), true)
    await testClient.increaseTime({ seconds: 3600 })
    await testClient.mine({ blocks: 1 })
    assert.equal(await attest(m1), false)
    assert.equal(await attest(m2), true)

    // `keymanager purge generation G`: refused for the current generation (one line naming the revert), done for the
    // retired one.
    const purgeFlags = ['--rpc', anvil.rpcUrl, '--registry', address, '--owner-key-file', ownerKeyFile]
    const purgeErr: string[] = []
    assert.equal(await runGenerations('purge', ['generation', '2', ...purgeFlags], () => {}, (l) => purgeErr.push(l)), 1)
    assert.match(purgeErr.at(-1)!, /KeyManagerGenerationNotRetired/)
    assert.equal(await runGenerations('purge', ['generation', '1', ...purgeFlags], () => {}, () => {}), 0)
    assert.equal((await generations.generationInfo(1n)).purged, true)

    // Guardians 3 of 5 (delay 0 on this registry), and the escrow of generation 2 signed by M2.
    const guardianKeys = Array.from({ length: 5 }, newKey)
    // `keymanager escrow guardians KEY… --threshold 3`, the keys as `guardian keygen` prints them.
    const named = await cli((out, err) =>
      runEscrow('escrow', ['guardians', ...guardianKeys.map((k) => hex(publicKey64(k))), '--threshold', '3', ...chainFlags, '--owner-key-file', ownerKeyFile, '--json'], {}, out, err),
    )
    assert.equal(named.code, 0, named.err.join('\n'))
    const guardianSet = BigInt((JSON.parse(named.out.join('\n')) as { guardianSet: string }).guardianSet)
    assert.equal((await generations.guardiansProposed(guardianSet))?.pubkeys, hex(new Uint8Array(guardianKeys.flatMap((k) => [...publicKey64(k)]))))
    assert.equal(await generations.activeGuardianSet(), guardianSet)
    const { shares, commitments } = splitSecret(m2, { threshold: 3, count: 5 })
    const encryptedShares = shares.map((share, i) =>
      hex(eciesEncrypt(publicKey33(guardianKeys[i]!), share.value, escrowShareAad({ ...domain, generation: 2n, guardianSet, index: share.index }))),
    )
    const escrowArgs = { ...domain, generation: 2n, guardianSet, commitments: packCommitments(commitments), encryptedShares }
    const escrowed = await send(
      host,
      generationCalldata.publishEscrow(2n, guardianSet, hex(packCommitments(commitments)), encryptedShares, hex(signDigest(guardianEscrowDigest(escrowArgs), m2))),
    )
    assert.equal((await generations.generationInfo(2n)).escrowHash, guardianEscrowHash(escrowArgs))
    const escrowEvent = events(escrowed, 'EscrowPublished')[0]!.args
    const publishedCommitments = unpackCommitments(hexToBytes(escrowEvent.commitments as Hex))
    const publishedShares = escrowEvent.encryptedShares as Hex[]

    // Disaster: a fresh enclave registers; the owner names its request for recovery.
    const enclaveKey = newKey()
    const ref = await publicClient.getBlockNumber({ cacheTime: 0 })
    const requested = await sendBlob(registry.calldata.requestOnboard(hex(publicKey64(enclaveKey)), ref), blobOf('register enclave'))
    const enclaveRequest = events(requested, 'OnboardRequested')[0]!.args.requestId as bigint
    const recovery = await cli((out, err) => runEscrow('recover', ['start', String(enclaveRequest), ...chainFlags, '--owner-key-file', ownerKeyFile], {}, out, err))
    assert.equal(recovery.code, 0, recovery.err.join('\n'))
    assert.equal(await generations.recoveryRequest(), enclaveRequest)

    // Guardians 1, 3 and 5 take their share from the event, check it (guardian verify), re-encrypt it to the enclave.
    const released: Hex[] = []
    for (const index of [1, 3, 5]) {
      const value = eciesDecrypt(guardianKeys[index - 1]!, hexToBytes(publishedShares[index - 1]!), escrowShareAad({ ...domain, generation: 2n, guardianSet, index }))
      assert.ok(verifyShare({ index, value }, publishedCommitments), `guardian ${index} verifies its share`)
      const toEnclave = hex(eciesEncrypt(publicKey33(enclaveKey), value, releaseShareAad({ ...domain, requestId: enclaveRequest, generation: 2n, index })))
      const signature = signDigest(shareReleaseDigest({ ...domain, requestId: enclaveRequest, generation: 2n, encryptedShare: toEnclave }), guardianKeys[index - 1]!)
      const receipt = await send(host, generationCalldata.releaseShare(enclaveRequest, 2n, toEnclave, hex(signature)))
      assert.equal(events(receipt, 'ShareReleased')[0]!.args.index, index)
      released.push(toEnclave)
    }
    assert.equal(await generations.releasedShares(enclaveRequest, 2n), (1n << 1n) | (1n << 3n) | (1n << 5n))

    // The enclave decrypts the three shares, recovers M2 inside itself, checks it against the chain, and confirms.
    const recoveredShares: SecretShare[] = [1, 3, 5].map((index, i) => ({
      index,
      value: eciesDecrypt(enclaveKey, hexToBytes(released[i]!), releaseShareAad({ ...domain, requestId: enclaveRequest, generation: 2n, index })),
    }))
    assert.throws(() => recoverSecret(recoveredShares.slice(0, 2), publishedCommitments), /2 valid shares, 3 needed/)
    const recovered = recoverSecret(recoveredShares, publishedCommitments)
    assert.deepEqual(recovered, m2)
    assert.equal(hex(publicKey33(recovered)), (await generations.generationInfo(2n)).masterPubkey)
    const enclaveReceipt = onboardReceiptDigest({ ...domain, requestId: enclaveRequest, xPub: addressOfPublicKey(publicKey33(recovered)) as Address })
    const confirmed = await send(host, registry.calldata.confirmOnboard(enclaveRequest, hex(signDigest(enclaveReceipt, enclaveKey))))
    assert.equal(events(confirmed, 'RecoveryEnded')[0]!.args.completed, true)
    assert.equal((await registry.getRequest(enclaveRequest)).status, 'confirmed')
    assert.equal(await generations.memberCount(), 4n)

    // Revocation (`keymanager revoke node`) is visible to the registry client as 'revoked'.
    const revoked = await cli((out, err) => runGenerations('revoke', ['node', String(memberIds[2]!), ...chainFlags, '--owner-key-file', ownerKeyFile], out, err))
    assert.equal(revoked.code, 0, revoked.err.join('\n'))
    assert.equal((await registry.getRequest(memberIds[2]!)).status, 'revoked')
    assert.equal(await generations.memberCount(), 3n)
    rmSync(dirname(ownerKeyFile), { recursive: true, force: true })
  })

  test('default: every owner verb, signed with --owner-key-file, does what it says; its --unsigned batch, sent by the owner, does the same; rotate status prints the chain', async () => {
    const { publicClient, walletFor, owner, ownerKeyFile, address, registry, generations, sendBlob, events, memberIds, propose } = await registryWithMembers(3)
    const on = ['--rpc', anvil.rpcUrl, '--registry', address]
    const signed = ['--owner-key-file', ownerKeyFile]
    type Batch = { chainId: string; meta: { createdFromSafeAddress: Address }; transactions: { to: Address; value: string; data: Hex }[] }
    const ok = (result: { code: number; err: string[] }, what: string) => assert.equal(result.code, 0, `${what}: ${result.err.join('\n')}`)
    const rotate = (...argv: string[]) => cli((out, err) => runGenerations('rotate', [...argv, ...on], out, err))
    const revoke = (...argv: string[]) => cli((out, err) => runGenerations('revoke', [...argv, ...on], out, err))
    const purge = (...argv: string[]) => cli((out, err) => runGenerations('purge', [...argv, ...on], out, err))
    const escrow = (...argv: string[]) => cli((out, err) => runEscrow('escrow', [...argv, ...on], {}, out, err))
    const recover = (...argv: string[]) => cli((out, err) => runEscrow('recover', [...argv, ...on], {}, out, err))
    // `--unsigned`: a Safe Transaction Builder batch, nothing sent; the Safe (here the owner's key, from the owner's
    // address) sends each transaction as printed.
    async function unsigned(result: Promise<{ code: number; out: string[]; err: string[] }>, what: string, unchanged: () => Promise<unknown>) {
      const before = await unchanged()
      const { code, out, err } = await result
      assert.equal(code, 0, `${what}: ${err.join('\n')}`)
      const batch = JSON.parse(out.join('\n')) as Batch
      assert.deepEqual([batch.chainId, batch.meta.createdFromSafeAddress, batch.transactions.length], [String(foundry.id), owner.address, 1], what)
      assert.deepEqual(await unchanged(), before, `${what}: nothing was sent`)
      for (const tx of batch.transactions) {
        assert.equal(tx.to, address)
        const hash = await walletFor(owner).sendTransaction({ to: tx.to, data: tx.data, value: BigInt(tx.value) })
        assert.equal((await publicClient.waitForTransactionReceipt({ hash })).status, 'success', what)
      }
    }
    const status = async () => {
      const result = await rotate('status', '--json')
      ok(result, 'rotate status')
      return JSON.parse(result.out.join('\n')) as {
        generation: string
        memberCount: string
        rotation: { open: boolean; emergency: boolean; overlap: string; forceDelay: string }
        proposal: { id: string; generation: string; proposerId: string; acks: number; quorum: number; recipients: number; xPub: Address } | null
        generations: { generation: string; xPub: Address; revoked: boolean; purged: boolean; valid: boolean }[]
      }
    }

    // rotate status before anything: generation 1, three members, nothing open.
    let shown = await status()
    assert.deepEqual([shown.generation, shown.memberCount, shown.rotation.open, shown.proposal], ['1', '3', false, null])
    assert.deepEqual(shown.generations.map((g) => [g.generation, g.xPub, g.valid]), [['1', await registry.xPub(), true]])
    const people = await rotate('status')
    ok(people, 'rotate status')
    assert.deepEqual(people.out.slice(0, 3), ['generation 1, 3 members', 'no rotation open', 'no proposal pending'])

    // rotate start (signed), cancel (unsigned); start --emergency (unsigned), cancel (signed).
    ok(await rotate('start', '--overlap', '3600', '--force-delay', '0', ...signed), 'rotate start')
    shown = await status()
    assert.deepEqual([shown.rotation.open, shown.rotation.emergency, shown.rotation.overlap, shown.rotation.forceDelay], [true, false, '3600', '0'])
    const rotationOpen = async () => (await generations.rotation()).open
    await unsigned(rotate('cancel', '--unsigned'), 'rotate cancel --unsigned', rotationOpen)
    assert.equal(await rotationOpen(), false)
    await unsigned(rotate('start', '--emergency', '--force-delay', '0', '--unsigned'), 'rotate start --unsigned', rotationOpen)
    shown = await status()
    assert.deepEqual([shown.rotation.open, shown.rotation.emergency, shown.rotation.overlap], [true, true, '0'])
    ok(await rotate('cancel', ...signed), 'rotate cancel')
    assert.equal(await rotationOpen(), false)

    // A planned rotation, a proposal shown by rotate status, force-committed by the owner (signed).
    ok(await rotate('start', '--overlap', '3600', '--force-delay', '0', ...signed), 'rotate start')
    const m2 = newKey()
    const first = await propose(2n, m2)
    shown = await status()
    assert.deepEqual(
      shown.proposal && [shown.proposal.id, shown.proposal.generation, shown.proposal.proposerId, shown.proposal.acks, shown.proposal.quorum, shown.proposal.recipients, shown.proposal.xPub],
      // The proposer's own acknowledgement counts: 1 of a quorum of 2.
      [String(first.proposalId), '2', String(memberIds[0]), 1, 2, 3, addressOfPublicKey(publicKey33(m2))],
    )
    const committed = await rotate('force-commit', String(first.proposalId), ...signed)
    ok(committed, 'rotate force-commit')
    assert.equal(committed.out[0], `✓ proposal ${first.proposalId} committed by the owner: generation 2 is current`)
    assert.equal(await registry.generation(), 2n)
    // The next one, started and force-committed through the Safe.
    await unsigned(rotate('start', '--overlap', '3600', '--force-delay', '0', '--unsigned'), 'rotate start --unsigned', rotationOpen)
    const m3 = newKey()
    const second = await propose(3n, m3, 1)
    await unsigned(rotate('force-commit', String(second.proposalId), '--unsigned'), 'rotate force-commit --unsigned', () => registry.generation())
    assert.equal(await registry.generation(), 3n)
    assert.equal(await registry.xPub(), addressOfPublicKey(publicKey33(m3)))
    shown = await status()
    assert.deepEqual(
      shown.generations.map((g) => [g.generation, g.valid, g.revoked]),
      // Only the generation just before the current one verifies during its overlap: 1 retired when 3 was committed.
      [['1', false, false], ['2', true, false], ['3', true, false]],
    )

    // revoke generation (signed, then unsigned); purge generation (unsigned, then signed): revoked ones no longer verify.
    const info = async (g: bigint) => {
      const i = await generations.generationInfo(g)
      return [i.revoked, i.purged]
    }
    ok(await revoke('generation', '1', ...signed), 'revoke generation')
    assert.deepEqual(await info(1n), [true, false])
    await unsigned(revoke('generation', '2', '--unsigned'), 'revoke generation --unsigned', () => info(2n))
    assert.deepEqual(await info(2n), [true, false])
    await unsigned(purge('generation', '1', '--unsigned'), 'purge generation --unsigned', () => info(1n))
    assert.deepEqual(await info(1n), [true, true])
    ok(await purge('generation', '2', ...signed), 'purge generation')
    assert.deepEqual(await info(2n), [true, true])
    shown = await status()
    assert.deepEqual(
      shown.generations.map((g) => [g.generation, g.valid, g.revoked, g.purged]),
      [['1', false, true, true], ['2', false, true, true], ['3', true, false, false]],
    )

    // revoke node (signed, then unsigned).
    ok(await revoke('node', String(memberIds[2]), ...signed), 'revoke node')
    assert.equal((await registry.getRequest(memberIds[2]!)).status, 'revoked')
    await unsigned(revoke('node', String(memberIds[1]), '--unsigned'), 'revoke node --unsigned', async () => (await registry.getRequest(memberIds[1]!)).status)
    assert.equal((await registry.getRequest(memberIds[1]!)).status, 'revoked')
    assert.equal((await status()).memberCount, '1')

    // escrow guardians (signed: 2 of 3), then none (unsigned).
    const guardianKeys = [newKey(), newKey(), newKey()].map((k) => hex(publicKey64(k)))
    const named = await escrow('guardians', ...guardianKeys, '--threshold', '2', ...signed)
    ok(named, 'escrow guardians')
    const set = await generations.activeGuardianSet()
    assert.match(named.out[0]!, new RegExp(`^✓ guardian set ${set}: 2 of 3, active now$`))
    assert.deepEqual((await generations.guardianSetInfo(set)).threshold, 2)
    assert.equal((await generations.guardiansProposed(set))?.pubkeys, `0x${guardianKeys.map((k) => k.slice(2)).join('')}`)
    await unsigned(escrow('guardians', 'none', '--unsigned'), 'escrow guardians none --unsigned', () => generations.activeGuardianSet())
    const none = await generations.activeGuardianSet()
    assert.equal(none, set + 1n)
    assert.equal((await generations.guardianSetInfo(none)).count, 0)

    // recover start (signed), cancel (unsigned), start (unsigned), cancel (signed), for a fresh enclave's request.
    const ref = await publicClient.getBlockNumber({ cacheTime: 0 })
    const requested = await sendBlob(registry.calldata.requestOnboard(hex(publicKey64(newKey())), ref), blobOf('register enclave'))
    const enclaveRequest = events(requested, 'OnboardRequested')[0]!.args.requestId as bigint
    ok(await recover('start', String(enclaveRequest), ...signed), 'recover start')
    assert.equal(await generations.recoveryRequest(), enclaveRequest)
    await unsigned(recover('cancel', '--unsigned'), 'recover cancel --unsigned', () => generations.recoveryRequest())
    assert.equal(await generations.recoveryRequest(), 0n)
    await unsigned(recover('start', String(enclaveRequest), '--unsigned'), 'recover start --unsigned', () => generations.recoveryRequest())
    assert.equal(await generations.recoveryRequest(), enclaveRequest)
    ok(await recover('cancel', ...signed), 'recover cancel')
    assert.equal(await generations.recoveryRequest(), 0n)

    // A call the owner could not make is named when the batch is built, not in the Safe: nothing is printed.
    const refused = await rotate('force-commit', '99', '--unsigned')
    assert.equal(refused.code, 1)
    assert.deepEqual(refused.out, [])
    assert.match(refused.err.join('\n'), /^keymanager rotate: forceCommitGeneration would revert for the owner 0x[0-9a-fA-F]{40}: /)
    const refusedSigned = await revoke('generation', '2', ...signed)
    assert.equal(refusedSigned.code, 1)
    assert.match(refusedSigned.err.join('\n'), /^keymanager revoke: revokeGeneration refused: KeyManagerGenerationRevoked\(2\)$/)
    rmSync(dirname(ownerKeyFile), { recursive: true, force: true })
  })
})
