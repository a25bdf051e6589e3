// Deploys the KeyManager registry to any RPC endpoint and prints its address:
//   RPC_URL=http://127.0.0.1:8545 OWNER_PRIVATE_KEY=0x… [MEASUREMENT_DELAY=seconds] node --import tsx scripts/deploy.ts
// Same as `keymanager deploy` (src/cli/deploy.ts). Bad settings: one line on stderr, exit 1; the key and the RPC
// URL are never printed.
import { runDeploy } from '../src/cli/deploy.ts'

try {
  // Progress lines are for the keymanager verb; the script prints only the address (or one error line).
  process.exitCode = await runDeploy(process.argv.slice(2), process.env, (line) => console.log(line), () => {})
} catch (error) {
  const message = error instanceof Error ? error.message : String(error)
  console.error(`deploy: ${message.split('\n')[0]}`)
  process.exitCode = 1
}
