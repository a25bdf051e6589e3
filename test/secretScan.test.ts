// No secret in the logs or the database (docs/threat-model.md): a full devnet run at debug log level — bootstrap,
// three nodes onboarding by themselves and becoming members, a rotation to generation 2, pods served on every route
// that hands out keys — then every node's log and data dir are scanned for every secret of the run.
//
// The secrets are gathered from the run itself, not guessed: each generation's M, each registration (node) key and the
// proposed secret are unsealed from each node's database with the devnet's dev-file seal key (the insecure devnet
// stand-in for the TEE's sealing key) and checked against the chain; the seal keys, gas keys and host tokens are read
// from the node dirs; pod keys (sealkeys of both generations, GetKey keys, a GetTlsKey private key, the app CA key)
// come from the pods' answers and from M. Each is searched as raw bytes, hex (any case, with or without 0x),
// base64/base64url at any alignment and JSON byte lists (test/secretScanner.ts, whose own test shows it finds a
// planted secret).
//
// Scanned: every file of every node dir — node.log (stdout and stderr), keymanager.sqlite with its -wal/-shm, the
// settings files — except the three secret inputs themselves (dev-seal.key, gas.key, host.token). Nothing in the
// database is excluded: its sealed columns (sealed_secrets, registrations.sealed_key, meta pending/proposed secrets,
// the light-client store) hold AES-256-GCM ciphertexts under the seal key, which is why no secret shows in them.
import assert from 'node:assert/strict'
import { createPrivateKey } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { hexToBytes, type Address, type Hex } from 'viem'
import { createGenerationsClient, generationCalldata } from '../src/chain/generations.ts'
import { DEVNET_AUTO_ROTATE, runDevnet, type NodeProcess } from '../src/devnet/network.ts'
import { appIdForPod } from '../src/keys/derive.ts'
import { addressOfPublicKey } from '../src/keys/signature.ts'
import { sealLabel } from '../src/node/keyring.ts'
import { createMasterSecret } from '../src/secret/masterSecret.ts'
import { devFileSealProvider } from '../src/secret/seal.ts'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { filesUnder, scanFiles, type Secret } from './secretScanner.ts'

type Devnet = Awaited<ReturnType<typeof runDevnet>>

const SECRET_INPUTS = new Set(['dev-seal.key', 'gas.key', 'host.token'])
const PODS = ['app', 'other']

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 300_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 300))
  }
}

async function podJson<T>(node: NodeProcess, pod: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${node.podUrl}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'x-keymanager-pod': pod, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  assert.equal(res.status, 200, `${path} for pod ${pod}`)
  return (await res.json()) as T
}

const hexBytes = (hex: string) => hexToBytes((hex.startsWith('0x') ? hex : `0x${hex}`) as Hex)

describe('secret scan: a devnet run at debug level leaves no secret in logs or databases', () => {
  let dir: string
  let devnet: Devnet
  const lines: string[] = []
  const secrets: Secret[] = []
  const registryXPub = new Map<number, Address>()
  const add = (name: string, bytes: Uint8Array) => {
    if (!secrets.some((s) => Buffer.from(s.bytes).equals(Buffer.from(bytes)))) secrets.push({ name, bytes: new Uint8Array(bytes) })
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'km-secretscan-'))
    devnet = await runDevnet({ nodes: 3, dir, print: (l) => lines.push(l), auto: true, autoSettings: DEVNET_AUTO_ROTATE, logLevel: 'debug' })
    const generations = createGenerationsClient({ publicClient: devnet.publicClient, address: devnet.registry })
    await waitFor('three members', async () => (await generations.memberCount()) === 3n)
    // A rotation: generation 2 is proposed, sealed, sent to every member, acknowledged and committed.
    const hash = await devnet.owner.sendTransaction({ to: devnet.registry, data: generationCalldata.startRotation(false, 3600n, 0n) })
    await devnet.publicClient.waitForTransactionReceipt({ hash })
    await waitFor('generation 2 on every node', async () =>
      (await Promise.all(devnet.nodes.map((n) => podJson<{ current: number }>(n, 'app', '/generations')))).every((g) => g.current === 2),
    )

    // Pod answers: the keys pods get, on every node, for both generations.
    for (const node of devnet.nodes)
      for (const pod of PODS) {
        for (const generation of [1, 2]) add(`sealkey ${pod} g${generation}`, hexBytes((await podJson<{ key: Hex }>(node, pod, `/sealkey?generation=${generation}`)).key))
        for (const path of ['wallet/0', 'db']) add(`GetKey ${pod} ${path}`, hexBytes((await podJson<{ key: string }>(node, pod, '/GetKey', { path, purpose: 'scan' })).key))
        const tls = await podJson<{ key: string }>(node, pod, '/GetTlsKey', { path: 'tls', subject: `${pod}.example` })
        const privateKey = createPrivateKey(tls.key)
        add(`GetTlsKey ${pod} private scalar`, Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'))
        add(`GetTlsKey ${pod} PKCS#8`, privateKey.export({ format: 'der', type: 'pkcs8' }))
        await podJson(node, pod, `/attest/0x${'ab'.repeat(32)}`)
      }
    for (const g of [1, 2]) registryXPub.set(g, (await generations.generationInfo(BigInt(g))).xPub)
    // Stopped (SIGTERM) before the scan: logs flushed, the database closed.
    await devnet.stop()
  })
  after(async () => {
    await devnet?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('default: the secrets of the run are gathered from the nodes and match the chain', async () => {
    let masters = 0
    let nodeKeys = 0
    for (const [i, node] of devnet.nodes.entries()) {
      const seal = devFileSealProvider(node.dir)
      add(`node ${i + 1} seal key`, readFileSync(join(node.dir, 'dev-seal.key')))
      add(`node ${i + 1} gas key`, hexBytes(readFileSync(join(node.dir, 'gas.key'), 'utf8').trim()))
      add(`node ${i + 1} host token`, Buffer.from(readFileSync(join(node.dir, 'host.token'), 'utf8').trim()))
      const db = new Database(join(node.dir, 'keymanager.sqlite'), { readonly: true, fileMustExist: true })
      try {
        for (const row of db.prepare<[], { generation: number; sealed: Buffer }>('SELECT generation, sealed FROM sealed_secrets').all()) {
          const m = seal.unseal(row.sealed, sealLabel.master(row.generation))
          const holder = createMasterSecret(m)
          assert.equal(holder.address.toLowerCase(), registryXPub.get(row.generation)?.toLowerCase(), `node ${i + 1}: the unsealed M of generation ${row.generation} is the registry's`)
          add(`M g${row.generation}`, m)
          for (const pod of PODS) add(`app CA key ${pod} g${row.generation}`, holder.appCa(appIdForPod(pod)).key)
          masters++
        }
        for (const row of db.prepare<[], { address: string; sealed_key: Buffer | null }>('SELECT address, sealed_key FROM registrations').all()) {
          if (!row.sealed_key) continue
          const key = seal.unseal(row.sealed_key, sealLabel.ephemeral(row.address))
          assert.equal(addressOfPublicKey(secp256k1.getPublicKey(key, false).subarray(1)).toLowerCase(), row.address.toLowerCase(), 'the unsealed registration key is its address')
          add(`node ${i + 1} registration key ${row.address}`, key)
          nodeKeys++
        }
        for (const name of ['pending_master', 'proposed_secret']) {
          const value = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?').get(name)?.value
          if (!value) continue
          if (name === 'pending_master') add('pending M', seal.unseal(hexBytes(value), sealLabel.pendingMaster))
          else {
            const { proposal, sealed } = JSON.parse(value) as { proposal: string; sealed: Hex }
            add('proposed M', seal.unseal(hexBytes(sealed), sealLabel.proposed(BigInt(proposal))))
          }
        }
      } finally {
        db.close()
      }
    }
    assert.equal(masters, 6, 'three nodes hold generations 1 and 2')
    assert.ok(nodeKeys >= 3, 'every node holds its node key')
    assert.ok(secrets.filter((s) => s.name.startsWith('M ')).length === 2, 'two distinct master secrets')
    assert.ok(secrets.length >= 30, `secrets gathered: ${secrets.length}`)
  })

  test('default: no secret in any node log or database, in any encoding', () => {
    assert.ok(secrets.length > 0, 'runs after the secrets were gathered')
    const files = devnet.nodes.flatMap((node) => filesUnder(node.dir, (path) => SECRET_INPUTS.has(path)))
    const names = files.map((f) => f.slice(dir.length))
    assert.ok(names.some((f) => f.endsWith('node.log')) && names.some((f) => f.endsWith('keymanager.sqlite')), `logs and databases scanned: ${names.join(', ')}`)
    const debugLines = devnet.nodes.map((n) => readFileSync(join(n.dir, 'node.log'), 'utf8').split('\n').filter((l) => l.includes('"level":20')).length)
    assert.ok(debugLines.every((n) => n > 0), `the nodes logged at debug level (${debugLines.join(', ')} debug lines)`)
    const findings = scanFiles(files, secrets, dir)
    assert.deepEqual(findings, [], 'no secret found')
    // The devnet's printed lines (what `keymanager devnet` shows an operator) carry none either.
    for (const line of lines) for (const s of secrets) assert.ok(!line.toLowerCase().includes(Buffer.from(s.bytes).toString('hex')), `printed line holds ${s.name}`)
  })
})
