// Deploys the KeyManager registry (docs/protocol.md#deploy). Used by scripts/deploy.ts and the `keymanager deploy` verb.
import {
  BaseError,
  getAddress,
  isAddress,
  zeroAddress,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type Transport,
  type WalletClient,
} from 'viem'
import { KeymanagerError } from '../errors.ts'
import { keyManagerAbi, keyManagerBytecode } from './keyManagerArtifact.ts'

/** Longest measurement delay the constructor accepts (KeyManager.sol `MAX_MEASUREMENT_DELAY`, 365 days). */
export const MAX_MEASUREMENT_DELAY = 365n * 24n * 60n * 60n

export type DeployKeyManagerParameters = {
  /** Sends the deployment; its account pays the gas. */
  walletClient: WalletClient<Transport, Chain | undefined, Account>
  /** Waits for the receipt. */
  publicClient: PublicClient
  /** Registry owner (may differ from the deploying account, e.g. a multisig). */
  owner: Address
  /** Seconds before an added measurement activates: 0 to 365 days. */
  measurementDelay: bigint | number
  /** Called with the successful receipt before the address is returned (the CLI waits for confirmations here). */
  onReceipt?: (receipt: TransactionReceipt) => Promise<void> | void
}

/** The deployment was not sent, reverted, or produced no contract. The message names the transaction, never a key. */
export class DeployKeyManagerError extends KeymanagerError {
  override name = 'DeployKeyManagerError'
  constructor(
    message: string,
    readonly hash?: Hex,
    options?: { cause?: unknown },
  ) {
    super('upstream_failed', message, options)
  }
}

/** Deploys `KeyManager(owner, measurementDelay)`, waits for the receipt and returns the registry address. */
export async function deployKeyManager(parameters: DeployKeyManagerParameters): Promise<Address> {
  const { walletClient, publicClient } = parameters
  const owner = checkOwner(parameters.owner)
  const measurementDelay = checkMeasurementDelay(parameters.measurementDelay)

  let hash: Hex
  try {
    hash = await walletClient.deployContract({
      abi: keyManagerAbi,
      bytecode: keyManagerBytecode,
      args: [owner, measurementDelay],
      account: walletClient.account,
      chain: walletClient.chain ?? null,
    })
  } catch (error) {
    throw new DeployKeyManagerError(`KeyManager deployment was not sent: ${shortMessage(error)}`, undefined, {
      cause: error,
    })
  }

  let receipt
  try {
    receipt = await publicClient.waitForTransactionReceipt({ hash })
  } catch (error) {
    throw new DeployKeyManagerError(`No receipt for KeyManager deployment ${hash}: ${shortMessage(error)}`, hash, {
      cause: error,
    })
  }
  if (receipt.status !== 'success') {
    throw new DeployKeyManagerError(`KeyManager deployment ${hash} reverted (block ${receipt.blockNumber})`, hash)
  }
  if (!receipt.contractAddress) {
    throw new DeployKeyManagerError(`KeyManager deployment ${hash} created no contract`, hash)
  }
  await parameters.onReceipt?.(receipt)
  return getAddress(receipt.contractAddress)
}

function checkOwner(owner: unknown): Address {
  if (typeof owner !== 'string' || !isAddress(owner, { strict: false })) {
    throw new TypeError('owner must be a 20-byte hex address')
  }
  if (owner.toLowerCase() === zeroAddress) throw new RangeError('owner must not be the zero address')
  return getAddress(owner)
}

function checkMeasurementDelay(delay: unknown): bigint {
  if (typeof delay === 'number' && !Number.isSafeInteger(delay)) {
    throw new TypeError('measurementDelay must be an integer number of seconds')
  }
  if (typeof delay !== 'number' && typeof delay !== 'bigint') {
    throw new TypeError('measurementDelay must be an integer number of seconds')
  }
  const seconds = BigInt(delay)
  if (seconds < 0n || seconds > MAX_MEASUREMENT_DELAY) {
    throw new RangeError(`measurementDelay must be between 0 and ${MAX_MEASUREMENT_DELAY} seconds (365 days)`)
  }
  return seconds
}

function shortMessage(error: unknown): string {
  if (error instanceof BaseError) return error.shortMessage
  return error instanceof Error ? error.message : String(error)
}
