import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { Hono } from 'hono'
import { serveUnixSocket } from './socket.ts'

const dir = mkdtempSync(join(tmpdir(), 'km-sock-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const app = new Hono()
app.post('/Echo', async (c) => c.json({ got: await c.req.json() }))

/** One request written the way @phala/dstack-sdk 0.5.8 writes it: raw HTTP/1.1, then read Content-Length bytes. */
function rawRequest(path: string, route: string, payload: string): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const client = connect({ path }, () => {
      client.write(`POST ${route} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n${payload}`)
    })
    let data = ''
    client.on('data', (chunk) => {
      data += chunk
      const end = data.indexOf('\r\n\r\n')
      if (end === -1) return
      const length = /content-length: (\d+)/i.exec(data.slice(0, end))
      if (length && data.length - end - 4 >= Number(length[1])) client.end()
    })
    client.on('end', () => {
      const end = data.indexOf('\r\n\r\n')
      resolve({ head: data.slice(0, end), body: data.slice(end + 4) })
    })
    client.on('error', reject)
  })
}

test('default: serves the app over the socket with Content-Length and no chunked encoding', async () => {
  const path = join(dir, 'a.sock')
  const server = await serveUnixSocket(app, { path })
  try {
    const { head, body } = await rawRequest(path, '/Echo', '{"x":1}')
    assert.match(head, /^HTTP\/1\.1 200/)
    assert.match(head, /content-length: 15/i)
    assert.doesNotMatch(head, /transfer-encoding/i)
    assert.deepEqual(JSON.parse(body), { got: { x: 1 } })
  } finally {
    await server.close()
  }
})

test('default: the socket gets the asked mode (default 0o666), and close removes it', async () => {
  const path = join(dir, 'mode.sock')
  const open = await serveUnixSocket(app, { path })
  assert.equal(statSync(path).mode & 0o777, 0o666)
  await open.close()
  assert.equal(existsSync(path), false)
  const narrow = await serveUnixSocket(app, { path, mode: 0o600 })
  assert.equal(statSync(path).mode & 0o777, 0o600)
  await narrow.close()
  await narrow.close() // idempotent
})

test('default: a stale socket left by a crash is replaced; missing parent directories are created', async () => {
  const path = join(dir, 'nested', 'run', 'stale.sock')
  mkdirSync(join(dir, 'nested', 'run'), { recursive: true })
  // A process that listens on the path and is killed: its socket file stays behind with nobody accepting.
  const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", path])
  await new Promise((resolve) => child.stdout.once('data', resolve))
  child.kill('SIGKILL')
  await new Promise((resolve) => child.once('exit', resolve))
  assert.equal(lstatSync(path).isSocket(), true)
  const server = await serveUnixSocket(app, { path })
  try {
    assert.equal((await rawRequest(path, '/Echo', '{}')).head.startsWith('HTTP/1.1 200'), true)
  } finally {
    await server.close()
  }
  const fresh = join(dir, 'made', 'for', 'it.sock')
  await (await serveUnixSocket(app, { path: fresh })).close()
})

test('error: a live socket or a non-socket file at the path is never replaced', async () => {
  const path = join(dir, 'live.sock')
  const first = await serveUnixSocket(app, { path })
  try {
    await assert.rejects(serveUnixSocket(app, { path }), /is in use: another server accepts connections on it/)
    assert.equal((await rawRequest(path, '/Echo', '{}')).head.startsWith('HTTP/1.1 200'), true)
  } finally {
    await first.close()
  }
  const file = join(dir, 'regular')
  writeFileSync(file, 'keep me')
  await assert.rejects(serveUnixSocket(app, { path: file }), /exists and is not a socket; refusing to replace it/)
  assert.equal(statSync(file).size, 7)
})

test('error: bad options are refused before anything is created', async () => {
  await assert.rejects(serveUnixSocket(app, { path: '' }), /non-empty string/)
  await assert.rejects(serveUnixSocket(app, { path: '/tmp/' + 'x'.repeat(120) }), /at most 107 bytes, got 125/)
  await assert.rejects(serveUnixSocket(app, { path: join(dir, 'm.sock'), mode: 0o1777 }), /permission bits/)
  await assert.rejects(serveUnixSocket(app, { path: join(dir, 'm.sock'), mode: 1.5 }), /permission bits/)
  assert.equal(existsSync(join(dir, 'm.sock')), false)
})
