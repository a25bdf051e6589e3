// The devnet entry's main (bin/keymanager-devnet.js): `serve --measured FILE --config FILE`. Devnet mode exists only
// here (docs/protocol.md#measured-settings): the measured settings come from a file the host names (nothing about a
// devnet is secure), and may name the simulated TEE, a devnet root CA and the dev-file seal; pods may name themselves
// with the `x-keymanager-pod` header; `KEYMANAGER_KILL_AT=<point>[#n]` makes the node kill itself with SIGKILL right
// after that durable step (crash tests, src/node/killPoints.ts). The production image does not contain this file or anything under src/devnet.
import { onShutdown, parseFlags, UsageError } from '../cli/args.ts'
import { hardwareQuoteProvider, openHardwareSeal, startNode } from '../cli/serve.ts'
import { loadHostSettings } from '../config.ts'
import { settingsDigest } from '../keys/settingsDigest.ts'
import { devFileSealProvider } from '../secret/seal.ts'
import { loadDevnetMeasuredSettings } from './settings.ts'
import { loadSimulatedPlatform, simulatedBootEventLog, simulatedMeasurement, simulatedQuoteProvider } from './simulated.ts'

const USAGE = `usage: keymanager-devnet serve --measured FILE --config FILE

  Runs one sidecar in devnet mode (INSECURE): measured settings from FILE (docs/protocol.md#measured-settings),
  host settings from --config. Test only: KEYMANAGER_KILL_AT=<point>[#n] in the environment kills the process
  (SIGKILL) right after that durable step (src/node/killPoints.ts).`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === 'help' || command === '--help' || command === '-h' || command === undefined) {
    process.stdout.write(USAGE + '\n')
    return command === undefined ? 2 : 0
  }
  if (command !== 'serve') throw new UsageError(`unknown command '${command}' (the devnet entry only serves; other verbs are in bin/keymanager.js)`)
  const { values } = parseFlags(rest, { measured: { type: 'string' }, config: { type: 'string' } })
  if (!values.measured || !values.config) throw new UsageError('serve needs --measured FILE and --config FILE')
  const measured = loadDevnetMeasuredSettings(values.measured)
  const host = loadHostSettings(values.config)
  const q = measured.quote
  const seal = measured.seal
  const killAt = process.env.KEYMANAGER_KILL_AT || undefined
  const running = await startNode({
    measured,
    settingsDigest: settingsDigest(measured),
    host,
    quoteProvider:
      q.provider === 'simulated'
        ? simulatedQuoteProvider({
            platform: loadSimulatedPlatform(q),
            measurement: simulatedMeasurement(q.measurementLabel),
            bootEventLog: simulatedBootEventLog(q.measurementLabel),
          })
        : hardwareQuoteProvider(q),
    settingsSource: 'devnet',
    openSeal: async (dataDir) => (seal.provider === 'dev-file' ? devFileSealProvider(dataDir) : openHardwareSeal(seal, dataDir)),
    ...(q.trustedRootCaFiles ? { trustedRootCaFiles: q.trustedRootCaFiles } : {}),
    devnet: killAt ? { killAt } : {},
  })
  onShutdown(() => running.close())
  return -1
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code)
  },
  (error: Error) => {
    process.stderr.write(`keymanager-devnet: ${error.message}\n`)
    process.exit(error instanceof UsageError ? 2 : 1)
  },
)
