// Runs forge from the npm package on the Foundry project in contracts/, offline (solc is the contracts/solc shim over npm's solcjs).
// `node --import tsx scripts/forge.ts test -vvv` = `forge test --root contracts -vvv` with FOUNDRY_SOLC set to the shim,
// run from contracts/ (so relative paths in arguments are relative to the Foundry project).
// The exit code is forwarded: the `@foundry-rs/forge` wrapper package drops it, this must not.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { constants } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const contractsRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'contracts')

function forgeBinaryPath(): string {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve('@foundry-rs/forge-linux-amd64/package.json')), 'bin', 'forge')
}

/**
 * Runs forge with `--root contracts` after the subcommand (omitted for bare flags such as `--version`) and an
 * absolute FOUNDRY_SOLC: forge resolves a relative solc path from the current directory, not from --root.
 * Returns forge's exit code (128 + signal number when it was killed).
 */
export function runForge(args: readonly string[], options: { quiet?: boolean } = {}): number {
  const [subcommand, ...rest] = args
  const forgeArgs =
    subcommand === undefined || subcommand.startsWith('-') ? [...args] : [subcommand, '--root', contractsRoot, ...rest]
  const result = spawnSync(forgeBinaryPath(), forgeArgs, {
    // forge resolves some paths from the working directory (e.g. fuzz failure records in cache/fuzz): keep them
    // inside contracts/, where .gitignore covers them.
    cwd: contractsRoot,
    stdio: options.quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit',
    env: { ...process.env, FOUNDRY_SOLC: join(contractsRoot, 'solc') },
  })
  if (result.error) {
    console.error(`forge: ${result.error.message}`)
    return 127
  }
  if (result.signal) return 128 + (constants.signals[result.signal] ?? 0)
  return result.status ?? 1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = runForge(process.argv.slice(2))
}
