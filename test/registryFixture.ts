// A deployed, bootstrapped KeyManager registry on a real anvil, and the raw transactions the watcher and outbox tests
// need (requestOnboard, fulfillOnboard with a valid master-key signature), without a sidecar in between.
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { randomBytes } from 'node:crypto'
import {
  bytesToHex,
  createPublicClient,
  createTestClient,
  createWalletClient,
  custom,
  hexToBytes,
  http,
  parseEther,
  parseEventLogs,
  toBlobs,
  toHex,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
} from 'viem'
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { foundry } from 'viem/chains'
import { sendBlobTransaction } from '../src/chain/blobs.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { blobToCommitment, commitmentToVersionedHash } from '../src/chain/kzg.ts'
import { createRegistryClient } from '../src/chain/registry.ts'
import { publicKey64, signDigest } from '../src/keys/signature.ts'
import { onboardResponseDigest } from '../src/keys/typedData.ts'

export function chainFor(rpcUrl: string): Chain {
  return { ...foundry, rpcUrls: { default: { http: [rpcUrl] } } }
}

// No retries (a failed request is what outage tests look at); a long timeout, so that a busy machine (anvil's first blob
// tx loads its KZG setup) is not mistaken for a failure.
const transportOf = (rpcUrl: string) => http(rpcUrl, { retryCount: 0, timeout: 60_000 })

export function clientsFor(rpcUrl: string) {
  const chain = chainFor(rpcUrl)
  return {
    chain,
    // Receipts are polled often: anvil mines each transaction at once.
    publicClient: createPublicClient({ chain, transport: transportOf(rpcUrl), pollingInterval: 20 }) as PublicClient,
    testClient: createTestClient({ mode: 'anvil', chain, transport: transportOf(rpcUrl) }),
    walletFor: (account: Account) => createWalletClient<Transport, Chain, Account>({ account, chain, transport: transportOf(rpcUrl) }),
  }
}

/**
 * A public client whose transport calls `hook(method, params)` before each request goes to anvil. The hook may act
 * on the chain at exactly that point (revert it, mine), throw (a failed request), or return `{ result }` to answer
 * in anvil's place (an RPC that lags behind the chain); `undefined` forwards the request.
 */
export function hookedPublicClient(
  rpcUrl: string,
  hook: (method: string, params: unknown) => Promise<{ result: unknown } | undefined | void> | { result: unknown } | undefined | void,
): PublicClient {
  const chain = chainFor(rpcUrl)
  const forward = transportOf(rpcUrl)({ chain, retryCount: 0 })
  return createPublicClient({
    chain,
    transport: custom(
      {
        async request({ method, params }: { method: string; params: unknown }) {
          const answer = await hook(method, params)
          if (answer) return answer.result
          return forward.request({ method, params } as never)
        },
      },
      { retryCount: 0 },
    ),
    pollingInterval: 20,
  }) as PublicClient
}

/** A fresh account holding 100 ETH (anvil_setBalance): no nonce is shared between tests. */
export async function fundedAccount(rpcUrl: string): Promise<PrivateKeyAccount> {
  const account = privateKeyToAccount(generatePrivateKey())
  await clientsFor(rpcUrl).testClient.setBalance({ address: account.address, value: parseEther('100') })
  return account
}

export function blobOf(text: string): Hex {
  return toBlobs({ data: toHex(text) })[0]!
}

export function versionedHashOf(blob: Hex): Hex {
  return bytesToHex(commitmentToVersionedHash(blobToCommitment(hexToBytes(blob))))
}

export type RegistryFixture = Awaited<ReturnType<typeof deployRegistryFixture>>

/** Deploys a registry and bootstraps it with a random master key. `fromBlock` is the deployment block. */
export async function deployRegistryFixture(rpcUrl: string) {
  const { publicClient, walletFor } = clientsFor(rpcUrl)
  const owner = await fundedAccount(rpcUrl)
  const fromBlock = (await publicClient.getBlockNumber({ cacheTime: 0 })) + 1n
  const address = await deployKeyManager({ walletClient: walletFor(owner), publicClient, owner: owner.address, measurementDelay: 0n })
  const registry = createRegistryClient({ publicClient, address })
  const master = secp256k1.utils.randomSecretKey()
  await sendBlobTransaction({
    walletClient: walletFor(owner),
    publicClient,
    to: address,
    data: registry.calldata.bootstrap(bytesToHex(publicKey64(master))),
    blobs: [blobOf('bootstrap envelope')],
  })

  /** The calldata of `requestOnboard` for a fresh key, referencing the latest block. */
  async function requestOnboardCall(): Promise<{ data: Hex; blobs: Hex[]; pubkey64: Hex }> {
    const pubkey64 = bytesToHex(publicKey64(secp256k1.utils.randomSecretKey()))
    const ref = await publicClient.getBlockNumber({ cacheTime: 0 })
    return { data: registry.calldata.requestOnboard(pubkey64, ref), blobs: [blobOf(`register ${bytesToHex(randomBytes(8))}`)], pubkey64 }
  }

  /** The calldata of `fulfillOnboard(requestIds)`, signed by the master key over its response blob. */
  function fulfillCall(requestIds: bigint[]): { data: Hex; blobs: Hex[] } {
    const blob = blobOf(`onboard ${requestIds.join(',')} ${bytesToHex(randomBytes(8))}`)
    const digest = onboardResponseDigest({ chainId: foundry.id, registry: address, requestIds, responseBlobHash: versionedHashOf(blob), generation: 1n })
    return { data: registry.calldata.fulfillOnboard(requestIds, bytesToHex(signDigest(digest, master))), blobs: [blob] }
  }

  /** Sends `requestOnboard` from `from` and waits for it: the request id and where it was mined. */
  async function requestOnboard(from: PrivateKeyAccount) {
    const call = await requestOnboardCall()
    const sent = await sendBlobTransaction({ walletClient: walletFor(from), publicClient, to: address, ...call })
    const [event] = parseEventLogs({ abi: keyManagerAbi, logs: sent.receipt.logs, eventName: 'OnboardRequested', strict: true })
    if (!event) throw new Error(`no OnboardRequested event in ${sent.hash}`)
    const args = event.args as { requestId: bigint; requester: Address }
    // `requester` is the address of the request's key (pubkey64), not the account that paid for the transaction.
    return { requestId: args.requestId, requester: args.requester, pubkey64: call.pubkey64, blockNumber: sent.receipt.blockNumber, blockHash: sent.receipt.blockHash, hash: sent.hash }
  }

  async function fulfill(from: PrivateKeyAccount, requestIds: bigint[]) {
    const sent = await sendBlobTransaction({ walletClient: walletFor(from), publicClient, to: address, ...fulfillCall(requestIds) })
    return { blockNumber: sent.receipt.blockNumber, hash: sent.hash }
  }

  return { address, fromBlock, owner, registry, requestOnboardCall, fulfillCall, requestOnboard, fulfill }
}
