// Sign-in for the status page (docs/protocol.md#http-api): the operator types the host token into a form once; the
// node answers with a session cookie. Decisions:
// - The cookie carries a random 32-byte session id, not the token: a stolen cookie expires (12 h) and dies with
//   `POST /logout` or a restart, and the token is never stored by the browser. The node keeps only SHA-256 of ids.
// - The cookie is HttpOnly, SameSite=Strict, Path=/, and Secure when the page is served over TLS (the request URL
//   is https, or a TLS-terminating proxy says X-Forwarded-Proto: https: that can only add the flag).
// - A session authorises reading, never acting: the page, `/status`, `/metrics` and `/openapi.json` (GET only).
//   `/bootstrap`, `/register`, `/helper` (GET included: it sends a transaction) keep requiring the bearer header, so
//   no cross-site request can make the node act with an operator's cookie. The bearer header works everywhere.
// - The two form posts (`/login`, `/logout`) are CSRF-checked: Origin (or Sec-Fetch-Site) must be this origin
//   (hono's csrf middleware), and `/logout` also carries the session's CSRF token.
// - The token is compared in constant time on its SHA-256 (as the bearer check), so its length leaks nothing.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Context, MiddlewareHandler } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { errorJson } from '../errors.ts'

export const SESSION_COOKIE = 'keymanager_session'
/** Paths a session cookie may read (GET/HEAD only); everything else needs the bearer token. */
export const SESSION_READABLE_PATHS: readonly string[] = ['/', '/status', '/metrics', '/openapi.json']

export type Session = { csrf: string; expiresAt: number }

const sha256 = (value: string) => createHash('sha256').update(value).digest()

export function createSessions(options: { token: string; lifetimeSeconds?: number; maxSessions?: number; now?: () => number }) {
  if (options.token.length < 16) throw new Error('host token must be at least 16 characters')
  const expected = sha256(options.token)
  const lifetime = options.lifetimeSeconds ?? 12 * 3600
  const max = options.maxSessions ?? 64
  const now = options.now ?? (() => Math.floor(Date.now() / 1000))
  /** sha256(session id) hex → session. Insertion order is age order: the oldest is evicted first. */
  const sessions = new Map<string, Session>()

  const key = (id: string) => sha256(id).toString('hex')

  return {
    lifetimeSeconds: lifetime,
    /** True when `given` is the host token (constant time). */
    checkToken(given: string): boolean {
      return timingSafeEqual(sha256(given), expected)
    },
    /** A new session; returns its id (the cookie value) and CSRF token. */
    create(): { id: string; session: Session } {
      for (const [k, s] of sessions) if (s.expiresAt <= now()) sessions.delete(k)
      while (sessions.size >= max) sessions.delete(sessions.keys().next().value!)
      const id = randomBytes(32).toString('base64url')
      const session = { csrf: randomBytes(32).toString('base64url'), expiresAt: now() + lifetime }
      sessions.set(key(id), session)
      return { id, session }
    },
    get(id: string | undefined): Session | undefined {
      if (!id || id.length > 128) return undefined
      const session = sessions.get(key(id))
      if (!session) return undefined
      if (session.expiresAt <= now()) {
        sessions.delete(key(id))
        return undefined
      }
      return session
    },
    revoke(id: string | undefined) {
      if (id) sessions.delete(key(id))
    },
  }
}
export type Sessions = ReturnType<typeof createSessions>

/** True when the page is served over TLS (directly, or behind a proxy that says so). */
export function isTls(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https'
}

export function sessionOf(c: Context, sessions: Sessions): { id: string; session: Session } | undefined {
  const id = getCookie(c, SESSION_COOKIE)
  const session = sessions.get(id)
  return session && id ? { id, session } : undefined
}

export function setSessionCookie(c: Context, id: string, maxAge: number) {
  setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: 'Strict', secure: isTls(c), path: '/', maxAge })
}

export function clearSessionCookie(c: Context) {
  deleteCookie(c, SESSION_COOKIE, { httpOnly: true, sameSite: 'Strict', secure: isTls(c), path: '/' })
}

/**
 * The host listener's authentication: `Authorization: Bearer <token>` for every route, or a session cookie for a GET
 * of `SESSION_READABLE_PATHS`.
 */
export function hostAuthentication(sessions: Sessions): MiddlewareHandler {
  return async function requireOperator(c, next) {
    const header = c.req.header('authorization')
    if (header !== undefined) {
      const match = /^Bearer (.+)$/.exec(header)
      if (match && sessions.checkToken(match[1]!)) return next()
      return errorJson(c, 'unauthorized', 'missing or wrong bearer token')
    }
    const readOnly = (c.req.method === 'GET' || c.req.method === 'HEAD') && SESSION_READABLE_PATHS.includes(c.req.path)
    if (readOnly && sessionOf(c, sessions)) return next()
    return errorJson(c, 'unauthorized', 'missing or wrong bearer token')
  }
}
