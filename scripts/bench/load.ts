import autocannon from 'autocannon'

export type LoadResult = { requests: number; seconds: number; perSecond: number; errors: number }

/**
 * Closed-loop HTTP load with autocannon (keep-alive, `connections` in flight) for `seconds`. Any non-2xx answer,
 * error or timeout is counted, so a failing route cannot look fast. The client runs in this process and the
 * server in another, on the same two cores: figures are only compared as ratios within one run.
 */
export async function load(url: string, { seconds, concurrency, headers = {} }: { seconds: number; concurrency: number; headers?: Record<string, string> }): Promise<LoadResult> {
  const result = await autocannon({ url, connections: concurrency, duration: seconds, headers })
  const requests = result.requests.total - result.non2xx
  return { requests, seconds: result.duration, perSecond: requests / result.duration, errors: result.errors + result.timeouts + result.non2xx }
}
