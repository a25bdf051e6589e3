// What a hostile host does on a devnet, for the adversarial end-to-end tests: onboarding requests with a key it
// holds and a genuine quote of any build (a rogue image on its own TEE), and the check that matters in the end:
// the master secret was never encrypted to that key, neither in any transaction on chain nor in any node's outbox.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import Database from 'better-sqlite3'
import { bytesToHex, createWalletClient, hexToBytes, http, keccak256, parseEventLogs, stringToHex, toFunctionSelector, type Address, type Hex } from 'viem'
import { foundry } from 'viem/chains'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { blobsToEnvelope, envelopeToBlobs } from '../src/chain/envelope.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { createRegistryClient, type OnboardRequest } from '../src/chain/registry.ts'
import { devAccount, type runDevnet } from '../src/devnet/network.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import { eciesDecrypt, onboardAad } from '../src/keys/ecies.ts'
import { registerReportData } from '../src/keys/reportData.ts'
import { addressOfPublicKey } from '../src/keys/signature.ts'
import { measurementOf } from '../src/tee/measurement.ts'
import { createOutboxStore } from '../src/store/outbox.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

export type Attacker = { secretKey: Uint8Array; pubkey64: Uint8Array; address: Address }

export function attackerKey(): Attacker {
  const secretKey = secp256k1.utils.randomSecretKey()
  const pubkey64 = secp256k1.getPublicKey(secretKey, false).subarray(1)
  return { secretKey, pubkey64, address: addressOfPublicKey(pubkey64) }
}

/** The measurement id and raw preimage of a simulated build (`label`). */
export async function buildMeasurement(label: string) {
  return measurementOf(await simulatedQuoteProvider({ measurement: simulatedMeasurement(label) }).getQuote(new Uint8Array(64)))
}

/**
 * 100 ETH for a dev account beyond the ones anvil funded at start, by a real transfer from the owner's account. Not
 * anvil_setBalance: it changes the state under an already-mined block, whose header then no longer matches the proofs
 * anvil serves for it, and the nodes' verified view would (rightly) refuse them.
 */
export async function fund(devnet: Devnet, address: Address): Promise<void> {
  if ((await devnet.publicClient.getBalance({ address })) >= 10n ** 19n) return
  const hash = await devnet.owner.sendTransaction({ to: address, value: 10n ** 20n })
  await devnet.publicClient.waitForTransactionReceipt({ hash })
}

/**
 * `requestOnboard` sent by the host itself, with its own key and a genuine quote (this devnet's PKI) of build
 * `label`, paid by dev account `payer`.
 */
export async function hostileRequest(devnet: Devnet, attacker: Attacker, label: string, payer = 13): Promise<OnboardRequest> {
  const rpcUrl = devnet.anvil.rpcUrl
  await fund(devnet, devAccount(payer).address)
  const wallet = createWalletClient({ account: devAccount(payer), chain: { ...foundry, rpcUrls: { default: { http: [rpcUrl] } } }, transport: http(rpcUrl) })
  const ref = await devnet.publicClient.getBlock({ blockTag: 'latest' })
  const provider = simulatedQuoteProvider({ platform: devnet.pki.mintPlatform(), measurement: simulatedMeasurement(label) })
  // The settings digest the request claims: the quote binds it (report data v2), whatever the host writes there.
  const settingsDigest = hexToBytes(keccak256(stringToHex(`settings of ${label}`)))
  const quote = await provider.getQuote(
    registerReportData({ chainId: foundry.id, registry: devnet.registry, pubkey64: attacker.pubkey64, refBlockNumber: ref.number, refBlockHash: ref.hash, settingsDigest }),
  )
  const blobs = envelopeToBlobs({
    kind: 'register',
    teeType: 'tdx',
    quote,
    pubkey64: attacker.pubkey64,
    refBlockNumber: ref.number,
    refBlockHash: hexToBytes(ref.hash),
    settingsDigest,
  })
  const registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
  const sent = await sendBlobTransaction({
    walletClient: wallet,
    publicClient: devnet.publicClient,
    to: devnet.registry,
    data: registry.calldata.requestOnboard(bytesToHex(attacker.pubkey64), ref.number),
    blobs,
  })
  // The request as its receipt's OnboardRequested log states it (no log scan: docs/protocol.md#limits).
  const [event] = parseEventLogs({ abi: keyManagerAbi, logs: sent.receipt.logs, eventName: 'OnboardRequested', strict: true })
  const args = event!.args
  return {
    requestId: args.requestId,
    requester: args.requester,
    pubkey64: args.pubkey64,
    quoteBlobHash: args.quoteBlobHash,
    refBlockNumber: args.refBlockNumber,
    refBlockHash: args.refBlockHash,
    blockNumber: event!.blockNumber,
    blockHash: event!.blockHash,
    transactionHash: event!.transactionHash,
  }
}

/** Blobs of every `fulfillOnboard` transaction on chain, reverted or not. */
async function fulfillBlobsOnChain(devnet: Devnet, fromBlock = 0n): Promise<Hex[][]> {
  const selector = toFunctionSelector('fulfillOnboard(uint256[],bytes)')
  const head = await devnet.publicClient.getBlockNumber({ cacheTime: 0 })
  const found: Hex[][] = []
  for (let n = fromBlock; n <= head; n++) {
    const block = await devnet.publicClient.getBlock({ blockNumber: n, includeTransactions: true })
    for (const tx of block.transactions) {
      if (tx.to?.toLowerCase() !== devnet.registry.toLowerCase() || !tx.input.startsWith(selector)) continue
      const blobs: Hex[] = []
      for (const hash of tx.blobVersionedHashes ?? []) blobs.push((await devnet.publicClient.request({ method: 'anvil_getBlobByHash', params: [hash] } as never)) as Hex)
      found.push(blobs)
    }
  }
  return found
}

/** Every stored `fulfillOnboard` of a node's outbox: the blobs it signed (sent or not). */
function fulfillBlobsInOutbox(devnet: Devnet, index: number): Hex[][] {
  const db = new Database(join(devnet.nodes[index - 1]!.dir, 'keymanager.sqlite'), { readonly: true, fileMustExist: true })
  try {
    return createOutboxStore(db)
      .all(devAccount(index).address)
      .filter((e) => e.label === 'fulfillOnboard' && e.blobs)
      .map((e) => {
        const blobs: Hex[] = []
        for (let at = 0; at < e.blobs!.length; at += 131072) blobs.push(bytesToHex(e.blobs!.subarray(at, at + 131072)))
        return blobs
      })
  } finally {
    db.close()
  }
}

/** How many envelope entries `attacker` can decrypt (each entry tried under its own request id and generation). */
function decryptable(blobSets: Hex[][], attacker: Attacker, devnet: Devnet): number {
  let opened = 0
  for (const blobs of blobSets) {
    const envelope = blobsToEnvelope(blobs)
    assert.equal(envelope.kind, 'onboard')
    if (envelope.kind !== 'onboard') continue
    for (const entry of envelope.entries) {
      const aad = onboardAad({ chainId: foundry.id, registry: devnet.registry, requestId: entry.requestId, generation: envelope.generation })
      try {
        eciesDecrypt(attacker.secretKey, entry.ciphertext, aad)
        opened++
      } catch {
        // not encrypted to the attacker: what must hold for every entry
      }
    }
  }
  return opened
}

/**
 * Where the master secret was encrypted to `key`: entries of `fulfillOnboard` blobs on chain, and of those stored in
 * the outboxes of nodes `helpers`, that `key` decrypts. An adversarial test asserts both are 0 for the attacker's
 * key; a control request the test makes with a key of its own shows the scan finds what is there.
 */
export async function encryptedTo(
  devnet: Devnet,
  key: Attacker,
  helpers: number[],
  { fromBlock = 0n }: { fromBlock?: bigint } = {},
): Promise<{ onChain: number; inOutboxes: number; scanned: number }> {
  const onChain = await fulfillBlobsOnChain(devnet, fromBlock)
  const stored = helpers.flatMap((index) => fulfillBlobsInOutbox(devnet, index))
  return { onChain: decryptable(onChain, key, devnet), inOutboxes: decryptable(stored, key, devnet), scanned: onChain.length + stored.length }
}
