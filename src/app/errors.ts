import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Logger } from 'pino'
import { ERROR_STATUS, KeymanagerError, type ErrorCode } from '../errors.ts'

export type ErrorBody = { error: { code: ErrorCode | string; message: string; [extra: string]: unknown } }

export function errorJson(c: Context, code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  return c.json({ error: { code, message, ...extra } } satisfies ErrorBody, ERROR_STATUS[code] as ContentfulStatusCode)
}

/**
 * The one place errors become responses (docs/protocol.md#http-api): known errors with their code, anything else as a
 * generic 500 whose details go to the log only. Never a stack trace to a client.
 */
export function createErrorHandler(logger: Logger) {
  return function onError(error: Error, c: Context) {
    if (error instanceof KeymanagerError) return errorJson(c, error.code, error.message)
    if ((error as { status?: number }).status === 413) return errorJson(c, 'payload_too_large', 'request body too large')
    logger.error({ err: { name: error.name, message: error.message }, path: c.req.path }, 'unhandled error')
    return errorJson(c, 'internal', 'internal error')
  }
}

export function notFound(c: Context) {
  return errorJson(c, 'not_found', `no route ${c.req.method} ${c.req.path}`)
}

/**
 * Runs a parser of client input: the TypeError/RangeError that src/keys validators throw (naming the argument)
 * becomes a 400. Elsewhere such errors are bugs and stay 500s.
 */
export function parseInput<T>(parse: () => T): T {
  try {
    return parse()
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) throw new KeymanagerError('bad_request', error.message)
    throw error
  }
}
