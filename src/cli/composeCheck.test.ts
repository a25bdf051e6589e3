import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { checkCompose, parseCompose, runComposeCheck } from './composeCheck.ts'

const BIN = fileURLToPath(new URL('../../bin/keymanager.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'km-compose-'))
const DIGEST = `sha256:${'ab'.repeat(32)}`

/** A passing compose file: the agent socket, data and per-pod sockets in the sidecar only. */
const good = `
services:
  dstack-keymanager:
    image: keymanager@${DIGEST}
    volumes:
      - /var/run/dstack.sock:/var/run/dstack.sock
      - km-data:/data
      - km-web:/var/run/keymanager/web
  web:
    image: web:1
    volumes:
      - km-web:/var/run
      - ./static:/srv/static:ro
volumes: { km-data: {}, km-web: {} }
`
const withService = (extra: string) => good.replace('\nvolumes:', `\n${extra}\nvolumes:`)
const check = (text: string, options: { sidecar?: string } = {}) =>
  checkCompose(parseCompose(text), { sidecar: options.sidecar ?? 'dstack-keymanager', dataDir: '/data', baseDir: dir })

async function run(text: string, ...flags: string[]) {
  const file = join(dir, `compose-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, text)
  const out: string[] = []
  const err: string[] = []
  const code = await runComposeCheck([file, ...flags], (l) => out.push(l), (l) => err.push(l))
  return { code, out, err, file }
}

test('default: a compose file that keeps the socket, the TEE interfaces and the data with the sidecar passes', async () => {
  assert.deepEqual(check(good), [])
  const { code, out } = await run(good)
  assert.equal(code, 0)
  assert.match(out.at(-1)!, /^✓ .*: no service besides dstack-keymanager reaches the quote interface, the seal-key source or the sidecar's data$/)
})

test('default: the compose example of docs/protocol.md#pod-identity passes', () => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
  const section = doc.slice(doc.indexOf('### Pod identity'))
  const block = /```yaml\n([\s\S]*?)```/.exec(section)![1]!.replace(/^ {3}/gm, '')
  // The example names no real image: pinned by digest, as it says.
  assert.deepEqual(check(block.replaceAll('@sha256:…', `@${DIGEST}`)), [])
  assert.deepEqual(check(block).map((f) => `${f.service} ${f.where}`), ['dstack-keymanager image'])
})

test('default: deploy/compose.yaml keeps everything with the sidecar; only its image is left for the operator to pin', async () => {
  const file = fileURLToPath(new URL('../../deploy/compose.yaml', import.meta.url))
  const findings = checkCompose(parseCompose(readFileSync(file, 'utf8')), { sidecar: 'dstack-keymanager', dataDir: '/data', baseDir: dir })
  assert.deepEqual(findings.map((f) => `${f.service} ${f.where}`), ['dstack-keymanager image'])
  const pinned = readFileSync(file, 'utf8').replace('${KEYMANAGER_IMAGE:-keymanager:latest}', `keymanager@${DIGEST}`)
  assert.equal((await run(pinned)).code, 0)
})

test('security: compose-check flags a second service that has the dstack socket', async () => {
  const attack = withService(`  sneaky:
    image: sneaky:1
    volumes:
      - /var/run/dstack.sock:/var/run/dstack.sock`)
  const { code, out } = await run(attack)
  assert.equal(code, 1)
  assert.equal(out[0], "✗ service sneaky: volumes[0] mounts /var/run/dstack.sock, which reaches /var/run/dstack.sock: the dstack agent (quotes with this CVM's measurement, the keys the dstack seal is made from)")
  assert.equal(out.at(-1), 'compose-check failed: 1 finding(s)')
  // The same through the production entry, as an operator runs it.
  const file = join(dir, 'attack.yaml')
  writeFileSync(file, attack)
  const cli = spawnSync(process.execPath, [BIN, 'compose-check', file, '--json'], { encoding: 'utf8' })
  assert.equal(cli.status, 1)
  assert.deepEqual((JSON.parse(cli.stdout) as { findings: { service: string }[] }).findings.map((f) => f.service), ['sneaky'])
})

test('security: every other way to the interfaces or the data is flagged', () => {
  const cases: [string, RegExp][] = [
    ['    volumes: ["/var/run:/host-run"]', /mounts \/var\/run, which reaches \/var\/run\/dstack\.sock/],
    ['    volumes: [{ type: bind, source: /sys/kernel/config/tsm/report, target: /tsm }]', /mounts \/sys\/kernel\/config\/tsm\/report, which reaches \/sys\/kernel\/config\/tsm: configfs-tsm/],
    ['    volumes: ["/:/host"]', /mounts \/, which reaches/],
    ['    volumes: ["/dev/attestation:/dev/attestation"]', /Gramine's attestation interface/],
    ['    devices: ["/dev/tdx_guest:/dev/tdx_guest"]', /has device \/dev\/tdx_guest, which is \/dev\/tdx_guest: the TDX guest device/],
    ['    devices: [{ source: /dev/sgx_enclave, target: /dev/sgx_enclave }]', /has device \/dev\/sgx_enclave/],
    ['    privileged: true', /^privileged is privileged: it can reach every device/],
    ['    pid: "service:dstack-keymanager"', /pid shares a process namespace \(service:dstack-keymanager\)/],
    ['    network_mode: "service:dstack-keymanager"', /network_mode shares a network namespace \(service:dstack-keymanager\)/],
    ['    network_mode: host', /network_mode shares a network namespace \(host\)/],
    ['    cap_add: [SYS_ADMIN]', /cap_add adds SYS_ADMIN: it can mount configfs/],
    ['    cap_add: [cap_sys_admin]', /cap_add adds SYS_ADMIN/],
    ['    cap_add: [ALL]', /cap_add adds ALL/],
    ['    pid: host', /pid shares a process namespace \(host\)/],
    ['    volumes_from: ["dstack-keymanager:ro"]', /volumes_from\[0\] takes every volume of the sidecar/],
    ['    volumes_from: ["service:dstack-keymanager"]', /volumes_from\[0\] takes every volume of the sidecar/],
    ['    volumes: ["km-data:/steal"]', /mounts km-data, the sidecar's data volume/],
    ['    volumes: [{ type: volume, source: km-data, target: /steal }]', /mounts km-data, the sidecar's data volume/],
    ['    volumes: ["${RUN_DIR}:/run-dir"]', /mounts \$\{RUN_DIR\}: a path with variables cannot be checked/],
    ['    volumes: ["$RUN_DIR:/run-dir"]', /mounts \$RUN_DIR: a path with variables cannot be checked/],
  ]
  for (const [lines, expected] of cases) {
    const findings = check(withService(`  other:\n    image: other:1\n${lines}`))
    assert.equal(findings.length, 1, `${lines}: ${JSON.stringify(findings)}`)
    assert.equal(findings[0]!.service, 'other')
    assert.match(`${findings[0]!.where} ${findings[0]!.problem}`, expected, lines)
  }
  // A data dir bound from the host, shared by another service through a parent directory.
  const bound = withService(`  thief:\n    image: t:1\n    volumes: ["./:/everything"]`).replace('km-data:/data', './state:/data')
  assert.deepEqual(check(bound).map((f) => `${f.service} ${f.where} ${f.problem}`), [`thief volumes[0] mounts ${dir}, the sidecar's data volume (sealed secrets, its database)`])
})

test('security: named volumes are followed to what they are', () => {
  // A named volume that binds a host directory through driver_opts is that directory.
  const bindVolume = withService(`  other:\n    image: o:1\n    volumes: ["run:/r"]`).replace(
    'volumes: { km-data: {}, km-web: {} }',
    'volumes: { km-data: {}, km-web: {}, run: { driver_opts: { type: none, o: bind, device: /var/run } } }',
  )
  assert.deepEqual(check(bindVolume).map((f) => `${f.service} ${f.where}`), ['other volumes[0]'])
  assert.match(check(bindVolume)[0]!.problem, /mounts \/var\/run, which reaches \/var\/run\/dstack\.sock/)
  // Another key naming the sidecar's data volume is the same volume.
  const alias = withService(`  other:\n    image: o:1\n    volumes: ["copy:/steal"]`).replace(
    'volumes: { km-data: {}, km-web: {} }',
    'volumes: { km-data: { name: keymanager-state }, km-web: {}, copy: { name: keymanager-state, external: true } }',
  )
  assert.deepEqual(check(alias).map((f) => `${f.service} ${f.where} ${f.problem}`), [
    "other volumes[0] mounts keymanager-state, the sidecar's data volume (sealed secrets, its database)",
  ])
})

test('security: anchors and merge keys are followed', () => {
  const merged = `
x-common: &common
  volumes:
    - /var/run/dstack.sock:/var/run/dstack.sock
${good.trim()}
`.replace('  web:\n    image: web:1\n    volumes:\n      - km-web:/var/run\n      - ./static:/srv/static:ro', '  web:\n    <<: *common\n    image: web:1')
  const findings = check(merged)
  assert.equal(findings.length, 1, JSON.stringify(findings))
  assert.equal(findings[0]!.service, 'web')
})

test('security: the sidecar must be pinned by digest, keep a data volume, and take nothing from the host over /app', () => {
  const problems = (text: string) => check(text).map((f) => `${f.service} ${f.where}`)
  assert.deepEqual(problems(good.replace(`keymanager@${DIGEST}`, 'keymanager:latest')), ['dstack-keymanager image'])
  assert.deepEqual(problems(good.replace('      - km-data:/data\n', '')), ['dstack-keymanager volumes'])
  assert.deepEqual(problems(good.replace('      - km-data:/data\n', '      - km-data:/data\n      - ./measured.json:/app/measured.json:ro\n')), ['dstack-keymanager volumes[2]'])
  // measured.json from an inline config is part of the compose file, so of its hash: allowed. From a file: not.
  const inline = `${good}configs:\n  measured:\n    content: '{"version": 1}'\n`.replace(
    '    volumes:\n      - /var/run/dstack.sock',
    '    configs: [{ source: measured, target: /app/measured.json }]\n    volumes:\n      - /var/run/dstack.sock',
  )
  assert.deepEqual(problems(inline), [])
  assert.deepEqual(problems(inline.replace(`content: '{"version": 1}'`, 'file: ./measured.json')), ['dstack-keymanager configs[0]'])
})

test('error: bad input exits 2 with one line', async () => {
  const cases: [string, string[], RegExp][] = [
    ['services: [', [], /: not valid YAML: /],
    ['services:\n  a: {}\n  a: {}\n', [], /: not valid YAML: duplicated mapping key/],
    ['version: "3"\n', [], /: not a compose file: no services mapping/],
    [good, ['--sidecar', 'km'], /: no service named km \(name the sidecar with --sidecar\)/],
    [good, ['--data-dir', 'data'], /--data-dir must be an absolute path/],
  ]
  for (const [text, flags, expected] of cases) {
    const { code, err } = await run(text, ...flags)
    assert.equal(code, 2, text)
    assert.equal(err.length, 1)
    assert.match(err[0]!, /^keymanager compose-check: /)
    assert.match(err[0]!, expected)
  }
  const usage = await run(good, 'extra.yaml')
  assert.equal(usage.code, 2)
  assert.match(usage.err[0]!, /^keymanager compose-check: compose-check takes one FILE, got 2$/)
  const missing = await runComposeCheck([join(dir, 'missing.yaml')], () => {}, (l) => assert.match(l, /ENOENT/))
  assert.equal(missing, 2)
})
