// `GET /` (the status page or its sign-in form), `POST /login`, `POST /logout` on the host listener. The decisions on
// sessions and CSRF are in session.ts.
import { Hono, type Context } from 'hono'
import { csrf } from 'hono/csrf'
import { HTTPException } from 'hono/http-exception'
import type { Logger } from 'pino'
import { NONCE, secureHeaders } from 'hono/secure-headers'
import { KeymanagerError } from '../../errors.ts'
import type { StatusSnapshot } from '../../monitor/monitor.ts'
import { createErrorHandler, errorJson } from '../errors.ts'
import { clearSessionCookie, sessionOf, setSessionCookie, type Sessions } from './session.ts'
import { FRAGMENT_HEADER, LoginPage, StatusContent, StatusPage } from './page.tsx'

type Env = { Variables: { secureHeadersNonce?: string } }

export function createStatusRoutes(deps: { sessions: Sessions; snapshot(): Promise<StatusSnapshot>; logger: Logger }) {
  const { sessions } = deps
  const app = new Hono<Env>()
  const onError = createErrorHandler(deps.logger)
  // hono's csrf middleware refuses with an HTTPException 403: answered in the project's error shape.
  app.onError((error, c) =>
    error instanceof HTTPException && error.status === 403 ? errorJson(c, 'forbidden', 'cross-origin form post refused') : onError(error, c),
  )
  const headers = secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: [NONCE],
      styleSrc: [NONCE],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
    },
    referrerPolicy: 'no-referrer',
    // Plain HTTP on a private port is the usual set-up; HSTS would be wrong there.
    strictTransportSecurity: false,
  })
  // Both form posts must come from this page's origin (Origin header, or Sec-Fetch-Site: same-origin).
  const sameOrigin = csrf()
  const noStore = async (c: Context, next: () => Promise<void>) => {
    await next()
    c.header('cache-control', 'no-store')
  }
  const nonce = (c: Context<Env>) => c.get('secureHeadersNonce') ?? ''
  /** The posted form; a body hono cannot parse (a multipart body without its boundary, say) is a 400, not a 500. */
  async function readForm(c: Context<Env>) {
    try {
      return await c.req.parseBody()
    } catch {
      throw new KeymanagerError('bad_request', 'the form could not be read (send application/x-www-form-urlencoded)')
    }
  }

  app.get('/', noStore, headers, async (c) => {
    const current = sessionOf(c, sessions)
    if (!current) return c.html(<LoginPage nonce={nonce(c)} />)
    const snapshot = await deps.snapshot()
    if (c.req.header(FRAGMENT_HEADER) === '1') return c.html(<StatusContent snapshot={snapshot} />)
    return c.html(<StatusPage snapshot={snapshot} nonce={nonce(c)} csrf={current.session.csrf} />)
  })

  app.post('/login', noStore, headers, sameOrigin, async (c) => {
    const form = await readForm(c)
    const token = typeof form.token === 'string' ? form.token : ''
    if (!sessions.checkToken(token)) return c.html(<LoginPage nonce={nonce(c)} error="Wrong token." />, 401)
    const { id } = sessions.create()
    setSessionCookie(c, id, sessions.lifetimeSeconds)
    // 303: the browser follows with a GET, so a reload does not post the token again.
    return c.redirect('/', 303)
  })

  app.post('/logout', noStore, headers, sameOrigin, async (c) => {
    const current = sessionOf(c, sessions)
    const form = await readForm(c)
    if (current && form.csrf === current.session.csrf) sessions.revoke(current.id)
    else if (current) return errorJson(c, 'forbidden', "sign-out refused: the form is not this session's")
    clearSessionCookie(c)
    return c.redirect('/', 303)
  })
  return app
}
