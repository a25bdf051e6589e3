// `keymanager deploy` (docs/protocol.md#command-line) and scripts/deploy.ts: deploy the registry to any RPC URL with an owner key.
// The key comes from a file or the environment, never from argv (visible in `ps`), and is never printed; neither is
// the RPC URL, which may carry an API key.
import { readFileSync } from 'node:fs'
import { createPublicClient, createWalletClient, getAddress, http, isAddress, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { chainFor } from '../chain/chain.ts'
import { defaultConfirmations, waitForConfirmations } from '../chain/confirmations.ts'
import { deployKeyManager, MAX_MEASUREMENT_DELAY } from '../chain/deploy.ts'
import { parseFlags, UsageError } from './args.ts'

export type DeploySettings = { rpcUrl: string; ownerPrivateKey: Hex; owner?: Address; measurementDelay: bigint; confirmations?: number }

/** Flags first, then the environment (RPC_URL, OWNER_PRIVATE_KEY, MEASUREMENT_DELAY). */
export function readDeploySettings(argv: string[], env: Record<string, string | undefined>): DeploySettings {
  const { values } = parseFlags(argv, {
    rpc: { type: 'string' },
    'owner-key-file': { type: 'string' },
    owner: { type: 'string' },
    'measurement-delay': { type: 'string' },
    confirmations: { type: 'string' },
  })
  const rpcUrl = (values.rpc ?? env.RPC_URL ?? '').trim()
  if (!rpcUrl) throw new UsageError('an RPC URL is needed: --rpc URL or RPC_URL')
  let url: URL
  try {
    url = new URL(rpcUrl)
  } catch {
    throw new UsageError('the RPC URL is not a valid URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('the RPC URL must be http(s)')
  let key = env.OWNER_PRIVATE_KEY?.trim()
  if (values['owner-key-file']) {
    try {
      key = readFileSync(values['owner-key-file'], 'utf8').trim()
    } catch (error) {
      throw new UsageError(`--owner-key-file: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  if (!key) throw new UsageError('an owner key is needed: --owner-key-file FILE or OWNER_PRIVATE_KEY')
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new UsageError('the owner key must be 0x followed by 64 hex digits')
  const delay = (values['measurement-delay'] ?? env.MEASUREMENT_DELAY ?? '0').trim()
  if (!/^\d{1,20}$/.test(delay) || BigInt(delay) > MAX_MEASUREMENT_DELAY)
    throw new UsageError(`the measurement delay must be a whole number of seconds from 0 to ${MAX_MEASUREMENT_DELAY}`)
  if (values.owner !== undefined && !isAddress(values.owner, { strict: false })) throw new UsageError('--owner must be a 0x address')
  if (values.confirmations !== undefined && (!/^\d{1,3}$/.test(values.confirmations) || Number(values.confirmations) < 1))
    throw new UsageError('--confirmations must be a number of blocks from 1 to 999')
  return {
    ...(values.confirmations !== undefined ? { confirmations: Number(values.confirmations) } : {}),
    rpcUrl,
    ownerPrivateKey: key as Hex,
    ...(values.owner ? { owner: getAddress(values.owner.toLowerCase()) } : {}),
    measurementDelay: BigInt(delay),
  }
}

/** Deploys and returns the registry address; `progress` hears what it will do and how the confirmations come in. */
export async function deployWithSettings(settings: DeploySettings, progress?: (line: string) => void): Promise<Address> {
  let account
  try {
    account = privateKeyToAccount(settings.ownerPrivateKey)
  } catch {
    throw new UsageError('the owner key is not a valid secp256k1 private key')
  }
  const transport = http(settings.rpcUrl)
  let chainId: number
  try {
    chainId = await createPublicClient({ transport }).getChainId()
  } catch {
    throw new Error('the RPC URL did not answer eth_chainId')
  }
  const chain = chainFor(chainId, settings.rpcUrl)
  const owner = settings.owner ?? account.address
  const confirmations = settings.confirmations ?? defaultConfirmations(chainId)
  progress?.(`deploying KeyManager(owner ${owner}, measurementDelay ${settings.measurementDelay} s) on chain ${chainId} from ${account.address}, then waiting for ${confirmations} confirmation(s)`)
  const publicClient = createPublicClient({ chain, transport, pollingInterval: chainId === 31337 ? 100 : 2000 })
  const address = await deployKeyManager({
    walletClient: createWalletClient({ account, chain, transport }),
    publicClient,
    owner,
    measurementDelay: settings.measurementDelay,
    onReceipt: async (receipt) => {
      progress?.(`  deployed at ${receipt.contractAddress} in block ${receipt.blockNumber} (tx ${receipt.transactionHash})`)
      if (confirmations > 1) await waitForConfirmations(publicClient, receipt, confirmations, progress)
    },
  })
  return address
}

export async function runDeploy(
  argv: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
  err: (line: string) => void = (line) => void process.stderr.write(line + '\n'),
): Promise<number> {
  const address = await deployWithSettings(readDeploySettings(argv, env), err)
  out(address)
  return 0
}
