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

describe('generations on anvil', () => {
  test('rotation, overlap, escrow and recovery with the src/keys digests, aads and shares', async () => {
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

    // Three members: request (blob), answer signed by M1 (blob), receipt by the node key.
    const nodeKeys = [newKey(), newKey(), newKey()]
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
    assert.equal(await generations.memberCount(), 3n)

    // A planned rotation with a one-hour overlap. Member 0 proposes M2, encrypted to each member's node key.
    await send(owner, generationCalldata.startRotation(false, 3600n, 0n))
    const m2 = newKey()
    const proposalId = (await generations.proposalCount()) + 1n
    const ciphertexts = memberIds.map((memberId, i) =>
      eciesEncrypt(publicKey33(nodeKeys[i]!), m2, rotationAad({ ...domain, memberId, generation: 2n, proposal: proposalId })),
    )
    // The rotate envelope's format is the node's; here the blob just carries the ciphertexts in recipient order.
    const rotateBlob = toBlobs({ data: toHex(ciphertexts.map(hex).join(',')) })[0]!
    const proposalDigest = generationProposalDigest({
      ...domain,
      proposal: proposalId,
      generation: 2n,
      masterPubkey64: publicKey64(m2),
      recipientIds: memberIds,
      proposalBlobHash: versionedHashOf(rotateBlob),
    })
    const proposed = await sendBlob(
      generationCalldata.proposeGeneration(2n, memberIds[0]!, hex(publicKey64(m2)), memberIds, hex(signDigest(proposalDigest, nodeKeys[0]!))),
      rotateBlob,
    )
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
    const ownerKeyFile = join(mkdtempSync(join(tmpdir(), 'km-purge-')), 'owner.key')
    writeFileSync(ownerKeyFile, ownerKey, { mode: 0o600 })
    const purgeFlags = ['--rpc', anvil.rpcUrl, '--registry', address, '--owner-key-file', ownerKeyFile]
    const purgeErr: string[] = []
    assert.equal(await runGenerations('purge', ['generation', '2', ...purgeFlags], () => {}, (l) => purgeErr.push(l)), 1)
    assert.match(purgeErr.at(-1)!, /KeyManagerGenerationNotRetired/)
    assert.equal(await runGenerations('purge', ['generation', '1', ...purgeFlags], () => {}, () => {}), 0)
    assert.equal((await generations.generationInfo(1n)).purged, true)
    rmSync(dirname(ownerKeyFile), { recursive: true, force: true })

    // Guardians 3 of 5 (delay 0 on this registry), and the escrow of generation 2 signed by M2.
    const guardianKeys = Array.from({ length: 5 }, newKey)
    const setGuardians = await send(owner, generationCalldata.setGuardians(hex(new Uint8Array(guardianKeys.flatMap((k) => [...publicKey64(k)]))), 3))
    const guardianSet = events(setGuardians, 'GuardiansProposed')[0]!.args.guardianSet as bigint
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
    await send(owner, generationCalldata.startRecovery(enclaveRequest))

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

    // Revocation is visible to the registry client as 'revoked'.
    await send(owner, generationCalldata.revokeNode(memberIds[2]!))
    assert.equal((await registry.getRequest(memberIds[2]!)).status, 'revoked')
    assert.equal(await generations.memberCount(), 3n)
  })
})
