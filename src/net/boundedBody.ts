// Reading an HTTP answer from an untrusted server (a beacon node, a peer's archive) without buffering more than a cap:
// a declared Content-Length over the cap is refused before any byte is read, and a body without one (chunked) is read
// only until it passes the cap. The caller names its own errors, so each source keeps its error type and wording.

export type BoundedBodyErrors = {
  /** The answer is over `maxBytes`: `declared` is its Content-Length when that alone says so, else undefined. */
  tooLarge(declared: number | undefined): Error
  /** The body broke off (connection reset, timeout): `error` is what the stream threw. */
  broken(error: unknown): Error
}

/** At most `maxBytes` of `response`'s body (an empty body for none); throws the caller's errors past the cap. */
export async function readBoundedBody(response: Response, maxBytes: number, errors: BoundedBodyErrors): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined)
    throw errors.tooLarge(declared)
  }
  if (response.body === null) return new Uint8Array(0)
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  let over = false
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > maxBytes) {
        over = true
        await reader.cancel().catch(() => undefined)
        break
      }
      chunks.push(value)
    }
  } catch (error) {
    throw errors.broken(error)
  }
  if (over) throw errors.tooLarge(undefined)
  const body = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    body.set(chunk, offset)
    offset += chunk.byteLength
  }
  return body
}
