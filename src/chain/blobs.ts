// Sending EIP-4844 blob transactions (docs/protocol.md#flows, docs/protocol.md#limits). Two ways, as the design allows:
// - `sendBlobTransaction`: the sidecar signs with a host-provided gas key (a viem local account) and waits.
// - `prepareBlobTransaction`: the sidecar returns an unsigned type-3 request, blobs with their KZG commitments and
//   proofs included, serialised as JSON (`serializePreparedBlobTransaction`). The host signs and sends it itself:
//
//     const tx = parsePreparedBlobTransaction(await response.json())
//     await sendPreparedBlobTransaction({ walletClient, publicClient, transaction: tx })   // or, by hand:
//     const hash = await walletClient.sendTransaction({ ...tx, account })                    // local account
//
//   viem serialises the network form (tx + blobs + commitments + proofs) from `sidecars` without a KZG setup, so
//   any signer works: `account.signTransaction({ ...tx, nonce })` then `eth_sendRawTransaction`.
//
// Blob transactions need `maxFeePerBlobGas` (viem does not estimate it): 2 × the current blob base fee by default.
// KZG commitments and proofs come from `getKzg()` (kzg.ts, the only c-kzg user), ~65 ms per blob.
import {
  BaseError,
  ExecutionRevertedError,
  blobsToCommitments,
  blobsToProofs,
  decodeErrorResult,
  hexToBytes,
  isAddress,
  isHex,
  toBlobSidecars,
  bytesToHex,
  type Abi,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem'
import { z } from 'zod'
import { envelopeToBlobs, MAX_BLOBS_PER_ENVELOPE, type Envelope } from './envelope.ts'
import { BlobTransactionRevertedError, ChainError } from './errors.ts'
import { commitmentToVersionedHash, getKzg } from './kzg.ts'

const BYTES_PER_BLOB = 131072

export type BlobSidecar = { blob: Hex; commitment: Hex; proof: Hex }

/** The blobs to carry: raw 0x-hex blobs (transaction order), or an envelope packed with `envelopeToBlobs`. */
export type BlobPayload = { blobs: readonly Hex[]; envelope?: undefined } | { envelope: Envelope; blobs?: undefined }

export type SendBlobTransactionParameters = BlobPayload & {
  /** Must hold a local account (the gas key); the sidecar signs itself. */
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  publicClient: PublicClient<Transport, Chain | undefined>
  to: Address
  data?: Hex | undefined
  value?: bigint | undefined
  /** Default: 2 × the current blob base fee. */
  maxFeePerBlobGas?: bigint | undefined
  /** Default: estimated by the node (a revert at estimation throws `BlobTransactionRevertedError` without a hash). */
  gas?: bigint | undefined
  /** Contract ABI, to decode custom errors of a revert (Error(string) and Panic(uint256) decode without it). */
  abi?: Abi | undefined
  /** How long to wait for the receipt. Default 120 s. */
  receiptTimeoutMs?: number | undefined
}

export type SentBlobTransaction = {
  hash: Hex
  receipt: TransactionReceipt
  /** One per blob, in blob order: what `blobhash(i)` returns inside the transaction. */
  blobVersionedHashes: Hex[]
}

/** Signs, sends and waits for a blob transaction; a revert is a `BlobTransactionRevertedError` with its reason. */
export async function sendBlobTransaction(parameters: SendBlobTransactionParameters): Promise<SentBlobTransaction> {
  const { walletClient, publicClient } = parameters
  const { sidecars, blobVersionedHashes } = buildSidecars(resolveBlobs(parameters))
  const maxFeePerBlobGas = parameters.maxFeePerBlobGas ?? 2n * (await publicClient.getBlobBaseFee())
  return submit({
    walletClient,
    publicClient,
    abi: parameters.abi,
    receiptTimeoutMs: parameters.receiptTimeoutMs,
    request: {
      to: parameters.to,
      data: parameters.data ?? '0x',
      value: parameters.value ?? 0n,
      gas: parameters.gas,
      maxFeePerBlobGas,
      sidecars,
      blobVersionedHashes,
    },
  })
}

export type PrepareBlobTransactionParameters = BlobPayload & {
  publicClient: PublicClient<Transport, Chain | undefined>
  to: Address
  data?: Hex | undefined
  value?: bigint | undefined
  /** The account expected to send it; when given, gas is estimated for it (bootstrap() is owner-only). */
  from?: Address | undefined
  gas?: bigint | undefined
  nonce?: number | undefined
  maxFeePerBlobGas?: bigint | undefined
  maxFeePerGas?: bigint | undefined
  maxPriorityFeePerGas?: bigint | undefined
}

/** An unsigned type-3 transaction with its blob sidecars; spread into viem's `sendTransaction` to send it. */
export type PreparedBlobTransaction = {
  type: 'eip4844'
  chainId: number
  from?: Address | undefined
  to: Address
  data: Hex
  value: bigint
  nonce?: number | undefined
  gas?: bigint | undefined
  maxFeePerGas: bigint
  maxPriorityFeePerGas: bigint
  maxFeePerBlobGas: bigint
  blobVersionedHashes: Hex[]
  sidecars: BlobSidecar[]
}

/** The JSON form: every number a 0x-hex quantity, every byte string 0x-hex. */
export type PreparedBlobTransactionJson = {
  type: 'eip4844'
  chainId: Hex
  from?: Address
  to: Address
  data: Hex
  value: Hex
  nonce?: Hex
  gas?: Hex
  maxFeePerGas: Hex
  maxPriorityFeePerGas: Hex
  maxFeePerBlobGas: Hex
  blobVersionedHashes: Hex[]
  sidecars: BlobSidecar[]
}

/** Builds the unsigned blob transaction a host signs and sends (docs/protocol.md#flows: the sidecar may hold no gas key). */
export async function prepareBlobTransaction(parameters: PrepareBlobTransactionParameters): Promise<PreparedBlobTransaction> {
  const { publicClient, from } = parameters
  const { sidecars, blobVersionedHashes } = buildSidecars(resolveBlobs(parameters))
  const [chainId, blobBaseFee, fees] = await Promise.all([
    publicClient.getChainId(),
    parameters.maxFeePerBlobGas === undefined ? publicClient.getBlobBaseFee() : undefined,
    parameters.maxFeePerGas === undefined || parameters.maxPriorityFeePerGas === undefined
      ? publicClient.estimateFeesPerGas()
      : undefined,
  ])
  const maxFeePerBlobGas = parameters.maxFeePerBlobGas ?? 2n * blobBaseFee!
  const data = parameters.data ?? '0x'
  const value = parameters.value ?? 0n
  let gas = parameters.gas
  if (gas === undefined && from !== undefined) {
    try {
      gas = await publicClient.estimateGas({ account: from, to: parameters.to, data, value, blobVersionedHashes, maxFeePerBlobGas })
    } catch (error) {
      throw revertedError(error, undefined) ?? error
    }
  }
  return {
    type: 'eip4844',
    chainId,
    ...(from !== undefined ? { from } : {}),
    to: parameters.to,
    data,
    value,
    ...(parameters.nonce !== undefined ? { nonce: parameters.nonce } : {}),
    ...(gas !== undefined ? { gas } : {}),
    maxFeePerGas: parameters.maxFeePerGas ?? fees!.maxFeePerGas,
    maxPriorityFeePerGas: parameters.maxPriorityFeePerGas ?? fees!.maxPriorityFeePerGas,
    maxFeePerBlobGas,
    blobVersionedHashes,
    sidecars,
  }
}

export function serializePreparedBlobTransaction(transaction: PreparedBlobTransaction): PreparedBlobTransactionJson {
  const quantity = (value: bigint | number): Hex => `0x${value.toString(16)}`
  return {
    type: 'eip4844',
    chainId: quantity(transaction.chainId),
    ...(transaction.from !== undefined ? { from: transaction.from } : {}),
    to: transaction.to,
    data: transaction.data,
    value: quantity(transaction.value),
    ...(transaction.nonce !== undefined ? { nonce: quantity(transaction.nonce) } : {}),
    ...(transaction.gas !== undefined ? { gas: quantity(transaction.gas) } : {}),
    maxFeePerGas: quantity(transaction.maxFeePerGas),
    maxPriorityFeePerGas: quantity(transaction.maxPriorityFeePerGas),
    maxFeePerBlobGas: quantity(transaction.maxFeePerBlobGas),
    blobVersionedHashes: [...transaction.blobVersionedHashes],
    sidecars: transaction.sidecars.map(({ blob, commitment, proof }) => ({ blob, commitment, proof })),
  }
}

/** The JSON a sidecar returned was not a well-formed prepared blob transaction. */
export class InvalidPreparedTransactionError extends ChainError {
  override name = 'InvalidPreparedTransactionError'
  constructor(detail: string) {
    super('bad_request', 'Invalid prepared blob transaction.', { metaMessages: [`detail: ${detail}`] })
  }
}

const hexBytes = (length: number) =>
  z.string().refine((value) => value.length === 2 + 2 * length && isHex(value, { strict: true }), `expected ${length} bytes of 0x-hex`)
const quantity = z
  .string()
  .regex(/^0x(0|[1-9a-f][0-9a-f]{0,63})$/, 'expected a 0x-hex quantity without leading zeros')
  .transform((value) => BigInt(value))
const address = z.string().refine((value) => isAddress(value, { strict: false }), 'expected an address')
const preparedSchema = z.strictObject({
  type: z.literal('eip4844'),
  chainId: quantity,
  from: address.optional(),
  to: address,
  data: z.string().refine((value) => value.length % 2 === 0 && isHex(value, { strict: true }), 'expected 0x-hex bytes'),
  value: quantity,
  nonce: quantity.optional(),
  gas: quantity.optional(),
  maxFeePerGas: quantity,
  maxPriorityFeePerGas: quantity,
  maxFeePerBlobGas: quantity,
  blobVersionedHashes: z.array(hexBytes(32)).min(1).max(MAX_BLOBS_PER_ENVELOPE),
  sidecars: z
    .array(z.strictObject({ blob: hexBytes(BYTES_PER_BLOB), commitment: hexBytes(48), proof: hexBytes(48) }))
    .min(1)
    .max(MAX_BLOBS_PER_ENVELOPE),
})

/**
 * Validates JSON from `serializePreparedBlobTransaction` and checks each versioned hash against its commitment
 * (the KZG proofs are checked by the node that receives the transaction).
 */
export function parsePreparedBlobTransaction(json: unknown): PreparedBlobTransaction {
  const parsed = preparedSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidPreparedTransactionError(`${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`)
  }
  const tx = parsed.data
  if (tx.chainId > BigInt(Number.MAX_SAFE_INTEGER) || (tx.nonce !== undefined && tx.nonce > BigInt(Number.MAX_SAFE_INTEGER)))
    throw new InvalidPreparedTransactionError('chainId or nonce is too large')
  if (tx.sidecars.length !== tx.blobVersionedHashes.length)
    throw new InvalidPreparedTransactionError('one versioned hash per sidecar is required')
  tx.sidecars.forEach((sidecar, i) => {
    const expected = bytesToHex(commitmentToVersionedHash(hexToBytes(sidecar.commitment as Hex)))
    if (expected !== tx.blobVersionedHashes[i]!.toLowerCase())
      throw new InvalidPreparedTransactionError(`blobVersionedHashes.${i} does not match sidecars.${i}.commitment`)
  })
  return {
    type: 'eip4844',
    chainId: Number(tx.chainId),
    ...(tx.from !== undefined ? { from: tx.from as Address } : {}),
    to: tx.to as Address,
    data: tx.data as Hex,
    value: tx.value,
    ...(tx.nonce !== undefined ? { nonce: Number(tx.nonce) } : {}),
    ...(tx.gas !== undefined ? { gas: tx.gas } : {}),
    maxFeePerGas: tx.maxFeePerGas,
    maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
    maxFeePerBlobGas: tx.maxFeePerBlobGas,
    blobVersionedHashes: tx.blobVersionedHashes as Hex[],
    sidecars: tx.sidecars as BlobSidecar[],
  }
}

/** Host side: signs a prepared transaction with the wallet's local account, sends it and waits, like `sendBlobTransaction`. */
export async function sendPreparedBlobTransaction(parameters: {
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  publicClient: PublicClient<Transport, Chain | undefined>
  transaction: PreparedBlobTransaction
  abi?: Abi | undefined
  receiptTimeoutMs?: number | undefined
}): Promise<SentBlobTransaction> {
  const { transaction: tx, publicClient } = parameters
  const chainId = await publicClient.getChainId()
  if (chainId !== tx.chainId) throw new TypeError(`prepared for chain ${tx.chainId}, but the client is on chain ${chainId}`)
  return submit({
    ...parameters,
    request: {
      to: tx.to,
      data: tx.data,
      value: tx.value,
      gas: tx.gas,
      nonce: tx.nonce,
      maxFeePerGas: tx.maxFeePerGas,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
      maxFeePerBlobGas: tx.maxFeePerBlobGas,
      sidecars: tx.sidecars,
      blobVersionedHashes: tx.blobVersionedHashes,
    },
  })
}

type SubmitRequest = {
  to: Address
  data: Hex
  value: bigint
  gas?: bigint | undefined
  nonce?: number | undefined
  maxFeePerGas?: bigint | undefined
  maxPriorityFeePerGas?: bigint | undefined
  maxFeePerBlobGas: bigint
  sidecars: BlobSidecar[]
  blobVersionedHashes: Hex[]
}

async function submit(parameters: {
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  publicClient: PublicClient<Transport, Chain | undefined>
  request: SubmitRequest
  abi?: Abi | undefined
  receiptTimeoutMs?: number | undefined
}): Promise<SentBlobTransaction> {
  const { walletClient, publicClient, request, abi } = parameters
  const account = walletClient.account
  if (account?.type !== 'local')
    throw new TypeError('walletClient needs a local account (the gas key): blob transactions are signed in process')
  let hash: Hex
  try {
    // With `sidecars` and `blobVersionedHashes` given, viem computes no KZG itself and serialises these.
    hash = await walletClient.sendTransaction({
      account,
      chain: walletClient.chain,
      type: 'eip4844',
      to: request.to,
      data: request.data,
      value: request.value,
      gas: request.gas,
      nonce: request.nonce,
      maxFeePerGas: request.maxFeePerGas,
      maxPriorityFeePerGas: request.maxPriorityFeePerGas,
      maxFeePerBlobGas: request.maxFeePerBlobGas,
      sidecars: request.sidecars,
      blobVersionedHashes: request.blobVersionedHashes,
    } as never)
  } catch (error) {
    throw revertedError(error, abi) ?? error
  }
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: parameters.receiptTimeoutMs ?? 120_000 })
  if (receipt.status === 'reverted') {
    // Receipts carry no revert data: replay the call on the block's state to recover the reason.
    let replayError: unknown
    try {
      const tx = await publicClient.getTransaction({ hash })
      await publicClient.call({
        account: account.address,
        to: request.to,
        data: request.data,
        value: request.value,
        gas: tx.gas,
        blockNumber: receipt.blockNumber,
        blobVersionedHashes: request.blobVersionedHashes,
        maxFeePerBlobGas: request.maxFeePerBlobGas,
      })
    } catch (error) {
      replayError = error
    }
    const decoded = replayError === undefined ? {} : decodeRevert(replayError, abi)
    throw new BlobTransactionRevertedError({ hash, receipt, ...decoded, cause: replayError })
  }
  return { hash, receipt, blobVersionedHashes: request.blobVersionedHashes }
}

/** The typed error for a viem error that is an execution revert (at gas estimation), else undefined. */
function revertedError(error: unknown, abi: Abi | undefined): BlobTransactionRevertedError | undefined {
  if (!(error instanceof BaseError) || !error.walk((e) => e instanceof ExecutionRevertedError)) return undefined
  return new BlobTransactionRevertedError({ ...decodeRevert(error, abi), cause: error })
}

function decodeRevert(error: unknown, abi: Abi | undefined): { revertData?: Hex; errorName?: string; errorArgs?: readonly unknown[] } {
  const revertData = findRevertData(error)
  if (revertData === undefined || revertData === '0x') return revertData === undefined ? {} : { revertData }
  try {
    const decoded = decodeErrorResult({ abi: abi ?? [], data: revertData })
    return { revertData, errorName: decoded.errorName, errorArgs: decoded.args ?? [] }
  } catch {
    return { revertData }
  }
}

/** Revert data sits on the innermost RPC error of viem's cause chain (`data`, or `data.data` for some nodes). */
function findRevertData(error: unknown): Hex | undefined {
  let found: Hex | undefined
  for (let current = error, depth = 0; current !== null && typeof current === 'object' && depth < 16; depth++) {
    const data = (current as { data?: unknown }).data
    const candidate = typeof data === 'object' && data !== null ? (data as { data?: unknown }).data : data
    if (typeof candidate === 'string' && isHex(candidate, { strict: true })) found = candidate
    current = (current as { cause?: unknown }).cause
  }
  return found
}

function resolveBlobs(payload: BlobPayload): readonly Hex[] {
  if (payload.envelope !== undefined && payload.blobs !== undefined) throw new TypeError('give blobs or envelope, not both')
  const blobs = payload.envelope !== undefined ? envelopeToBlobs(payload.envelope) : payload.blobs
  if (!Array.isArray(blobs) || blobs.length === 0 || blobs.length > MAX_BLOBS_PER_ENVELOPE)
    throw new RangeError(`a blob transaction carries 1 to ${MAX_BLOBS_PER_ENVELOPE} blobs, got ${Array.isArray(blobs) ? blobs.length : typeof blobs}`)
  blobs.forEach((blob, i) => {
    if (typeof blob !== 'string' || blob.length !== 2 + 2 * BYTES_PER_BLOB || !isHex(blob, { strict: true }))
      throw new RangeError(`blobs[${i}] must be ${BYTES_PER_BLOB} bytes of 0x-hex`)
  })
  return blobs
}

/** KZG commitments and proofs for each blob (getKzg), and the versioned hashes `blobhash(i)` will return. */
export function buildSidecars(blobs: readonly Hex[]): { sidecars: BlobSidecar[]; blobVersionedHashes: Hex[] } {
  const kzg = getKzg()
  const commitments = blobsToCommitments({ blobs, kzg, to: 'hex' })
  const proofs = blobsToProofs({ blobs, commitments, kzg, to: 'hex' })
  const sidecars: BlobSidecar[] = toBlobSidecars({ blobs, commitments, proofs, to: 'hex' })
  const blobVersionedHashes = sidecars.map(({ commitment }) => bytesToHex(commitmentToVersionedHash(hexToBytes(commitment))))
  return { sidecars, blobVersionedHashes }
}
