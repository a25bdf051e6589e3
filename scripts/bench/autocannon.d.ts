// The part of autocannon's API the bench and the soak use (the package ships no types).
declare module 'autocannon' {
  type Request = { method?: string; path?: string; headers?: Record<string, string>; body?: string }
  type Options = {
    url: string
    connections: number
    /** Seconds to run; ignored when `amount` is given. */
    duration?: number
    /** Total requests to make, then stop. */
    amount?: number
    headers?: Record<string, string>
    pipelining?: number
    workers?: number
    /** Requests per second across all connections. */
    overallRate?: number
    /** Cycled through by each connection. */
    requests?: Request[]
  }
  type Result = {
    requests: { average: number; total: number }
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    statusCodeStats?: Record<string, { count: number }>
  }
  export default function autocannon(options: Options): Promise<Result>
}
