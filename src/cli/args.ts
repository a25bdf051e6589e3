import { parseArgs, type ParseArgsConfig } from 'node:util'
import { KeymanagerError } from '../errors.ts'

/** A command line the CLI cannot run: exit code 2 with a one-line reason. */
export class UsageError extends KeymanagerError {
  override name = 'UsageError'
  constructor(message: string) {
    super('bad_request', message)
  }
}

/** parseArgs with every flag declared: unknown flags and missing values are usage errors. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (error) {
    // node's messages span lines ("…is ambiguous.\nDid you forget…"): a usage error is one line.
    throw new UsageError((error as Error).message.replace(/\s*\n\s*/g, ' '))
  }
}

/** Installs SIGINT/SIGTERM handlers that run `shutdown` once, then exit. */
export function onShutdown(shutdown: () => Promise<void>): void {
  let stopping = false
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    shutdown().then(
      () => process.exit(signal === 'SIGINT' ? 130 : 0),
      (error) => {
        process.stderr.write(`keymanager: shutdown failed: ${(error as Error).message}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}
