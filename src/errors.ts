// One error family for the whole code base (viem's model: one base class, named subclasses, a one-line
// `shortMessage` and the facts as `metaMessages`). Every error the code throws on purpose is a `KeymanagerError`:
// the chain errors (src/chain/errors.ts), quote verification and providers (src/tee), sealing (src/secret), ECIES
// (src/keys/ecies.ts), the command line (src/cli/args.ts). Each carries one code of a closed list, which is its HTTP
// status where an API answers with it (docs/protocol.md#http-api: `{"error":{"code","message"}}`), and a message that
// is safe to show a client: it names what was wrong, never a secret. Anything else that reaches an API (a TypeError
// from a bug) is answered as `internal` with its message kept in the log. Argument validation at module boundaries
// throws TypeError/RangeError (noble's `abytes` model); routes turn those into `bad_request` (src/app/errors.ts).
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  /** A generation that was purged (docs/protocol.md#onboarding-across-generations): its keys are gone for good. */
  gone: 410,
  payload_too_large: 413,
  unprocessable: 422,
  /** A public route's rate limit (docs/protocol.md#limits); the answer carries `Retry-After`. */
  too_many_requests: 429,
  internal: 500,
  upstream_failed: 502,
  not_ready: 503,
} as const
export type ErrorCode = keyof typeof ERROR_STATUS

export type KeymanagerErrorParameters = {
  /** Facts about the failure (hashes, paths, lengths: public data), one per line after the short message. */
  metaMessages?: string[] | undefined
  cause?: unknown
}

/** An error whose message is safe to show a client: it names what was wrong, never a secret. */
export class KeymanagerError extends Error {
  override name = 'KeymanagerError'
  /** The message without the facts. */
  readonly shortMessage: string
  readonly metaMessages: string[]

  constructor(
    readonly code: ErrorCode,
    shortMessage: string,
    parameters: KeymanagerErrorParameters = {},
  ) {
    const metaMessages = parameters.metaMessages ?? []
    super(metaMessages.length > 0 ? `${shortMessage}\n\n${metaMessages.join('\n')}` : shortMessage, { cause: parameters.cause })
    this.shortMessage = shortMessage
    this.metaMessages = metaMessages
  }

  get status(): number {
    return ERROR_STATUS[this.code]
  }
}
