// The only module that reads argv and the environment and installs signal handlers (the ponder model).
import { onShutdown, parseFlags, UsageError } from './cli/args.ts'

/** The variable a Gramine manifest sets to the measured settings (src/tee/launchSettings.ts). */
const GRAMINE_SETTINGS_VARIABLE = 'KEYMANAGER_MEASURED_SETTINGS'

const USAGE = `usage: keymanager <command> [options]

commands:
  serve --config FILE            run one sidecar: measured settings from the image (measured.json at the package
                                 root), host settings from FILE (docs/protocol.md#measured-settings)
  init --network N --registry ADDR --registry-code-hash HASH --checkpoint ROOT [--devnet-chain FILE]
       [--from-block N] [--rpc URL] [--beacon URL] [--quote P] [--seal S] [--dir D] [--force]
                                 write commented measured.json and host.json for mainnet|sepolia|hoodi|devnet
  devnet [--nodes N] [--once] [--auto] [--live-like]
                                 local chain, registry and N sidecars, onboarded end to end
                                 (--auto: nodes 2..N join by themselves, no host calls)
  deploy --rpc URL --owner-key-file F [--owner ADDR] [--measurement-delay S]
                                 deploy the registry (or RPC_URL / OWNER_PRIVATE_KEY in the environment)
  derive --master-secret-file F --app-id HEX --path P --purpose Q [--algorithm A] [--json]
                                 offline dstack-compatible key derivation, for auditors and migrations
  verify-chain FILE [--rpc URL --registry ADDR | --master-address ADDR] [--json]
                                 check a GetKey response's signature chain step by step, or
                                 a GetTlsKey certificate chain's app CA (PEM) before pinning it
  quote verify FILE [--collateral F | --pccs URL] [--root-ca FILE]... [--now UNIX] [--json]
                                 verify a DCAP quote (binary or hex) with its collateral
  quote measure FILE [--json]    a quote's measurement id (docs/protocol.md#measurements-and-tcb-policy), unverified
  Every owner action below takes --owner-key-file F, or --unsigned to print a Safe Transaction Builder batch instead.
  policy add|remove|list|tcb|bootstrapper|owner|request-ttl --rpc URL --registry ADDR [--owner-key-file F | --unsigned]
       tcb [--accept S,…] [--max-collateral-age S] [--fmspc-allowlist on|off] [--allow-fmspc HEX]… [--disallow-fmspc HEX]…
       [--min-tcb-evaluation N] [--from-block N] [--max-log-range BLOCKS] [--confirmations N] [--json]
                                 the registry's measurement allow-list, TCB policy, bootstrapper, owner
                                 (owner ADDR|none|accept: two-step transfer) and onboarding request TTL
  rotate start|status|cancel|force-commit PROPOSAL_ID --rpc URL --registry ADDR [--owner-key-file F | --unsigned]
       [--emergency] [--overlap S] [--force-delay S]
                                 the owner starts, cancels or force-commits a master-secret rotation; its state
                                 (docs/protocol.md#generations)
  revoke node MEMBER_ID|generation G --rpc URL --registry ADDR (--owner-key-file F | --unsigned)
                                 revoke a member node or a generation
  purge generation G --rpc URL --registry ADDR (--owner-key-file F | --unsigned)
                                 purge a generation that no longer verifies: nodes erase it, pods get 410
  guardian keygen --key-file F | guardian verify|release --guardian-key-file F --rpc URL --registry ADDR
           (--view-settings F --beacon URL | --insecure-trusted-rpc) [--generation G] [--from-block N] [--max-log-range N]
           release: --gas-key-file F --blobs URL [--blobs-kind anvil|beacon] [--pccs URL] [--root-ca F]...
                                 a guardian's key, its check of its escrowed shares, and its release of them to the
                                 open recovery's enclave after judging its quote on a fresh verified view
  escrow publish --node HOST_URL | escrow status --rpc URL --registry ADDR
                                 a node escrows its generations to the active guardian set; escrow state
  escrow guardians (PUBKEY... --threshold K | none) --rpc URL --registry ADDR (--owner-key-file F | --unsigned)
                                 the owner names the guardians (setGuardians), active after the measurement delay
  recover start REQUEST_ID|cancel --rpc URL --registry ADDR (--owner-key-file F | --unsigned) | recover ENCKEY --node HOST_URL
                                 the owner opens a recovery for a fresh enclave's request; the enclave reassembles
                                 its generations from released shares and confirms
  audit --rpc URL --registry ADDR [--blobs URL [--blobs-kind anvil|beacon]] [--archive DIR]... [--peer URL]... [--root-ca F] [--pccs URL | --collateral F...]
       [--from-block N] [--max-log-range BLOCKS] [--json]
                                 re-verify every quote the registry took; exit 1 if a secret went to a bad one
  compose-check FILE [--sidecar SERVICE] [--data-dir PATH] [--json]
                                 refuse a compose file where another service reaches the quote interface
                                 (dstack socket, configfs-tsm, /dev/attestation) or the sidecar's data
  status|bootstrap|register|help ADDR --node HOST_URL [--token-file F]
       bootstrap [--rpc URL --owner-key-file F] (send bootstrap() too) | register [--complete ENCKEY]
                                 drive a node's host API as its operator
  help                           this text`

const out = (line: string) => process.stdout.write(line + '\n')

/** Flags that exist only in the devnet entry, with the reason the production entry gives. */
const DEVNET_FLAGS: Record<string, string> = {
  '--measured': 'a production build reads its measured settings only from the file baked into the image',
  '--devnet': 'devnet mode exists only in the devnet entry',
}

/**
 * The production entry takes no setting from the environment and no devnet-only flag (docs/protocol.md#measured-settings):
 * measured settings come from the image, host settings from `--config`. Each is refused with a one-line reason.
 */
function refuseDevnetInputs(argv: string[], env: NodeJS.ProcessEnv): void {
  // KEYMANAGER_MEASURED_SETTINGS is the one a Gramine manifest sets; serve refuses it unless the image names that source.
  const variable = Object.keys(env).find((name) => name.startsWith('KEYMANAGER_') && name !== GRAMINE_SETTINGS_VARIABLE)
  if (variable !== undefined)
    throw new Error(
      `environment variable ${variable}: the production entry reads no KEYMANAGER_* variable (devnet settings and test hooks exist only in bin/keymanager-devnet.js)`,
    )
  for (const arg of argv) {
    const flag = arg.split('=')[0]!
    if (Object.hasOwn(DEVNET_FLAGS, flag)) throw new Error(`${flag} is a devnet-only flag: ${DEVNET_FLAGS[flag]} (bin/keymanager-devnet.js)`)
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve': {
      refuseDevnetInputs(rest, process.env)
      const { values } = parseFlags(rest, { config: { type: 'string' } })
      if (!values.config) throw new UsageError('serve needs --config FILE')
      const { serveProduction } = await import('./cli/serve.ts')
      const running = await serveProduction(values.config, process.env)
      onShutdown(() => running.close())
      return -1
    }
    case 'devnet':
      return (await import('./cli/devnet.ts')).runDevnetCommand(rest, out, onShutdown)
    case 'init':
      return (await import('./cli/init.ts')).runInit(rest, out)
    case 'deploy':
      return (await import('./cli/deploy.ts')).runDeploy(rest, process.env, out)
    case 'derive':
      return (await import('./cli/derive.ts')).runDerive(rest, out)
    case 'quote':
      return (await import('./cli/quote.ts')).runQuote(rest, out)
    case 'policy':
      return (await import('./cli/policy.ts')).runPolicy(rest, out)
    case 'rotate':
    case 'revoke':
    case 'purge':
      return (await import('./cli/generations.ts')).runGenerations(command, rest, out)
    case 'guardian':
      return (await import('./cli/guardian.ts')).runGuardian(rest, out)
    case 'escrow':
    case 'recover':
      return (await import('./cli/escrow.ts')).runEscrow(command, rest, process.env, out)
    case 'verify-chain':
      return (await import('./cli/verifyChain.ts')).runVerifyChain(rest, out)
    case 'compose-check':
      return (await import('./cli/composeCheck.ts')).runComposeCheck(rest, out, (line) => process.stderr.write(line + '\n'))
    case 'audit':
      return (await import('./cli/audit.ts')).runAudit(rest, out, (line) => process.stderr.write(line + '\n'))
    case 'status':
    case 'bootstrap':
    case 'register':
      return (await import('./cli/hostApi.ts')).runHostApi(command, rest, process.env, out)
    case 'help':
      // `keymanager help ADDR --node URL` asks a node to help a newcomer; bare `help` prints usage.
      if (rest.length > 0) return (await import('./cli/hostApi.ts')).runHostApi('help', rest, process.env, out)
      process.stdout.write(USAGE + '\n')
      return 0
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n')
      return command === undefined ? 2 : 0
    default:
      throw new UsageError(`unknown command '${command}'`)
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code)
  },
  (error: Error) => {
    process.stderr.write(`keymanager: ${error.message}\n`)
    if (error instanceof UsageError) process.stderr.write(`run 'keymanager help' for usage\n`)
    process.exit(error instanceof UsageError ? 2 : 1)
  },
)
