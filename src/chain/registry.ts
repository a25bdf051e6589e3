import {
  encodeFunctionData,
  getAddress,
  keccak256,
  encodeAbiParameters,
  type Address,
  type Hex,
  type PublicClient,
} from 'viem'
import { keyManagerAbi } from './keyManagerArtifact.ts'

/** Request status as the contract stores it (docs/protocol.md#registry-contract); 'confirmed' is a member, 'revoked' was removed by `revokeNode`. */
export const REQUEST_STATUS = ['none', 'pending', 'fulfilled', 'confirmed', 'revoked'] as const
export type RequestStatus = (typeof REQUEST_STATUS)[number]

export type OnboardRequest = {
  requestId: bigint
  requester: Address
  pubkey64: Hex
  quoteBlobHash: Hex
  refBlockNumber: bigint
  refBlockHash: Hex
  blockNumber: bigint
  blockHash: Hex
  transactionHash: Hex
}

export type OnboardedEvent = {
  requestId: bigint
  responseBlobHash: Hex
  index: bigint
  blockNumber: bigint
  blockHash: Hex
  transactionHash: Hex
}

/**
 * The commitment the contract stores per request: it lets a helper check the event fields it was given
 * against storage (`getRequest`), so a log that was altered in transit is caught.
 */
export function requestCommitment(r: Pick<OnboardRequest, 'pubkey64' | 'quoteBlobHash' | 'refBlockNumber' | 'refBlockHash'>): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint64' }, { type: 'bytes32' }],
      [keccak256(r.pubkey64), r.quoteBlobHash, r.refBlockNumber, r.refBlockHash],
    ),
  )
}

/** Typed reads of the KeyManager registry, and calldata for its writes. */
export function createRegistryClient({
  publicClient,
  address,
  fromBlock = 0n,
}: {
  publicClient: PublicClient
  address: Address
  /** First block to scan for events (the registry's deployment block). */
  fromBlock?: bigint
}) {
  const registry = getAddress(address)
  const read = <T>(functionName: string, args: readonly unknown[] = []) =>
    publicClient.readContract({ address: registry, abi: keyManagerAbi, functionName, args } as never) as Promise<T>

  async function onboardRequests(filter: { requestId?: bigint; requester?: Address }): Promise<OnboardRequest[]> {
    const logs = await publicClient.getContractEvents({
      address: registry,
      abi: keyManagerAbi,
      eventName: 'OnboardRequested',
      args: filter,
      fromBlock,
      toBlock: 'latest',
      strict: true,
    })
    return logs.map((log) => {
      const a = log.args as unknown as {
        requestId: bigint
        requester: Address
        pubkey64: Hex
        quoteBlobHash: Hex
        refBlockNumber: bigint
        refBlockHash: Hex
      }
      return {
        requestId: a.requestId,
        requester: a.requester,
        pubkey64: a.pubkey64,
        quoteBlobHash: a.quoteBlobHash,
        refBlockNumber: a.refBlockNumber,
        refBlockHash: a.refBlockHash,
        blockNumber: log.blockNumber,
        blockHash: log.blockHash,
        transactionHash: log.transactionHash,
      }
    })
  }

  return {
    address: registry,
    owner: () => read<Address>('owner'),
    xPub: () => read<Address>('xPub'),
    masterPubkey: () => read<Hex>('masterPubkey'),
    generation: () => read<bigint>('generation'),
    requestTtl: () => read<bigint>('requestTtl'),
    bootstrapper: () => read<Address>('bootstrapper'),
    minTcbEvaluationDataNumber: () => read<number>('minTcbEvaluationDataNumber'),
    /** Block in which `mark` was first recorded, 0n if never (docs/protocol.md#verified-chain-view). */
    freshnessMarkedAt: (mark: Hex) => read<bigint>('freshnessMarkedAt', [mark]),
    isMeasurementAllowed: (id: Hex) => read<boolean>('isMeasurementAllowed', [id]),
    isFmspcAllowed: (fmspc: Hex) => read<boolean>('isFmspcAllowed', [fmspc]),
    async tcbPolicy() {
      const [acceptedStatuses, maxCollateralAge, fmspcAllowlistOn] = await read<readonly [number, bigint, boolean]>('tcbPolicy')
      return { acceptedStatuses, maxCollateralAge, fmspcAllowlistOn }
    },
    async getRequest(requestId: bigint) {
      const [key, expiresAt, status, commitment] = await read<readonly [Address, bigint, number, Hex]>('getRequest', [requestId])
      return { key, expiresAt, status: REQUEST_STATUS[status] ?? 'none', commitment }
    },
    verifyAttestation: (hostname: string, appData: Hex, signature: Hex) =>
      read<boolean>('verifyAttestation', [hostname, appData, signature]),
    onboardRequests,
    async onboarded(requestId: bigint): Promise<OnboardedEvent | undefined> {
      const logs = await publicClient.getContractEvents({
        address: registry,
        abi: keyManagerAbi,
        eventName: 'Onboarded',
        args: { requestId },
        fromBlock,
        toBlock: 'latest',
        strict: true,
      })
      const log = logs.at(-1)
      if (!log) return undefined
      const a = log.args as unknown as { requestId: bigint; responseBlobHash: Hex; index: bigint }
      return {
        requestId: a.requestId,
        responseBlobHash: a.responseBlobHash,
        index: a.index,
        blockNumber: log.blockNumber,
        blockHash: log.blockHash,
        transactionHash: log.transactionHash,
      }
    },
    calldata: {
      bootstrap: (pubkey64: Hex) => encodeFunctionData({ abi: keyManagerAbi, functionName: 'bootstrap', args: [pubkey64] } as never),
      requestOnboard: (pubkey64: Hex, refBlockNumber: bigint) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'requestOnboard', args: [pubkey64, refBlockNumber] } as never),
      fulfillOnboard: (requestIds: readonly bigint[], signature: Hex) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'fulfillOnboard', args: [requestIds, signature] } as never),
      confirmOnboard: (requestId: bigint, signature: Hex) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'confirmOnboard', args: [requestId, signature] } as never),
      markFresh: (mark: Hex) => encodeFunctionData({ abi: keyManagerAbi, functionName: 'markFresh', args: [mark] } as never),
      setBootstrapper: (bootstrapper: Address) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'setBootstrapper', args: [bootstrapper] } as never),
      setMinTcbEvaluationDataNumber: (minimum: number) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'setMinTcbEvaluationDataNumber', args: [minimum] } as never),
    },
  }
}
export type RegistryClient = ReturnType<typeof createRegistryClient>
