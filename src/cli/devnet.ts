// `keymanager devnet` (docs/protocol.md#command-line): flags in, the network of src/devnet/network.ts out.
import { parseFlags, UsageError } from './args.ts'

export function parseNodeCount(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new UsageError(`--nodes must be a whole number, got '${value}'`)
  const n = Number(value)
  if (n < 1 || n > 64) throw new UsageError(`--nodes must be between 1 and 64, got ${n}`)
  return n
}

/**
 * Starts the devnet. With `--once` it runs the walk-through and its checks, stops, and returns the exit code;
 * otherwise it returns -1 and leaves the network running until `onShutdown`'s handler stops it.
 */
export async function runDevnetCommand(
  argv: string[],
  print: (line: string) => void,
  onShutdown: (stop: () => Promise<void>) => void,
): Promise<number> {
  const { values } = parseFlags(argv, {
    nodes: { type: 'string', default: '3' },
    once: { type: 'boolean', default: false },
    auto: { type: 'boolean', default: false },
    'live-like': { type: 'boolean', default: false },
    dir: { type: 'string', default: '.keymanager' },
  })
  // src/devnet is left out of production images (sidecar.Dockerfile): there the verb says so instead of crashing.
  const { runDevnet } = await import('../devnet/network.ts').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_MODULE_NOT_FOUND') throw new Error('the devnet is not part of this build (production images leave out src/devnet)')
    throw error
  })
  const devnet = await runDevnet({ nodes: parseNodeCount(values.nodes!), dir: values.dir!, auto: values.auto!, print, ...(values['live-like'] ? { liveLike: {} } : {}) })
  if (values.once) {
    const ok = await devnet.verify()
    await devnet.stop()
    return ok ? 0 : 1
  }
  print('devnet running; Ctrl-C to stop')
  onShutdown(() => devnet.stop())
  return -1
}
