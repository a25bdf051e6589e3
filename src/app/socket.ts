// Serving a Hono app on a unix socket: the dstack guest-agent API at `/var/run/dstack.sock` (docs/protocol.md#http-api), where
// @phala/dstack-sdk looks for it first.
//
// Decisions written down here:
// - Identity: a unix socket carries no peer address, and node cannot read SO_PEERCRED without a native addon. So a
//   socket belongs to exactly one pod: the operator configures a socket path per pod (e.g.
//   `/var/run/keymanager/<pod>/dstack.sock`) and mounts that directory into that pod's container only, at
//   `/var/run/dstack.sock`'s directory. Access to the socket file *is* the pod identity; the app served on it is built
//   with `fixedPodResolver(pod, appId)` (dstack.ts). Never mount one socket into two pods: they would share keys.
// - Permissions: default mode 0o666, because the pod's uid is unknown to the sidecar and the mount already decides
//   who reaches the socket; set `mode` (e.g. 0o660 with a shared group) to narrow it. The socket is created under a
//   umask that yields exactly `mode` (the bind is synchronous, so no other code runs under that umask), then chmod'ed
//   again in case the filesystem ignores the umask for sockets.
// - A stale socket (left by a crash: a socket file nobody accepts on) is removed. A live one (something accepts)
//   or a path that is not a socket (a regular file, a directory) is never touched: start-up fails instead.
// - close() stops accepting, drops open connections and removes the socket file if it is still the one it created.
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs'
import type { Server } from 'node:http'
import { connect } from 'node:net'
import { dirname } from 'node:path'
import { createAdaptorServer } from '@hono/node-server'

/** sun_path holds 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107

export type UnixSocketOptions = {
  path: string
  /** Permission bits of the socket file; default 0o666 (see the decision above). */
  mode?: number
}

export type UnixSocketServer = {
  readonly path: string
  close(): Promise<void>
}

type FetchApp = { fetch: (request: Request) => Response | Promise<Response> }

/** Whether something accepts connections on the socket at `path`. */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path })
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
}

async function clearStaleSocket(path: string): Promise<void> {
  let stat
  try {
    stat = lstatSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`)
  if (await isLive(path)) throw new Error(`${path} is in use: another server accepts connections on it`)
  unlinkSync(path)
}

function listenWithMode(server: Server, path: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    const previous = process.umask(~mode & 0o777)
    try {
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    } finally {
      process.umask(previous)
    }
  })
}

/** Serves `app` (a Hono app or anything with `fetch`) on the unix socket `options.path`. */
export async function serveUnixSocket(app: FetchApp, options: UnixSocketOptions): Promise<UnixSocketServer> {
  const { path } = options
  const mode = options.mode ?? 0o666
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('socket path must be a non-empty string')
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new RangeError(`socket path must be at most ${MAX_SOCKET_PATH_BYTES} bytes, got ${Buffer.byteLength(path)}`)
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new RangeError('socket mode must be permission bits in [0, 0o777]')

  mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
  await clearStaleSocket(path)
  const server = createAdaptorServer({ fetch: app.fetch }) as Server
  await listenWithMode(server, path, mode)
  chmodSync(path, mode)
  const { ino, dev } = statSync(path)

  let closing: Promise<void> | undefined
  return {
    path,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }).then(() => {
        try {
          const now = lstatSync(path)
          if (now.ino === ino && now.dev === dev) unlinkSync(path)
        } catch {
          // Already gone.
        }
      })
      return closing
    },
  }
}
