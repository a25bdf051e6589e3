/**
 * Polls `check` every 300 ms until it gives a truthy value, and returns it; a throw counts as not yet. Past
 * `timeoutMs` it fails, naming `what` and the last error seen. For e2e waits on conditions, never on sleeps.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, 300))
  }
}
