import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { DSTACK_SEAL_PATH, DSTACK_SEAL_SECRET_FILE, dstackSealProvider } from './dstackSeal.ts'
import { gramineSealProvider } from './gramineSeal.ts'

describe('dstack seal provider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'km-dstack-seal-'))
  const socketPath = join(dir, 'dstack.sock')
  const dataDir = join(dir, 'data')
  mkdirSync(dataDir)
  const seen: unknown[] = []
  let agentKey = 'ab'.repeat(32)
  let server: Server

  before(async () => {
    // A guest agent speaking dstack's protocol: POST /GetKey {path, purpose} → {key, signature_chain}.
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => (body += c))
      req.on('end', () => {
        seen.push({ url: req.url, method: req.method, body: JSON.parse(body) })
        const out = JSON.stringify(req.url === '/GetKey' ? { key: agentKey, signature_chain: [] } : { error: 'unknown' })
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out)
      })
    })
    await new Promise<void>((r) => server.listen(socketPath, r))
  })
  after(() => {
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('default: seals under the agent key from GetKey with the fixed path; unseals after a "restart"', async () => {
    const a = await dstackSealProvider({ socketPath, dataDir })
    assert.deepEqual(seen.at(-1), { url: '/GetKey', method: 'POST', body: { path: DSTACK_SEAL_PATH, purpose: 'seal' } })
    assert.equal(a.name, 'dstack')
    assert.equal(a.persistent, true)
    assert.equal(a.insecure, false)
    const sealed = a.seal(new Uint8Array([1, 2, 3]), 'label')
    const b = await dstackSealProvider({ socketPath, dataDir })
    assert.deepEqual(b.unseal(sealed, 'label'), new Uint8Array([1, 2, 3]))
    assert.throws(() => b.unseal(sealed, 'other label'), /cannot unseal/)
    agentKey = 'cd'.repeat(32)
    const other = await dstackSealProvider({ socketPath, dataDir })
    assert.throws(() => other.unseal(sealed, 'label'), /cannot unseal/)
  })

  test('security: the agent key alone does not unseal: another container with the socket but not the data dir gets nothing', async () => {
    agentKey = 'ab'.repeat(32)
    const sidecar = await dstackSealProvider({ socketPath, dataDir })
    const secretFile = join(dataDir, DSTACK_SEAL_SECRET_FILE)
    assert.equal(statSync(secretFile).mode & 0o777, 0o600)
    const sealed = sidecar.seal(new Uint8Array([4, 2]), 'master')
    // Same agent, same GetKey answer, its own (empty) data dir: the sidecar's secret is missing.
    const otherDir = mkdtempSync(join(dir, 'other-'))
    const intruder = await dstackSealProvider({ socketPath, dataDir: otherDir })
    assert.throws(() => intruder.unseal(sealed, 'master'), /cannot unseal/)
    // The sidecar itself, restarted on its data dir, still unseals.
    assert.deepEqual((await dstackSealProvider({ socketPath, dataDir })).unseal(sealed, 'master'), new Uint8Array([4, 2]))
    // A secret file of the wrong size is refused, not used.
    writeFileSync(join(otherDir, DSTACK_SEAL_SECRET_FILE), Buffer.alloc(31))
    await assert.rejects(dstackSealProvider({ socketPath, dataDir: otherDir }), /dstack-seal\.secret holds 31 bytes, expected 32/)
  })

  test('error: no agent socket', async () => {
    await assert.rejects(dstackSealProvider({ socketPath: join(dir, 'missing.sock'), dataDir }), /seal provider dstack: .*missing\.sock: no dstack guest agent listens there/)
  })

  test('error: an agent answer without a key', async () => {
    agentKey = 'nothex'
    await assert.rejects(dstackSealProvider({ socketPath, dataDir }), /GetKey answered without a 32-byte hex key/)
  })
})

describe('gramine seal provider', () => {
  test('default: seals under the MRENCLAVE sealing key file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'km-gramine-'))
    mkdirSync(join(dir, 'keys'))
    writeFileSync(join(dir, 'keys', '_sgx_mrenclave'), Buffer.alloc(16, 7))
    const a = gramineSealProvider({ attestationDir: dir })
    assert.equal(a.name, 'gramine')
    const sealed = a.seal(new Uint8Array([9]), 'x')
    assert.deepEqual(gramineSealProvider({ attestationDir: dir }).unseal(sealed, 'x'), new Uint8Array([9]))
    writeFileSync(join(dir, 'keys', '_sgx_mrenclave'), Buffer.alloc(16, 8))
    assert.throws(() => gramineSealProvider({ attestationDir: dir }).unseal(sealed, 'x'), /cannot unseal/)
    writeFileSync(join(dir, 'keys', '_sgx_mrenclave'), Buffer.alloc(32, 8))
    assert.throws(() => gramineSealProvider({ attestationDir: dir }), /holds 32 bytes, expected a 16-byte SGX key/)
  })

  test('error: not inside Gramine', () => {
    assert.throws(() => gramineSealProvider({ attestationDir: join(tmpdir(), 'no-such-gramine') }), /seal provider gramine: .*_sgx_mrenclave not found \(not running inside a Gramine SGX enclave\?\)/)
  })
})
