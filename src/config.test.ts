import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadBakedMeasuredSettings, loadHostSettings, parseMeasuredSettings } from './config.ts'

const dir = mkdtempSync(join(tmpdir(), 'km-config-'))
const measured = {
  version: 1,
  chain: { chainId: 1, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3' },
  quote: { provider: 'tdx' },
  seal: 'dstack',
  pods: { sockets: [{ path: '/var/run/keymanager/app/dstack.sock', pod: 'app' }] },
  chainView: {
    registryCodeHash: `0x${'AB'.repeat(32)}`,
    lightClient: { network: 'mainnet', checkpointRoot: `0x${'CD'.repeat(32)}` },
  },
}
const host = {
  dataDir: 'data',
  chain: { rpcUrl: 'http://127.0.0.1:8545' },
  blobs: { kind: 'beacon', url: 'http://127.0.0.1:5052' },
  pod: { port: 80 },
  host: { port: 8081, tokenFile: 'host.token' },
  collateral: { pccsUrl: 'https://pccs.example:8081/sgx/certification/v4' },
}

function write(value: unknown): string {
  const path = join(dir, `file-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value))
  return path
}

const oneLine = (expected: RegExp) => (error: Error) => {
  assert.match(error.message, expected)
  assert.doesNotMatch(error.message, /\n/)
  return true
}

test('default: measured settings load with defaults filled, seal shorthand expanded, hex lowercased', () => {
  const settings = loadBakedMeasuredSettings(write(measured))
  assert.deepEqual(settings, {
    version: 1,
    chain: { chainId: 1, registry: '0x5fbdb2315678afecb367f032d93f642f64180aa3', verification: 'light-client' },
    quote: { provider: 'tdx' },
    seal: { provider: 'dstack' },
    pods: { sockets: [{ path: '/var/run/keymanager/app/dstack.sock', pod: 'app' }], names: {}, appIds: {} },
    maxReferenceAge: 64,
    chainView: {
      registryCodeHash: `0x${'ab'.repeat(32)}`,
      lightClient: { network: 'mainnet', checkpointRoot: `0x${'cd'.repeat(32)}` },
      freshness: { timeoutSeconds: 1800 },
    },
  })
  for (const quote of [{ provider: 'dstack', socket: '/run/dstack.sock' }, { provider: 'sgx-gramine' }])
    assert.equal(parseMeasuredSettings({ ...measured, quote }, 'm').quote.provider, quote.provider)
})

test('default: a host file loads, relative paths resolved against the file, defaults filled', () => {
  const settings = loadHostSettings(write(host))
  assert.equal(settings.dataDir, join(dir, 'data'))
  assert.equal(settings.host.tokenFile, join(dir, 'host.token'))
  assert.equal(settings.host.host, '127.0.0.1')
  assert.equal(settings.chain.fromBlock, 0)
  assert.deepEqual(settings.blobs.peers, [])
  assert.equal(settings.auto, false)
  assert.equal(loadHostSettings(write({ ...host, collateral: { file: 'c.json' } })).collateral.file, join(dir, 'c.json'))
})

test('error: bad measured values are refused with the field named, in one line', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...measured, extra: 1 }, /Unrecognized key.*extra/],
    [{ ...measured, version: 2 }, /version/],
    [{ ...measured, chain: { ...measured.chain, registry: '0x1234' } }, /chain\.registry: chain\.registry: expected 0x and 40 hex digits/],
    [{ ...measured, chain: { ...measured.chain, chainId: 0 } }, /chain\.chainId/],
    [{ ...measured, chain: { ...measured.chain, rpcUrl: 'http://x' } }, /chain: Unrecognized key.*rpcUrl/],
    [{ ...measured, quote: { provider: 'sev' } }, /quote/],
    [{ ...measured, quote: { provider: 'tdx', tsmDir: 'relative/tsm' } }, /quote\.tsmDir: must be an absolute path/],
    [{ ...measured, seal: { provider: 'gramine', attestationDir: 'dev/attestation' } }, /seal\.attestationDir: must be an absolute path/],
    [{ ...measured, pods: { sockets: [{ path: '', pod: 'app' }] } }, /pods\.sockets\.0\.path/],
    [{ ...measured, pods: { sockets: [{ path: '/s', pod: 'App' }] } }, /pods\.sockets\.0\.pod: pod name must be written in its normal form/],
    [{ ...measured, pods: { names: { 'not-an-ip': 'app' } } }, /pods\.names/],
    [{ ...measured, pods: { appIds: { app: '0x12' } } }, /pods\.appIds\.app/],
    [{ ...measured, maxReferenceAge: 300 }, /maxReferenceAge/],
    // docs/protocol.md#verified-chain-view: a production build has a light-client trust root, pinned code, a bound.
    [{ ...measured, chainView: undefined }, /chainView: /],
    [{ ...measured, chainView: { ...measured.chainView, registryCodeHash: '0x12' } }, /chainView\.registryCodeHash: chainView\.registryCodeHash: expected 0x and 64 hex digits/],
    [{ ...measured, chainView: { ...measured.chainView, lightClient: undefined } }, /chainView\.lightClient/],
    [{ ...measured, chainView: { ...measured.chainView, lightClient: { network: 'mainnet', checkpointRoot: '0x00' } } }, /chainView\.lightClient\.checkpointRoot/],
    [{ ...measured, chainView: { ...measured.chainView, lightClient: { network: 'goerli', checkpointRoot: `0x${'cd'.repeat(32)}` } } }, /chainView\.lightClient\.network/],
    [{ ...measured, chainView: { ...measured.chainView, freshness: { timeoutSeconds: 0 } } }, /chainView\.freshness\.timeoutSeconds/],
    [{ ...measured, chain: { ...measured.chain, verification: 'rpc' } }, /chain\.verification/],
    [{ ...measured, chainView: { ...measured.chainView, verification: 'light-client' } }, /chainView: Unrecognized key: "verification"/],
  ]
  for (const [value, expected] of cases) assert.throws(() => parseMeasuredSettings(value, 'measured'), oneLine(expected), JSON.stringify(value))
  assert.throws(() => loadBakedMeasuredSettings(write('{not json')), oneLine(/^measured settings .*JSON/))
  assert.throws(() => loadBakedMeasuredSettings(join(dir, 'missing.json')), oneLine(/^no measured settings in this build: .*missing\.json is missing/))
  const dns = { resolver: '127.0.0.11', sourceRanges: ['10.210.0.0/24'] }
  for (const cacheSeconds of [-1, 301, 1.5, '5'])
    assert.throws(() => parseMeasuredSettings({ ...measured, pods: { ...measured.pods, dns: { ...dns, cacheSeconds } } }, 'measured'), oneLine(/pods\.dns\.cacheSeconds/), String(cacheSeconds))
  assert.equal(parseMeasuredSettings({ ...measured, pods: { ...measured.pods, dns } }, 'measured').pods.dns?.cacheSeconds, 0, 'the default: confirm on every call')
})

test('security: a production build refuses every devnet-only measured setting', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...measured, devnet: true }, /devnet is a devnet-only setting: devnet mode exists only in the devnet entry/],
    [{ ...measured, devnet: false }, /devnet is a devnet-only setting/],
    [{ ...measured, quote: { provider: 'simulated', pckChainFile: '/a', pckKeyFile: '/b', measurementLabel: 'x' } }, /quote\.provider is a devnet-only setting/],
    [{ ...measured, quote: { provider: 'tdx', trustedRootCaFiles: ['/attacker-root.pem'] } }, /quote\.trustedRootCaFiles is a devnet-only setting: production builds trust Intel's SGX Root CA only/],
    [{ ...measured, seal: 'dev-file' }, /seal is a devnet-only setting/],
    [{ ...measured, seal: { provider: 'dev-file' } }, /seal is a devnet-only setting/],
    // A chain view that believes the host's RPC, or a committee the host runs.
    [{ ...measured, chain: { ...measured.chain, verification: 'trusted-rpc' } }, /chain\.verification is a devnet-only setting: production builds verify the chain/],
    [
      { ...measured, chainView: { ...measured.chainView, lightClient: { ...measured.chainView.lightClient, optimisticConfirmations: 2 } } },
      /chainView\.lightClient\.optimisticConfirmations is a devnet-only setting: production builds decide on finalized headers only/,
    ],
  ]
  for (const [value, expected] of cases) assert.throws(() => loadBakedMeasuredSettings(write(value)), oneLine(expected), JSON.stringify(value))
})

test('error: bad host values are refused with the field named, in one line', () => {
  const cases: [unknown, RegExp][] = [
    ['{not json', /config .*: .*JSON/],
    [{ ...host, extra: 1 }, /Unrecognized key.*extra/],
    [{ ...host, chain: { rpcUrl: 'not a url' } }, /chain\.rpcUrl/],
    [{ ...host, chain: { ...host.chain, beaconUrl: 'ftp://beacon' } }, /chain\.beaconUrl/],
    [{ ...host, host: { port: 70000, tokenFile: 't' } }, /host\.port/],
    [{ ...host, blobs: { kind: 'ipfs', url: 'http://x' } }, /blobs\.kind/],
    [{ ...host, blobs: { kind: 'beacon', url: 'http://x', peers: [{ url: 'http://p', tokenFile: 'peer.token' }] } }, /blobs\.peers\.0: Unrecognized key.*tokenFile/],
    [{ ...host, collateral: { pccsUrl: 'https://p', file: 'c.json' } }, /collateral: give collateral\.pccsUrl or collateral\.file, not both/],
    [{ ...host, auto: { escrow: 'yes' } }, /auto\.escrow/],
    [{ ...host, auto: { escrowCheckMs: 50 } }, /auto\.escrowCheckMs/],
    [{ ...host, auto: { escrowCheckMs: 1.5e9 } }, /auto\.escrowCheckMs/],
    [{ ...host, watcher: { maxOpenPerRequester: 0 } }, /watcher\.maxOpenPerRequester/],
    [{ ...host, watcher: { maxOpenPerRequester: 2.5 } }, /watcher\.maxOpenPerRequester/],
    [{ ...host, watcher: { maxOpenRequests: -1 } }, /watcher\.maxOpenRequests/],
    [{ ...host, watcher: { maxOpenRequests: '20000' } }, /watcher\.maxOpenRequests/],
    [{ ...host, watcher: { maxOpen: 5 } }, /watcher: Unrecognized key.*maxOpen/],
  ]
  for (const [value, expected] of cases) assert.throws(() => loadHostSettings(write(value)), oneLine(expected), JSON.stringify(value))
  assert.throws(() => loadHostSettings(join(dir, 'missing.json')), /ENOENT/)
})

test('security: a host file that sets any measured setting is refused, naming the key', () => {
  const cases: [unknown, RegExp][] = [
    // An attacker's root CA: helpers would accept quotes the host made itself.
    [{ ...host, quote: { provider: 'tdx', trustedRootCaFiles: ['/tmp/attacker-root.pem'] } }, /sets quote\.provider, quote\.trustedRootCaFiles: measured settings/],
    // A sealing key of the host's choosing.
    [{ ...host, seal: { provider: 'gramine', attestationDir: '/tmp/host-keys' } }, /sets seal\.provider, seal\.attestationDir: measured settings/],
    [{ ...host, devnet: true }, /sets devnet: a measured setting/],
    // Any pod mapped to any appId.
    [{ ...host, pods: { appIds: { app: `0x${'ab'.repeat(20)}` } } }, /sets pods\.appIds\.app: a measured setting/],
    [{ ...host, pod: { port: 80, sockets: [{ path: '/s', pod: 'db' }] } }, /sets pod\.sockets: a measured setting/],
    [{ ...host, chain: { ...host.chain, registry: `0x${'11'.repeat(20)}` } }, /sets chain\.registry: a measured setting/],
    [{ ...host, chain: { ...host.chain, chainId: 1 } }, /sets chain\.chainId: a measured setting/],
    [{ ...host, maxReferenceAge: 256 }, /sets maxReferenceAge: a measured setting/],
    [{ ...host, chainView: { mode: 'trusted-rpc' } }, /sets chainView\.mode: a measured setting/],
    // The trust root of the light client: a host choosing it would choose the chain the node believes.
    [{ ...host, chainView: { lightClient: { checkpointRoot: `0x${'00'.repeat(32)}` } } }, /sets chainView\.lightClient\.checkpointRoot: a measured setting/],
  ]
  for (const [value, expected] of cases) {
    assert.throws(
      () => loadHostSettings(write(value)),
      oneLine(new RegExp(`^config .*\\.json ${expected.source}.*taken only from the measured settings baked into the image \\(docs/protocol\\.md#measured-settings\\)`)),
      JSON.stringify(value),
    )
  }
})
