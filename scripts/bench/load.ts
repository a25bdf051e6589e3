import { Agent, request } from 'node:http'

export type LoadResult = { requests: number; seconds: number; perSecond: number; errors: number }

/**
 * Closed-loop HTTP load over keep-alive connections: `concurrency` requests in flight for `seconds`.
 * Every response is read to the end and its status checked, so a failing route cannot look fast.
 */
export async function load(url: string, { seconds, concurrency, headers = {} }: { seconds: number; concurrency: number; headers?: Record<string, string> }): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const target = new URL(url)
  const deadline = performance.now() + seconds * 1000
  let done = 0
  let errors = 0
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname, headers }, (res) => {
        res.on('data', () => {})
        res.on('end', () => {
          if (res.statusCode === 200) done++
          else errors++
          resolve()
        })
      })
      req.on('error', () => {
        errors++
        resolve()
      })
      req.end()
    })
  const start = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) await one()
    }),
  )
  const elapsed = (performance.now() - start) / 1000
  agent.destroy()
  return { requests: done, seconds: elapsed, perSecond: done / elapsed, errors }
}
