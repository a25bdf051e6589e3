// Newcomers held by the bench process (many in one process, as the scale bench allows): each has its own key pair,
// a genuine quote of the devnet's allowed build (the devnet PKI, report data v2 binding its key and reference block)
// and a real `requestOnboard` blob transaction (EIP-7594 cell proofs on Osaka). They do not run a sidecar: they send
// their request, and the bench checks that the answer on chain decrypts under their key. Helpers are real sidecars.
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bytesToHex, hexToBytes, keccak256, parseEventLogs, stringToHex, toFunctionSelector, type Address, type Hex, type LocalAccount, type PublicClient } from 'viem'
import { foundry } from 'viem/chains'
import { buildBlobSidecars, signBlobTransaction } from '../../src/chain/blobTransaction.ts'
import { blobsToEnvelope, envelopeToBlobs } from '../../src/chain/envelope.ts'
import { keyManagerAbi } from '../../src/chain/keyManagerArtifact.ts'
import { createRegistryClient } from '../../src/chain/registry.ts'
import type { DevnetPki } from '../../src/devnet/pki.ts'
import { DEVNET_MEASUREMENT_LABEL } from '../../src/devnet/network.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../../src/devnet/simulated.ts'
import { eciesDecrypt, onboardAad } from '../../src/keys/ecies.ts'
import { registerReportData } from '../../src/keys/reportData.ts'

export type Newcomer = { secretKey: Uint8Array; pubkey64: Uint8Array; rawTx: Hex; hash: Hex }
export type SentRequest = { requestId: bigint; blockNumber: bigint; newcomer: Newcomer }

const SELECTORS = {
  requestOnboard: toFunctionSelector('requestOnboard(bytes,uint64)'),
  fulfillOnboard: toFunctionSelector('fulfillOnboard(uint256[],bytes)'),
  confirmOnboard: toFunctionSelector('confirmOnboard(uint256,bytes)'),
  markFresh: toFunctionSelector('markFresh(bytes32)'),
}
export type TxKind = keyof typeof SELECTORS

type Rpc = PublicClient

/** Signs `count` requests from `payer` with consecutive nonces (KZG cell proofs included), ready to send. */
export async function prepareNewcomers(options: { count: number; payer: LocalAccount; publicClient: Rpc; registry: Address; pki: DevnetPki }): Promise<Newcomer[]> {
  const { count, payer, publicClient, registry, pki } = options
  const client = createRegistryClient({ publicClient, address: registry })
  const provider = simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement: simulatedMeasurement(DEVNET_MEASUREMENT_LABEL) })
  const ref = await publicClient.getBlock({ blockTag: 'latest' })
  const settingsDigest = hexToBytes(keccak256(stringToHex('bench newcomer settings')))
  let nonce = await publicClient.getTransactionCount({ address: payer.address, blockTag: 'pending' })
  const fees = await publicClient.estimateFeesPerGas()
  const maxFeePerBlobGas = 10n * (await publicClient.getBlobBaseFee()) + 1_000_000_000n
  const out: Newcomer[] = []
  for (let i = 0; i < count; i++) {
    // KZG proofs are synchronous: let the event loop breathe between newcomers (the devnet beacon server runs in this
    // process and the nodes wait on it).
    await new Promise((resolve) => setImmediate(resolve))
    const secretKey = secp256k1.utils.randomSecretKey()
    const pubkey64 = secp256k1.getPublicKey(secretKey, false).subarray(1)
    const quote = await provider.getQuote(
      registerReportData({ chainId: foundry.id, registry, pubkey64, refBlockNumber: ref.number, refBlockHash: ref.hash, settingsDigest }),
    )
    const blobs = envelopeToBlobs({ kind: 'register', teeType: 'tdx', quote, pubkey64, refBlockNumber: ref.number, refBlockHash: hexToBytes(ref.hash), settingsDigest })
    const signed = await signBlobTransaction(
      payer,
      {
        chainId: foundry.id,
        nonce: nonce++,
        to: registry,
        data: client.calldata.requestOnboard(bytesToHex(pubkey64), ref.number),
        value: 0n,
        gas: 300_000n,
        maxFeePerGas: fees.maxFeePerGas * 4n,
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
        maxFeePerBlobGas,
      },
      buildBlobSidecars(blobs, 1),
    )
    out.push({ secretKey, pubkey64, rawTx: signed.raw, hash: signed.hash })
  }
  return out
}

/**
 * Sends the prepared requests so that they land together. Automine: mining is paused while they enter the pool, then
 * blocks are mined until the pool holds none of them (a block carries at most the fork's blob limit), then automine
 * resumes. Interval mining (`intervalMining`): they enter the pool at once and the chain's own blocks take them, each
 * up to the blob limit (switching automine on would end interval mining).
 */
export async function sendTogether(publicClient: Rpc, newcomers: Newcomer[], { intervalMining = false }: { intervalMining?: boolean } = {}): Promise<SentRequest[]> {
  const rpc = (method: string, params: unknown[] = []) => publicClient.request({ method, params } as never) as Promise<unknown>
  if (intervalMining) {
    await Promise.all(newcomers.map((n) => rpc('eth_sendRawTransaction', [n.rawTx])))
  } else {
    await rpc('evm_setAutomine', [false])
    try {
      for (const n of newcomers) await rpc('eth_sendRawTransaction', [n.rawTx])
      for (let i = 0; i < 10_000; i++) {
        const receipt = await publicClient.getTransactionReceipt({ hash: newcomers.at(-1)!.hash }).catch(() => undefined)
        if (receipt) break
        await rpc('evm_mine')
      }
    } finally {
      await rpc('evm_setAutomine', [true])
    }
  }
  const sent: SentRequest[] = []
  for (const newcomer of newcomers) {
    const receipt = await publicClient.waitForTransactionReceipt({ hash: newcomer.hash })
    if (receipt.status !== 'success') throw new Error(`requestOnboard ${newcomer.hash} reverted`)
    const [event] = parseEventLogs({ abi: keyManagerAbi, logs: receipt.logs, eventName: 'OnboardRequested', strict: true })
    sent.push({ requestId: event!.args.requestId, blockNumber: receipt.blockNumber, newcomer })
  }
  return sent
}

export type FulfilTx = { hash: Hex; blockNumber: bigint; reverted: boolean; requestIds: bigint[]; blobs: Hex[] }

/** Registry transactions in blocks [from, to], by kind; fulfilments with their request ids and blobs. */
export async function registryTxs(publicClient: Rpc, registry: Address, from: bigint, to: bigint) {
  const counts: Record<TxKind, number> = { requestOnboard: 0, fulfillOnboard: 0, confirmOnboard: 0, markFresh: 0 }
  const reverted: Record<TxKind, number> = { requestOnboard: 0, fulfillOnboard: 0, confirmOnboard: 0, markFresh: 0 }
  const fulfils: FulfilTx[] = []
  for (let b = from; b <= to; b++) {
    const block = await publicClient.getBlock({ blockNumber: b, includeTransactions: true })
    for (const tx of block.transactions) {
      if (tx.to?.toLowerCase() !== registry.toLowerCase()) continue
      const kind = (Object.keys(SELECTORS) as TxKind[]).find((k) => tx.input.startsWith(SELECTORS[k]))
      if (!kind) continue
      counts[kind]++
      const receipt = await publicClient.getTransactionReceipt({ hash: tx.hash })
      if (receipt.status === 'reverted') reverted[kind]++
      if (kind === 'fulfillOnboard') {
        const blobs: Hex[] = []
        for (const hash of (tx as { blobVersionedHashes?: Hex[] }).blobVersionedHashes ?? [])
          blobs.push((await publicClient.request({ method: 'anvil_getBlobByHash', params: [hash] } as never)) as Hex)
        const ids = parseEventLogs({ abi: keyManagerAbi, logs: receipt.logs, eventName: 'Onboarded', strict: true }).map((l) => l.args.requestId)
        fulfils.push({ hash: tx.hash, blockNumber: b, reverted: receipt.status === 'reverted', requestIds: ids, blobs })
      }
    }
  }
  return { counts, reverted, fulfils }
}

/** True when `newcomer`'s entry in the fulfilment's envelope decrypts under its own key. */
export function answerDecrypts(fulfil: FulfilTx, request: SentRequest, registry: Address): boolean {
  const envelope = blobsToEnvelope(fulfil.blobs)
  if (envelope.kind !== 'onboard') return false
  const entry = envelope.entries.find((e) => e.requestId === request.requestId)
  if (!entry) return false
  try {
    eciesDecrypt(request.newcomer.secretKey, entry.ciphertext, onboardAad({ chainId: foundry.id, registry, requestId: request.requestId, generation: envelope.generation }))
    return true
  } catch {
    return false
  }
}
