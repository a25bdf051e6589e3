// One closed list of error codes, each with its HTTP status (docs/protocol.md#http-api: `{"error":{"code","message"}}`).
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unprocessable: 422,
  internal: 500,
  upstream_failed: 502,
  not_ready: 503,
} as const
export type ErrorCode = keyof typeof ERROR_STATUS

/** An error whose message is safe to show a client: it names what was wrong, never a secret. */
export class KeymanagerError extends Error {
  override name = 'KeymanagerError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
  get status(): number {
    return ERROR_STATUS[this.code]
  }
}
