// Calldata and typed reads for the registry's generations (docs/protocol.md#generations): members and revocation,
// rotation, guardians, escrow and recovery. Reads here go through the RPC (`eth_call`): a decision to release or
// accept a secret must instead read the same values through the verified chain view (src/chain/view/layout.ts
// names every slot). The blob-carrying call (`proposeGeneration`) is sent like `fulfillOnboard`, with the rotate
// envelope as blob 0.
import { encodeFunctionData, getAddress, type Address, type Hex, type PublicClient } from 'viem'
import { keyManagerAbi } from './keyManagerArtifact.ts'
import { DEFAULT_MAX_LOG_RANGE, getLogsBounded } from './logs.ts'
import type { OnboardRequest } from './registry.ts'

export type GenerationInfo = {
  xPub: Address
  /** SEC1-compressed, `0x` for an unknown generation. */
  masterPubkey: Hex
  committedAt: bigint
  /** 0n while current. */
  retiresAt: bigint
  revoked: boolean
  purged: boolean
  quoteBlobHash: Hex
  /** 0n when never escrowed. */
  escrowGuardianSet: bigint
  escrowHash: Hex
}

export type RotationInfo = { open: boolean; emergency: boolean; overlap: bigint; forceDelay: bigint; startedAt: bigint }

export type ProposalInfo = {
  /** 0n when no proposal is pending. */
  id: bigint
  generation: bigint
  proposedAt: bigint
  recipients: number
  acks: number
  quorum: number
  proposerId: bigint
  xPub: Address
  masterPubkey: Hex
  proposalBlobHash: Hex
}

export type GuardianSetInfo = { pubkeysHash: Hex; threshold: number; count: number; activatesAt: bigint }

/** Where a log was mined: enough to fetch the blobs of its transaction. */
export type LogPlace = { blockNumber: bigint; blockHash: Hex; transactionHash: Hex }

/** `GenerationProposed` as logged (a hint: a node checks it against the proven proposal slots). */
export type ProposedEvent = LogPlace & {
  generation: bigint
  proposal: bigint
  proposerId: bigint
  xPub: Address
  masterPubkey: Hex
  proposalBlobHash: Hex
  recipientIds: readonly bigint[]
}

const encode = (functionName: string, args: readonly unknown[] = []): Hex =>
  encodeFunctionData({ abi: keyManagerAbi, functionName, args } as never)

/** Blocks read again on each event query: a reorg shallower than this is seen. */
const RESCAN_DEPTH = 64n

/** Calldata of the generation functions, in the contract's argument order (contracts/src/IKeyManager.sol). */
export const generationCalldata = {
  revokeNode: (memberId: bigint) => encode('revokeNode', [memberId]),
  startRotation: (emergency: boolean, overlap: bigint, forceDelay: bigint) => encode('startRotation', [emergency, overlap, forceDelay]),
  cancelRotation: () => encode('cancelRotation'),
  /** Sent with the rotate envelope as blob 0; `signature` is the proposer's `GenerationProposal` signature. */
  proposeGeneration: (generation: bigint, proposerId: bigint, masterPubkey64: Hex, recipientIds: readonly bigint[], signature: Hex) =>
    encode('proposeGeneration', [generation, proposerId, masterPubkey64, recipientIds, signature]),
  acknowledgeGeneration: (proposal: bigint, memberId: bigint, signature: Hex) => encode('acknowledgeGeneration', [proposal, memberId, signature]),
  commitGeneration: (proposal: bigint) => encode('commitGeneration', [proposal]),
  forceCommitGeneration: (proposal: bigint) => encode('forceCommitGeneration', [proposal]),
  revokeGeneration: (generation: bigint) => encode('revokeGeneration', [generation]),
  purgeGeneration: (generation: bigint) => encode('purgeGeneration', [generation]),
  /** `pubkeys`: the guardians' 64-byte keys concatenated; share i + 1 belongs to key i. */
  setGuardians: (pubkeys: Hex, threshold: number) => encode('setGuardians', [pubkeys, threshold]),
  /** `commitments`: `packCommitments` (src/keys/secretSharing.ts); `signature`: the generation master key's `GuardianEscrow`. */
  publishEscrow: (generation: bigint, guardianSet: bigint, commitments: Hex, encryptedShares: readonly Hex[], signature: Hex) =>
    encode('publishEscrow', [generation, guardianSet, commitments, encryptedShares, signature]),
  startRecovery: (requestId: bigint) => encode('startRecovery', [requestId]),
  cancelRecovery: () => encode('cancelRecovery'),
  releaseShare: (requestId: bigint, generation: bigint, encryptedShare: Hex, signature: Hex) =>
    encode('releaseShare', [requestId, generation, encryptedShare, signature]),
} as const

/**
 * Typed `eth_call` reads of the generation state (for tools and status pages; decisions use the chain view). Event
 * hints are read from `fromBlock` (the registry's deployment block) to the head, at most `maxRange` blocks per
 * `eth_getLogs` (docs/protocol.md#limits).
 */
export function createGenerationsClient({
  publicClient,
  address,
  fromBlock = 0n,
  maxRange = DEFAULT_MAX_LOG_RANGE,
}: {
  publicClient: PublicClient
  address: Address
  fromBlock?: bigint
  maxRange?: number
}) {
  const registry = getAddress(address)
  const read = <T>(functionName: string, args: readonly unknown[] = []) =>
    publicClient.readContract({ address: registry, abi: keyManagerAbi, functionName, args } as never) as Promise<T>
  // Each query's logs are kept with the block they were read up to; a later call reads only from there on, less
  // RESCAN_DEPTH blocks that a reorg may have replaced, so auto mode's periodic reads of a long-lived registry cost a
  // few ranges each, not the whole history. These are hints: each user checks them against proven slots, so a log a
  // deeper reorg removed can only be a candidate that the proof then drops.
  const seen = new Map<string, { to: bigint; logs: { args: unknown; blockNumber: bigint; blockHash: Hex; transactionHash: Hex }[] }>()
  async function events<T>(eventName: string, args?: Record<string, unknown>): Promise<(T & LogPlace)[]> {
    const toBlock = await publicClient.getBlockNumber({ cacheTime: 0 })
    const key = JSON.stringify([eventName, args ?? null], (_, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))
    const cached = seen.get(key)
    const from = cached && cached.to - RESCAN_DEPTH > fromBlock ? cached.to - RESCAN_DEPTH : fromBlock
    const fresh = (await getLogsBounded({ publicClient, address: registry, abi: keyManagerAbi, eventNames: [eventName], args, fromBlock: from, toBlock, maxRange })) as unknown as {
      args: unknown
      blockNumber: bigint
      blockHash: Hex
      transactionHash: Hex
    }[]
    const logs = [...(cached?.logs.filter((log) => log.blockNumber < from) ?? []), ...fresh]
    seen.set(key, { to: toBlock, logs })
    return (logs as { args: T; blockNumber: bigint; blockHash: Hex; transactionHash: Hex }[]).map((log) => ({
      ...log.args,
      blockNumber: log.blockNumber,
      blockHash: log.blockHash,
      transactionHash: log.transactionHash,
    }))
  }

  return {
    address: registry,
    memberCount: () => read<bigint>('memberCount'),
    requestGeneration: (requestId: bigint) => read<bigint>('requestGeneration', [requestId]),
    generationInfo: (generation: bigint) => read<GenerationInfo>('generationInfo', [generation]),
    generationOf: (xPub: Address) => read<bigint>('generationOf', [xPub]),
    isGenerationValid: (generation: bigint) => read<boolean>('isGenerationValid', [generation]),
    rotation: () => read<RotationInfo>('rotation'),
    proposal: () => read<ProposalInfo>('proposal'),
    proposalCount: () => read<bigint>('proposalCount'),
    hasAcknowledged: (proposal: bigint, memberId: bigint) => read<boolean>('hasAcknowledged', [proposal, memberId]),
    activeGuardianSet: () => read<bigint>('activeGuardianSet'),
    pendingGuardianSet: () => read<bigint>('pendingGuardianSet'),
    async guardianSetInfo(guardianSet: bigint): Promise<GuardianSetInfo> {
      const [pubkeysHash, threshold, count, activatesAt] = await read<readonly [Hex, number, number, bigint]>('guardianSetInfo', [guardianSet])
      return { pubkeysHash, threshold, count, activatesAt }
    },
    guardianIndex: (guardianSet: bigint, guardian: Address) => read<number>('guardianIndex', [guardianSet, guardian]),
    recoveryRequest: () => read<bigint>('recoveryRequest'),
    /** Bit i set when the guardian with share index i released its share of `generation` to `requestId`. */
    releasedShares: (requestId: bigint, generation: bigint) => read<bigint>('releasedShares', [requestId, generation]),
    // ---- event hints (never believed alone: each is checked against proven slots by its user)
    /** The `GenerationProposed` log of a proposal id. */
    proposedEvent: async (proposal: bigint): Promise<ProposedEvent | undefined> => (await events<ProposedEvent>('GenerationProposed', { proposal })).at(-1),
    /** The proposal a generation was committed from. */
    committedProposal: async (generation: bigint): Promise<bigint | undefined> =>
      (await events<{ proposal: bigint }>('GenerationCommitted', { generation })).at(-1)?.proposal,
    /** A request's `OnboardRequested` log (a hint: its user checks it against the proven request commitment). */
    requestEvent: async (requestId: bigint): Promise<OnboardRequest | undefined> => {
      const e = (await events<Omit<OnboardRequest, keyof LogPlace | 'blockNumber'>>('OnboardRequested', { requestId })).at(-1)
      return e && { ...e, requestId: e.requestId }
    },
    /** The keys of a guardian set as `GuardiansProposed` logged them (checked against the proven keys hash by its user). */
    guardiansProposed: async (guardianSet: bigint): Promise<(LogPlace & { guardianSet: bigint; threshold: number; activatesAt: bigint; pubkeys: Hex }) | undefined> =>
      (await events<{ guardianSet: bigint; threshold: number; activatesAt: bigint; pubkeys: Hex }>('GuardiansProposed', { guardianSet })).at(-1),
    /** Every escrow logged for a generation, oldest first (the one whose hash the chain stores is the escrow). */
    escrowsPublished: async (generation: bigint) =>
      events<{ generation: bigint; guardianSet: bigint; commitments: Hex; encryptedShares: readonly Hex[] }>('EscrowPublished', { generation }),
    /** Shares released to a recovery request for a generation (each checked against the escrow's commitments by the enclave). */
    sharesReleased: async (requestId: bigint, generation: bigint) =>
      events<{ requestId: bigint; generation: bigint; index: number; guardian: Address; encryptedShare: Hex }>('ShareReleased', { requestId, generation }),
    /** Ids of requests that ever confirmed (members, or revoked since): candidates for the member set. */
    confirmedIds: async (): Promise<bigint[]> => [...new Set((await events<{ requestId: bigint }>('OnboardConfirmed')).map((e) => e.requestId))],
  }
}
export type GenerationsClient = ReturnType<typeof createGenerationsClient>
