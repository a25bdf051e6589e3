// Sending EIP-4844 blob transactions (docs/protocol.md#flows, docs/protocol.md#blob-transactions). Two ways:
// - `sendBlobTransaction`: the sidecar signs with a host-provided gas key (a viem local account) and waits.
// - `prepareBlobTransaction`: the sidecar returns an unsigned type-3 request, blobs with their KZG commitments and
//   proofs included, serialised as JSON (`serializePreparedBlobTransaction`). The host signs and sends it itself:
//
//     const tx = parsePreparedBlobTransaction(await response.json())
//     await sendPreparedBlobTransaction({ walletClient, publicClient, transaction: tx })   // or, by hand:
//     const { raw } = await signBlobTransaction(account, { ...tx, nonce }, preparedSidecars(tx))
//     await publicClient.request({ method: 'eth_sendRawTransaction', params: [raw] })
//
//   No KZG setup is needed on the host: the proofs are in the JSON. viem's own `sendTransaction({ sidecars })`
//   serialises only the pre-Osaka (v0) wrapper, which post-Osaka mempools refuse (src/chain/blobTransaction.ts).
//
// The sidecar version (v0 or v1 cell proofs) is discovered from the chain (src/chain/hardfork.ts), never assumed.
// Blob transactions need `maxFeePerBlobGas` (viem does not estimate it): 2 × the current blob base fee by default.
import {
  BaseError,
  ExecutionRevertedError,
  TransactionReceiptNotFoundError,
  WaitForTransactionReceiptTimeoutError,
  decodeErrorResult,
  hexToBytes,
  isAddress,
  isHex,
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
import { BYTES_PER_BLOB, buildBlobSidecars, signBlobTransaction, type BlobSidecars, type SidecarVersion } from './blobTransaction.ts'
import { envelopeToBlobs, MAX_BLOBS_PER_ENVELOPE, type Envelope } from './envelope.ts'
import { BlobTransactionRevertedError, ChainError, describeRevert } from './errors.ts'
import { sidecarVersionSource, type SidecarVersionSource } from './hardfork.ts'
import { CELLS_PER_EXT_BLOB, commitmentToVersionedHash } from './kzg.ts'

/** One blob with its commitment and its proofs: one (v0) or 128 cell proofs (v1). */
export type BlobSidecar = { blob: Hex; commitment: Hex; proofs: Hex[] }

/** The blobs to carry: raw 0x-hex blobs (transaction order), or an envelope packed with `envelopeToBlobs`. */
export type BlobPayload = { blobs: readonly Hex[]; envelope?: undefined } | { envelope: Envelope; blobs?: undefined }

/** A fixed sidecar version, or where to discover it; default: discovered from the public client (src/chain/hardfork.ts). */
export type SidecarVersionOption = SidecarVersion | SidecarVersionSource | undefined

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
  sidecarVersion?: SidecarVersionOption
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

async function resolveVersion(option: SidecarVersionOption, publicClient: PublicClient<Transport, Chain | undefined>): Promise<SidecarVersion> {
  if (option === 0 || option === 1) return option
  return (option ?? sidecarVersionSource(publicClient as PublicClient)).current()
}

/** Signs, sends and waits for a blob transaction; a revert is a `BlobTransactionRevertedError` with its reason. */
export async function sendBlobTransaction(parameters: SendBlobTransactionParameters): Promise<SentBlobTransaction> {
  const { walletClient, publicClient } = parameters
  const blobs = resolveBlobs(parameters)
  if (walletClient.account?.type !== 'local')
    throw new TypeError('walletClient needs a local account (the gas key): blob transactions are signed in process')
  const version = await resolveVersion(parameters.sidecarVersion, publicClient)
  const sidecars = buildBlobSidecars(blobs, version)
  const maxFeePerBlobGas = parameters.maxFeePerBlobGas ?? 2n * (await publicClient.getBlobBaseFee())
  return submit({
    walletClient,
    publicClient,
    abi: parameters.abi,
    receiptTimeoutMs: parameters.receiptTimeoutMs,
    request: { to: parameters.to, data: parameters.data ?? '0x', value: parameters.value ?? 0n, gas: parameters.gas, maxFeePerBlobGas },
    sidecars,
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
  sidecarVersion?: SidecarVersionOption
}

/** An unsigned type-3 transaction with its blob sidecars (proofs included): sign it with `signBlobTransaction`. */
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
  /** 0: one proof per blob (pre-Osaka); 1: 128 cell proofs per blob (EIP-7594). */
  sidecarVersion: SidecarVersion
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
  sidecarVersion: SidecarVersion
  sidecars: BlobSidecar[]
}

/** Builds the unsigned blob transaction a host signs and sends (docs/protocol.md#flows: the sidecar may hold no gas key). */
export async function prepareBlobTransaction(parameters: PrepareBlobTransactionParameters): Promise<PreparedBlobTransaction> {
  const { publicClient, from } = parameters
  const version = await resolveVersion(parameters.sidecarVersion, publicClient)
  const built = buildBlobSidecars(resolveBlobs(parameters), version)
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
  const blobVersionedHashes = built.versionedHashes
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
    sidecarVersion: version,
    sidecars: sidecarList(built),
  }
}

/** Per blob: blob, commitment and its proofs (1 or 128). */
function sidecarList(sidecars: BlobSidecars): BlobSidecar[] {
  const perBlob = sidecars.version === 1 ? CELLS_PER_EXT_BLOB : 1
  return sidecars.blobs.map((blob, i) => ({ blob, commitment: sidecars.commitments[i]!, proofs: sidecars.proofs.slice(i * perBlob, (i + 1) * perBlob) }))
}

/** The sidecars of a prepared transaction in the form `signBlobTransaction` and `wrapBlobTransaction` take. */
export function preparedSidecars(transaction: PreparedBlobTransaction): BlobSidecars {
  return {
    version: transaction.sidecarVersion,
    blobs: transaction.sidecars.map((s) => s.blob),
    commitments: transaction.sidecars.map((s) => s.commitment),
    proofs: transaction.sidecars.flatMap((s) => s.proofs),
    versionedHashes: [...transaction.blobVersionedHashes],
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
    sidecarVersion: transaction.sidecarVersion,
    sidecars: transaction.sidecars.map(({ blob, commitment, proofs }) => ({ blob, commitment, proofs: [...proofs] })),
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
  sidecarVersion: z.union([z.literal(0), z.literal(1)]),
  sidecars: z
    .array(z.strictObject({ blob: hexBytes(BYTES_PER_BLOB), commitment: hexBytes(48), proofs: z.array(hexBytes(48)).min(1).max(CELLS_PER_EXT_BLOB) }))
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
  const perBlob = tx.sidecarVersion === 1 ? CELLS_PER_EXT_BLOB : 1
  tx.sidecars.forEach((sidecar, i) => {
    if (sidecar.proofs.length !== perBlob)
      throw new InvalidPreparedTransactionError(`sidecars.${i}.proofs: a v${tx.sidecarVersion} sidecar has ${perBlob} proof${perBlob > 1 ? 's' : ''} per blob`)
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
    sidecarVersion: tx.sidecarVersion,
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
    },
    sidecars: preparedSidecars(tx),
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
}

/** Fills nonce, gas and fees, signs the canonical tx, wraps it with `sidecars` and sends it raw; waits for the receipt. */
async function submit(parameters: {
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  publicClient: PublicClient<Transport, Chain | undefined>
  request: SubmitRequest
  sidecars: BlobSidecars
  abi?: Abi | undefined
  receiptTimeoutMs?: number | undefined
}): Promise<SentBlobTransaction> {
  const { walletClient, publicClient, request, sidecars, abi } = parameters
  const account = walletClient.account
  if (account?.type !== 'local')
    throw new TypeError('walletClient needs a local account (the gas key): blob transactions are signed in process')
  const blobVersionedHashes = sidecars.versionedHashes
  let hash: Hex
  try {
    const [chainId, nonce, fees, gas] = await Promise.all([
      walletClient.chain?.id ?? publicClient.getChainId(),
      request.nonce ?? publicClient.getTransactionCount({ address: account.address, blockTag: 'pending' }),
      request.maxFeePerGas !== undefined && request.maxPriorityFeePerGas !== undefined
        ? { maxFeePerGas: request.maxFeePerGas, maxPriorityFeePerGas: request.maxPriorityFeePerGas }
        : publicClient.estimateFeesPerGas(),
      request.gas ??
        publicClient.estimateGas({
          account: account.address,
          to: request.to,
          data: request.data,
          value: request.value,
          blobVersionedHashes,
          maxFeePerBlobGas: request.maxFeePerBlobGas,
        }),
    ])
    const signed = await signBlobTransaction(
      account,
      { chainId, nonce, to: request.to, data: request.data, value: request.value, gas, maxFeePerBlobGas: request.maxFeePerBlobGas, ...fees },
      sidecars,
    )
    try {
      await publicClient.request({ method: 'eth_sendRawTransaction', params: [signed.raw] })
    } catch (error) {
      // The transport retries a request that timed out on a busy node; the retry then finds the tx of the first
      // attempt in the pool ("already known") or already mined ("nonce too low"). Either way it is ours if the node
      // knows its hash.
      const known = await publicClient.getTransaction({ hash: signed.hash }).then(
        () => true,
        () => false,
      )
      if (!known) throw error
    }
    hash = signed.hash
  } catch (error) {
    throw revertedError(error, abi) ?? error
  }
  const receipt = await pollReceipt(publicClient, hash, parameters.receiptTimeoutMs ?? 120_000)
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
        blobVersionedHashes,
        maxFeePerBlobGas: request.maxFeePerBlobGas,
      })
    } catch (error) {
      replayError = error
    }
    const decoded = replayError === undefined ? {} : decodeRevert(replayError, abi)
    throw new BlobTransactionRevertedError({ hash, receipt, ...decoded, cause: replayError })
  }
  return { hash, receipt, blobVersionedHashes }
}
/**
 * Asks for the receipt until it exists. viem's `waitForTransactionReceipt` asks only when it sees a new block number;
 * anvil (and some RPC pools) show the block that includes a blob tx before its receipt can be read, and with no
 * further block the wait then runs into its timeout although the tx was mined.
 */
async function pollReceipt(publicClient: PublicClient<Transport, Chain | undefined>, hash: Hex, timeoutMs: number): Promise<TransactionReceipt> {
  const deadline = Date.now() + timeoutMs
  const interval = Math.max(20, Math.min(publicClient.pollingInterval, 1000))
  for (;;) {
    try {
      return await publicClient.getTransactionReceipt({ hash })
    } catch (error) {
      if (!(error instanceof TransactionReceiptNotFoundError)) throw error
    }
    if (Date.now() > deadline) throw new WaitForTransactionReceiptTimeoutError({ hash })
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/** The typed error for a viem error that is an execution revert (at gas estimation), else undefined. */
function revertedError(error: unknown, abi: Abi | undefined): BlobTransactionRevertedError | undefined {
  if (!(error instanceof BaseError) || !error.walk((e) => e instanceof ExecutionRevertedError)) return undefined
  return new BlobTransactionRevertedError({ ...decodeRevert(error, abi), cause: error })
}

/**
 * A one-line reason for a viem error that is an execution revert, decoded with `abi` (`KeyManagerAlreadyEscrowed(2, 1)`,
 * `Error` strings, panics), else the raw revert data in hex; undefined when the error is no revert. Node messages of
 * custom errors carry the revert bytes as raw characters: they never reach a client.
 */
export function revertReason(error: unknown, abi: Abi | undefined): string | undefined {
  if (!(error instanceof BaseError) || !error.walk((e) => e instanceof ExecutionRevertedError)) return undefined
  const { revertData, errorName, errorArgs } = decodeRevert(error, abi)
  const reason = describeRevert(errorName, errorArgs) ?? (revertData && revertData !== '0x' ? `undecoded revert data ${revertData}` : 'no reason given')
  // The revert data is the RPC's to say: a reason string reaches clients as printable ASCII on one line, capped.
  const printable = reason.replace(/[^\x20-\x7e]/g, '?')
  return printable.length > MAX_REVERT_REASON ? `${printable.slice(0, MAX_REVERT_REASON)}…` : printable
}

const MAX_REVERT_REASON = 300

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

