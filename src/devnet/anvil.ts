import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/** Path of the anvil binary shipped inside the npm package `@foundry-rs/anvil-linux-amd64`, pinned in package.json. */
export function anvilBinaryPath(): string {
  const require = createRequire(import.meta.url)
  const pkg = require.resolve('@foundry-rs/anvil-linux-amd64/package.json')
  return join(dirname(pkg), 'bin', 'anvil')
}

export type AnvilOptions = {
  /**
   * Default `osaka`: blob txs need EIP-7594 cell proofs, which anvil verifies (docs/protocol.md#blob-transactions).
   * Each fork has its own block header layout (the chain view's header check knows cancun, prague and osaka).
   */
  hardfork?: 'cancun' | 'prague' | 'osaka'
  /** 0 picks a free port (anvil prints the one it took). */
  port?: number
  /** Seconds between blocks; omitted = automine (a block per tx). */
  blockTime?: number
  /**
   * `--state FILE`: load from and dump to this file, so a restarted anvil keeps its chain. Historical states are kept
   * too (`--preserve-historical-states`): without them a restarted anvil answers `eth_getProof` only at blocks from its
   * restart on, and a node whose newest verified header is a block older than that cannot read the registry until
   * someone mines past it (a real node keeps recent states; the outage test met this as a stall).
   */
  stateFile?: string
  chainId?: number
  extraArgs?: string[]
  /** Milliseconds to wait for the `Listening on` line. */
  startTimeoutMs?: number
}

export type Anvil = {
  rpcUrl: string
  port: number
  process: ChildProcess
  stop(): Promise<void>
}

/**
 * Starts anvil and resolves once it listens. Osaka by default, as mainnet and its testnets run: anvil then checks the
 * cell proofs of every blob tx ("invalid KZG proof", "Expected 128 cell proofs"). It still accepts v0 sidecars on
 * every fork, unlike reth and Nethermind; the live-like RPC proxy (src/devnet/rpcProxy.ts) refuses them as they do.
 */
export async function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  const args = ['--hardfork', options.hardfork ?? 'osaka', '--port', String(options.port ?? 0), '--host', '127.0.0.1']
  if (options.chainId !== undefined) args.push('--chain-id', String(options.chainId))
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime))
  if (options.stateFile !== undefined) args.push('--state', options.stateFile, '--preserve-historical-states')
  args.push(...(options.extraArgs ?? []))
  const child = spawn(anvilBinaryPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`anvil did not start within ${options.startTimeoutMs ?? 15000} ms`))
    }, options.startTimeoutMs ?? 15000)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const match = /Listening on [\d.]+:(\d+)/.exec(out)
      if (match) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        child.stdout?.resume()
        resolve(Number(match[1]))
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`anvil exited with code ${code} before listening: ${out.trim().split('\n').pop() ?? ''}`))
    })
  })
  child.stdout?.resume()
  child.stderr?.resume()
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    })
  return { rpcUrl: `http://127.0.0.1:${port}`, port, process: child, stop }
}
