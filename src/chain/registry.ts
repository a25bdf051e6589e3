import {
  encodeFunctionData,
  getAddress,
  keccak256,
  encodeAbiParameters,
  type Address,
  type Hex,
  parseEventLogs,
  type PublicClient,
  type TransactionReceipt,
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
}: {
  publicClient: PublicClient
  address: Address
}) {
  const registry = getAddress(address)
  // Every read and every log goes through viem with the generated ABI (`as const`): argument and result types come
  // from the contract, so a changed signature is a type error here, not a wrong value at run time.
  const contract = { address: registry, abi: keyManagerAbi } as const

  /**
   * The request id a `requestOnboard` receipt's own OnboardRequested event carries (from this registry, for
   * `requester`): how a node learns its id without scanning logs (docs/protocol.md#limits).
   */
  function requestIdFromReceipt(receipt: TransactionReceipt, requester: Address): bigint | undefined {
    const own = parseEventLogs({ abi: keyManagerAbi, logs: receipt.logs, eventName: 'OnboardRequested', strict: true }).find(
      (log) => log.address.toLowerCase() === registry.toLowerCase() && log.args.requester.toLowerCase() === requester.toLowerCase(),
    )
    return own?.args.requestId
  }

  return {
    address: registry,
    owner: () => publicClient.readContract({ ...contract, functionName: 'owner' }),
    xPub: () => publicClient.readContract({ ...contract, functionName: 'xPub' }),
    masterPubkey: () => publicClient.readContract({ ...contract, functionName: 'masterPubkey' }),
    generation: () => publicClient.readContract({ ...contract, functionName: 'generation' }),
    requestTtl: () => publicClient.readContract({ ...contract, functionName: 'requestTtl' }),
    bootstrapper: () => publicClient.readContract({ ...contract, functionName: 'bootstrapper' }),
    minTcbEvaluationDataNumber: () => publicClient.readContract({ ...contract, functionName: 'minTcbEvaluationDataNumber' }),
    /** Block in which `mark` was first recorded, 0n if never (docs/protocol.md#verified-chain-view). */
    freshnessMarkedAt: (mark: Hex) => publicClient.readContract({ ...contract, functionName: 'freshnessMarkedAt', args: [mark] }),
    isMeasurementAllowed: (id: Hex) => publicClient.readContract({ ...contract, functionName: 'isMeasurementAllowed', args: [id] }),
    isFmspcAllowed: (fmspc: Hex) => publicClient.readContract({ ...contract, functionName: 'isFmspcAllowed', args: [fmspc] }),
    async tcbPolicy() {
      const [[acceptedStatuses, maxCollateralAge, fmspcAllowlistOn], minTcbEvaluationDataNumber] = await Promise.all([
        publicClient.readContract({ ...contract, functionName: 'tcbPolicy' }),
        publicClient.readContract({ ...contract, functionName: 'minTcbEvaluationDataNumber' }),
      ])
      return { acceptedStatuses, maxCollateralAge, fmspcAllowlistOn, minTcbEvaluationDataNumber }
    },
    async getRequest(requestId: bigint) {
      const [key, expiresAt, status, commitment] = await publicClient.readContract({ ...contract, functionName: 'getRequest', args: [requestId] })
      return { key, expiresAt, status: REQUEST_STATUS[status] ?? 'none', commitment }
    },
    verifyAttestation: (hostname: string, appData: Hex, signature: Hex) =>
      publicClient.readContract({ ...contract, functionName: 'verifyAttestation', args: [hostname, appData, signature] }),
    requestIdFromReceipt,
    calldata: {
      bootstrap: (pubkey64: Hex) => encodeFunctionData({ abi: keyManagerAbi, functionName: 'bootstrap', args: [pubkey64] }),
      requestOnboard: (pubkey64: Hex, refBlockNumber: bigint) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'requestOnboard', args: [pubkey64, refBlockNumber] }),
      fulfillOnboard: (requestIds: readonly bigint[], signature: Hex) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'fulfillOnboard', args: [requestIds, signature] }),
      confirmOnboard: (requestId: bigint, signature: Hex) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'confirmOnboard', args: [requestId, signature] }),
      markFresh: (mark: Hex) => encodeFunctionData({ abi: keyManagerAbi, functionName: 'markFresh', args: [mark] }),
      setBootstrapper: (bootstrapper: Address) => encodeFunctionData({ abi: keyManagerAbi, functionName: 'setBootstrapper', args: [bootstrapper] }),
      setMinTcbEvaluationDataNumber: (minimum: number) =>
        encodeFunctionData({ abi: keyManagerAbi, functionName: 'setMinTcbEvaluationDataNumber', args: [minimum] }),
    },
  }
}
export type RegistryClient = ReturnType<typeof createRegistryClient>
