// Baseline for `npm run bench`: a bare hono route on @hono/node-server, served exactly as the sidecar serves its
// pod listener, in its own process.
import { serve } from '@hono/node-server'
import { Hono } from 'hono'

const app = new Hono()
app.get('/bare', (c) => c.json({ ok: true }))
serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => process.stdout.write(`${JSON.stringify({ port: info.port })}\n`))
