// Deploys the KeyManager registry to any RPC endpoint and prints its address.
//   RPC_URL=http://127.0.0.1:8545 OWNER_PRIVATE_KEY=0x… [MEASUREMENT_DELAY=seconds] node --import tsx scripts/deploy.ts
// The owner key pays for and owns the deployment. Bad settings give one line on stderr and exit code 1; neither the
// key nor the RPC URL (which may carry an API key) is ever printed.
import { createPublicClient, createWalletClient, defineChain, http, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { deployKeyManager, MAX_MEASUREMENT_DELAY } from '../src/chain/deploy.ts'

class UsageError extends Error {}

type Settings = { rpcUrl: string; ownerPrivateKey: Hex; measurementDelay: bigint }

function readSettings(env: NodeJS.ProcessEnv): Settings {
  const rpcUrl = env.RPC_URL?.trim()
  if (!rpcUrl) throw new UsageError('RPC_URL is not set')
  let url: URL
  try {
    url = new URL(rpcUrl)
  } catch {
    throw new UsageError('RPC_URL is not a valid URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('RPC_URL must be an http(s) URL')

  const key = env.OWNER_PRIVATE_KEY?.trim()
  if (!key) throw new UsageError('OWNER_PRIVATE_KEY is not set')
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new UsageError('OWNER_PRIVATE_KEY must be 0x followed by 64 hex digits')

  const delay = env.MEASUREMENT_DELAY?.trim() || '0'
  if (!/^\d{1,20}$/.test(delay) || BigInt(delay) > MAX_MEASUREMENT_DELAY) {
    throw new UsageError(`MEASUREMENT_DELAY must be a whole number of seconds from 0 to ${MAX_MEASUREMENT_DELAY}`)
  }
  return { rpcUrl, ownerPrivateKey: key as Hex, measurementDelay: BigInt(delay) }
}

async function run(env: NodeJS.ProcessEnv): Promise<void> {
  const settings = readSettings(env)
  let account
  try {
    account = privateKeyToAccount(settings.ownerPrivateKey)
  } catch {
    throw new UsageError('OWNER_PRIVATE_KEY is not a valid secp256k1 private key')
  }
  const transport = http(settings.rpcUrl)
  const publicClient = createPublicClient({ transport })
  let chainId: number
  try {
    chainId = await publicClient.getChainId()
  } catch {
    throw new UsageError('RPC_URL did not answer eth_chainId')
  }
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [settings.rpcUrl] } },
  })
  const walletClient = createWalletClient({ account, chain, transport })
  const registry = await deployKeyManager({
    walletClient,
    publicClient: createPublicClient({ chain, transport }),
    owner: account.address,
    measurementDelay: settings.measurementDelay,
  })
  console.log(registry)
}

try {
  await run(process.env)
} catch (error) {
  const message = error instanceof Error ? error.message : String(error)
  console.error(`deploy: ${message.split('\n')[0]}`)
  process.exitCode = 1
}
