// The part of autocannon's API the bench uses (the package ships no types).
declare module 'autocannon' {
  type Options = { url: string; connections: number; duration: number; headers?: Record<string, string>; pipelining?: number; workers?: number }
  type Result = { requests: { average: number; total: number }; duration: number; errors: number; timeouts: number; non2xx: number }
  export default function autocannon(options: Options): Promise<Result>
}
