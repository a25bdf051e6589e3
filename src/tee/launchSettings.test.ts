// Measured settings from a platform's measured launch config: dstack's app-compose.json (its hash measured into RTMR3
// by the boot's `compose-hash` event) read through the production `dstack` quote provider from a simulated guest agent
// whose TD emits dstack's boot events, and a Gramine manifest's `loader.env` inside a (simulated) Gramine enclave.
// Samples: test/fixtures/launch/app-compose.json (dstack's app-compose format, manifest_version 2) and
// deploy/gramine/keymanager.manifest.template.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { parseMeasuredSettings } from '../config.ts'
import { serveSimulatedDstackAgent, type SimulatedDstackAgent } from '../devnet/dstackAgent.ts'
import { simulatedBootEventLog, simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { settingsDigest } from '../keys/settingsDigest.ts'
import { dstackQuoteProvider } from './hardwareQuotes.ts'
import {
  COMPOSE_SETTINGS_KEY,
  composeSettingsOf,
  GRAMINE_SETTINGS_VARIABLE,
  loadProductionSettings,
  measuredAppCompose,
  type DstackEvidenceSource,
} from './launchSettings.ts'
import type { QuoteProvider } from './types.ts'

const fixtures = new URL('../../test/fixtures/launch/', import.meta.url)
const APP_COMPOSE = readFileSync(new URL('app-compose.json', fixtures), 'utf8')
const COMPOSE_YAML = readFileSync(new URL('docker-compose.yaml', fixtures), 'utf8')
const MANIFEST = readFileSync(new URL('../../deploy/gramine/keymanager.manifest.template', import.meta.url), 'utf8')
const dir = mkdtempSync(join(tmpdir(), 'km-launch-'))
after(() => {
  for (const agent of agents) void agent.close()
})

function write(name: string, value: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value))
  return path
}

/** The app-compose text with its compose file edited (what a host could write into the host-shared copy). */
function withCompose(edit: (yaml: string) => string): string {
  const app = JSON.parse(APP_COMPOSE) as { docker_compose_file: string }
  return JSON.stringify({ ...app, docker_compose_file: edit(app.docker_compose_file) }, null, 4)
}

/**
 * A dstack TD as its boot leaves it: RTMR3 extended with dstack's boot events, `compose-hash` = SHA-256 of the
 * app-compose.json it booted with, then `system-ready`; `after` is emitted later (as an app may, through the agent).
 */
async function bootedTd(bootedCompose: string, after: { event: string; payload: Uint8Array }[] = []): Promise<QuoteProvider> {
  const label = 'launch-settings'
  const td = simulatedQuoteProvider({ measurement: simulatedMeasurement(label), bootEventLog: simulatedBootEventLog(label) })
  const events: [string, Uint8Array][] = [
    ['system-preparing', new Uint8Array(0)],
    ['app-id', new Uint8Array(20).fill(0xa1)],
    ['compose-hash', sha256(utf8ToBytes(bootedCompose))],
    ['instance-id', new Uint8Array(20).fill(0x1d)],
    ['boot-mr-done', new Uint8Array(0)],
    ['key-provider', utf8ToBytes('{"type":"kms","id":"3059301306072a8648ce3d020106082a8648ce3d03010703420004"}')],
    ['system-ready', new Uint8Array(0)],
    ...after.map((e): [string, Uint8Array] => [e.event, e.payload]),
  ]
  for (const [event, payload] of events) await td.emitEvent!(event, payload)
  return td
}

const agents: SimulatedDstackAgent[] = []
let sockets = 0
/** A simulated guest agent on a unix socket, and a baked pointer file naming it: the production path end to end. */
async function agentFor(td: QuoteProvider, infoCompose: string): Promise<{ bakedPath: string }> {
  const socketPath = join(dir, `agent-${++sockets}.sock`)
  agents.push(await serveSimulatedDstackAgent({ socketPath, quoteProvider: td, seed: new Uint8Array(32).fill(9), appCompose: infoCompose }))
  return { bakedPath: write(`pointer-${sockets}.json`, { version: 1, source: 'dstack-app-compose', socket: socketPath }) }
}

const oneLine = (expected: RegExp) => (error: Error) => {
  assert.match(error.message, expected)
  assert.doesNotMatch(error.message, /\n/)
  return true
}

describe('dstack app-compose', () => {
  test('sample: the app-compose.json fixture carries the compose file beside it, in dstack\'s app-compose format', () => {
    const app = JSON.parse(APP_COMPOSE) as Record<string, unknown>
    assert.equal(app.manifest_version, 2)
    assert.equal(app.runner, 'docker-compose')
    assert.equal(app.docker_compose_file, COMPOSE_YAML)
  })

  test('default: settings come from x-keymanager of the measured app-compose, through the agent socket, with the digest of the same settings baked into an image', async () => {
    const { bakedPath } = await agentFor(await bootedTd(APP_COMPOSE), APP_COMPOSE)
    const { measured, source } = await loadProductionSettings({ bakedPath, dataDir: '/data', env: {} })
    assert.equal(source, 'dstack-app-compose')
    assert.equal(measured.chain.chainId, 11155111)
    assert.equal(measured.chain.registry, '0x5fbdb2315678afecb367f032d93f642f64180aa3')
    assert.deepEqual(measured.pods.appIds, { app: '0x1111111111111111111111111111111111111111' })
    const { settings } = composeSettingsOf(APP_COMPOSE)
    const baked = await loadProductionSettings({ bakedPath: write('baked.json', settings), dataDir: '/data', env: {} })
    assert.equal(baked.source, 'image')
    assert.equal(settingsDigest(measured), settingsDigest(baked.measured))
  })

  test('security: an app-compose.json other than the one measured (the host edits its copy: another registry) is refused', async () => {
    const forged = withCompose((yaml) => yaml.replace('0x5FbDB2315678afecb367f032d93F642f64180aa3', '0x000000000000000000000000000000000000dead'))
    const { bakedPath } = await agentFor(await bootedTd(APP_COMPOSE), forged)
    await assert.rejects(
      loadProductionSettings({ bakedPath, dataDir: '/data', env: {} }),
      oneLine(/^dstack app-compose: the app-compose\.json the agent gave hashes to [0-9a-f]{64}, the measured compose-hash is [0-9a-f]{64}$/),
    )
  })

  test('security: a compose-hash emitted after system-ready (by an app, through the agent) does not stand in for the boot\'s', async () => {
    const forged = withCompose((yaml) => yaml.replace('chainId: 11155111', 'chainId: 1'))
    const late = await bootedTd(APP_COMPOSE, [{ event: 'compose-hash', payload: sha256(utf8ToBytes(forged)) }])
    await assert.rejects(loadProductionSettings({ ...(await agentFor(late, forged)), dataDir: '/data', env: {} }), oneLine(/hashes to .* the measured compose-hash is/))
    // A TD whose boot measured no compose at all: the late event is the only one, and it is not taken.
    const label = 'no-compose'
    const bare = simulatedQuoteProvider({ measurement: simulatedMeasurement(label), bootEventLog: simulatedBootEventLog(label) })
    await bare.emitEvent!('system-ready', new Uint8Array(0))
    await bare.emitEvent!('compose-hash', sha256(utf8ToBytes(forged)))
    await assert.rejects(
      loadProductionSettings({ ...(await agentFor(bare, forged)), dataDir: '/data', env: {} }),
      oneLine(/no compose-hash event before system-ready in the measured event log/),
    )
  })

  test('security: an event log that does not replay to the quote\'s RTMR3 is refused', async () => {
    const td = await bootedTd(APP_COMPOSE)
    // An agent that leaves out one runtime event (its log then claims a history RTMR3 does not have).
    const lying: DstackEvidenceSource = {
      async quoteWithEvidence(reportData) {
        const evidence = await td.quoteWithEvidence!(reportData)
        return { ...evidence, eventLog: evidence.eventLog.filter((e) => e.event !== 'instance-id') }
      },
      async platformInfo() {
        return { deviceId: '', appCompose: APP_COMPOSE, cloudVendor: '', cloudProduct: '' }
      },
    }
    await assert.rejects(measuredAppCompose(lying), oneLine(/the agent's event log does not replay to the quote's RTMR3/))
  })

  test('security: a measured compose file in which another service has the dstack socket does not start', async () => {
    const leaky = withCompose((yaml) => yaml.replace('      - app-socket:/var/run/dstack\n', '      - app-socket:/var/run/dstack\n      - /var/run/dstack.sock:/var/run/dstack.sock\n'))
    assert.notEqual(leaky, APP_COMPOSE)
    const { bakedPath } = await agentFor(await bootedTd(leaky), leaky)
    await assert.rejects(
      loadProductionSettings({ bakedPath, dataDir: '/data', env: {} }),
      oneLine(/^dstack app-compose: the measured compose file fails compose-check \(1 finding\(s\)\); first: service app: volumes\[1\] mounts \/var\/run\/dstack\.sock/),
    )
    // The sidecar's data volume given to the app is refused the same way.
    const shared = withCompose((yaml) => yaml.replace('      - app-socket:/var/run/dstack\n', '      - app-socket:/var/run/dstack\n      - keymanager-data:/mnt\n'))
    await assert.rejects(loadProductionSettings({ ...(await agentFor(await bootedTd(shared), shared)), dataDir: '/data', env: {} }), /the sidecar's data volume/)
  })

  test('security: devnet-only settings in the measured compose are refused as in a baked file', async () => {
    const devnet = withCompose((yaml) => yaml.replace('    quote: { provider: dstack }', '    quote: { provider: dstack }\n    devnet: true'))
    await assert.rejects(
      loadProductionSettings({ ...(await agentFor(await bootedTd(devnet), devnet)), dataDir: '/data', env: {} }),
      oneLine(/^measured settings \(x-keymanager of the dstack app-compose\): devnet is a devnet-only setting/),
    )
  })

  test('error: app-compose shapes that give no settings, each one line', () => {
    assert.throws(() => composeSettingsOf('{'), oneLine(/app-compose\.json is not JSON/))
    assert.throws(() => composeSettingsOf(JSON.stringify({ runner: 'bash', docker_compose_file: 'services: {}' })), oneLine(/no docker-compose runner/))
    assert.throws(() => composeSettingsOf(JSON.stringify({ runner: 'docker-compose', docker_compose_file: 'services: [' })), oneLine(/docker_compose_file: not valid YAML/))
    assert.throws(() => composeSettingsOf(withCompose((yaml) => yaml.replace(`${COMPOSE_SETTINGS_KEY}:`, 'x-other:'))), oneLine(/has no x-keymanager\.settings/))
    assert.throws(() => composeSettingsOf(withCompose((yaml) => yaml.replace('  service: dstack-keymanager', '  sidecar: dstack-keymanager'))), oneLine(/unknown keys sidecar/))
  })

  test('error: no agent, or an agent without a TD quote, is one line', async () => {
    const missing = write('pointer-missing.json', { version: 1, source: 'dstack-app-compose', socket: join(dir, 'none.sock') })
    await assert.rejects(loadProductionSettings({ bakedPath: missing, dataDir: '/data', env: {} }), oneLine(/quote provider dstack: .*none\.sock/))
    await assert.rejects(
      loadProductionSettings({ bakedPath: write('pointer-bad.json', { version: 1, source: 'dstack-app-compose', socket: 'relative.sock' }), dataDir: '/data', env: {} }),
      oneLine(/socket: must be an absolute path/),
    )
    await assert.rejects(
      loadProductionSettings({ bakedPath: write('pointer-unknown.json', { version: 1, source: 'host-file' }), dataDir: '/data', env: {} }),
      oneLine(/^measured settings .*pointer-unknown\.json: source: /),
    )
  })

  test('default: the dstack quote provider reads the same app-compose through a real socket round trip', async () => {
    const { bakedPath } = await agentFor(await bootedTd(APP_COMPOSE), APP_COMPOSE)
    const socket = (JSON.parse(readFileSync(bakedPath, 'utf8')) as { socket: string }).socket
    assert.equal(await measuredAppCompose(dstackQuoteProvider({ socketPath: socket }) as DstackEvidenceSource), APP_COMPOSE)
  })
})

describe('Gramine manifest', () => {
  /** The settings JSON the manifest template sets (a TOML literal string, as Gramine passes it to the enclave's env). */
  function manifestSettings(): string {
    const match = /^loader\.env\.KEYMANAGER_MEASURED_SETTINGS = '''\n([\s\S]*?)'''$/m.exec(MANIFEST)
    assert.ok(match, 'the manifest template sets KEYMANAGER_MEASURED_SETTINGS as a literal string')
    return match[1]!
  }
  function enclave(type = 'dcap'): string {
    const attestationDir = mkdtempSync(join(dir, 'attestation-'))
    mkdirSync(join(attestationDir, 'keys'))
    writeFileSync(join(attestationDir, 'attestation_type'), `${type}\n`)
    return attestationDir
  }
  const pointer = (attestationDir: string) => write(`gramine-${Math.random().toString(36).slice(2)}.json`, { version: 1, source: 'gramine-manifest', attestationDir })

  test('sample: the manifest template lets no host input in and asks for DCAP', () => {
    assert.doesNotMatch(MANIFEST, /^[^#\n]*insecure__use_host_env/m)
    assert.doesNotMatch(MANIFEST, /^[^#\n]*insecure__use_cmdline_argv/m)
    assert.doesNotMatch(MANIFEST, /^[^#\n]*passthrough/m)
    assert.match(MANIFEST, /^sgx\.remote_attestation = "dcap"$/m)
    assert.match(MANIFEST, /^\s*"file:\/app\/",$/m)
  })

  test('default: inside a Gramine SGX enclave, the manifest\'s loader.env gives the settings', async () => {
    const text = manifestSettings()
    const { measured, source } = await loadProductionSettings({ bakedPath: pointer(enclave()), dataDir: '/data', env: { [GRAMINE_SETTINGS_VARIABLE]: text } })
    assert.equal(source, 'gramine-manifest')
    assert.deepEqual(measured, parseMeasuredSettings(JSON.parse(text), 'x'))
    assert.equal(measured.quote.provider, 'sgx-gramine')
    assert.deepEqual(measured.seal, { provider: 'gramine' })
  })

  test('security: outside a Gramine DCAP enclave the variable is not read', async () => {
    const env = { [GRAMINE_SETTINGS_VARIABLE]: manifestSettings() }
    await assert.rejects(
      loadProductionSettings({ bakedPath: pointer(join(dir, 'no-attestation')), dataDir: '/data', env }),
      oneLine(/^gramine manifest: .*no-attestation\/attestation_type is missing \(not inside a Gramine SGX enclave\)$/),
    )
    await assert.rejects(loadProductionSettings({ bakedPath: pointer(enclave('epid')), dataDir: '/data', env }), oneLine(/attestation type is 'epid', DCAP is required/))
  })

  test('security: an image that bakes its settings refuses the variable (the host cannot add settings through the environment)', async () => {
    const { settings } = composeSettingsOf(APP_COMPOSE)
    await assert.rejects(
      loadProductionSettings({ bakedPath: write('baked-env.json', settings), dataDir: '/data', env: { [GRAMINE_SETTINGS_VARIABLE]: manifestSettings() } }),
      oneLine(/^environment variable KEYMANAGER_MEASURED_SETTINGS: this build takes its measured settings from the file baked into the image, never from the environment$/),
    )
    const { bakedPath } = await agentFor(await bootedTd(APP_COMPOSE), APP_COMPOSE)
    await assert.rejects(
      loadProductionSettings({ bakedPath, dataDir: '/data', env: { [GRAMINE_SETTINGS_VARIABLE]: manifestSettings() } }),
      oneLine(/takes its measured settings from the dstack-app-compose, never from the environment/),
    )
  })

  test('error: a missing, oversize or non-JSON variable, and devnet-only settings in it, are one line', async () => {
    const bakedPath = pointer(enclave())
    await assert.rejects(loadProductionSettings({ bakedPath, dataDir: '/data', env: {} }), oneLine(/KEYMANAGER_MEASURED_SETTINGS is not set \(loader\.env in the manifest\)/))
    await assert.rejects(loadProductionSettings({ bakedPath, dataDir: '/data', env: { [GRAMINE_SETTINGS_VARIABLE]: '{' } }), oneLine(/is not JSON/))
    await assert.rejects(loadProductionSettings({ bakedPath, dataDir: '/data', env: { [GRAMINE_SETTINGS_VARIABLE]: 'x'.repeat(70_000) } }), oneLine(/is over 65536 characters/))
    const devnet = JSON.stringify({ ...(JSON.parse(manifestSettings()) as object), quote: { provider: 'sgx-gramine', trustedRootCaFiles: ['/r.pem'] } })
    await assert.rejects(
      loadProductionSettings({ bakedPath, dataDir: '/data', env: { [GRAMINE_SETTINGS_VARIABLE]: devnet } }),
      oneLine(/Gramine manifest\): quote\.trustedRootCaFiles is a devnet-only setting/),
    )
  })
})
