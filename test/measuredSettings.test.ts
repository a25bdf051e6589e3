// Measured settings vs host settings (docs/protocol.md#measured-settings), through the entries as an operator runs them.
// The host controls the config file, the environment and the command line: each attack below is one of those trying
// to set what only the image may (an attacker's root CA, a sealing key directory, devnet mode, an appId map), and
// the production entry must refuse it at start with one line naming the key. Then the production image as
// sidecar.Dockerfile lays it out (the bundle of `npm run build` without src/devnet, no src/, no devnet entry,
// measured.json baked in) refuses the same, starts on a real anvil and shows the digest of its baked settings.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createPublicClient, createWalletClient, http, keccak256, type Address, type Hex } from 'viem'
import { foundry } from 'viem/chains'
import { buildProductionBundle, PRODUCTION_RUNTIME } from '../scripts/build.ts'
import { deployKeyManager } from '../src/chain/deploy.ts'
import { parseMeasuredSettings } from '../src/config.ts'
import { startAnvil, type Anvil } from '../src/devnet/anvil.ts'
import { devAccount } from '../src/devnet/network.ts'
import { settingsDigest } from '../src/keys/settingsDigest.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin/keymanager.js')
const dir = mkdtempSync(join(tmpdir(), 'km-measured-'))
const file = (name: string, content: unknown) => {
  const path = join(dir, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return path
}
writeFileSync(join(dir, 'host.token'), 'a-host-token-of-enough-length')

/** A host file as `keymanager init` writes it: operations only. */
const hostFile = (rpcUrl = 'http://127.0.0.1:9') => ({
  dataDir: 'data',
  // Nothing listens on the beacon port: a node that holds nothing starts without a verified view, and says so.
  chain: { rpcUrl, beaconUrl: 'http://127.0.0.1:9' },
  blobs: { kind: 'anvil', url: rpcUrl },
  pod: { host: '127.0.0.1', port: 0 },
  host: { host: '127.0.0.1', port: 0, tokenFile: 'host.token' },
})

/** Runs the production entry's `serve` and returns its exit code and stderr (it must refuse before doing anything). */
function serve(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KEYMANAGER_')))
  const result = spawnSync(process.execPath, [BIN, 'serve', ...args], { encoding: 'utf8', env: { ...clean, ...env }, timeout: 60_000 })
  return { status: result.status, stderr: result.stderr }
}

/** One stderr line, exit 1, no stack trace. */
function assertRefused(result: { status: number | null; stderr: string }, expected: RegExp) {
  assert.equal(result.status, 1, result.stderr)
  assert.match(result.stderr, /^keymanager: [^\n]*\n$/)
  assert.match(result.stderr, expected)
  assert.doesNotMatch(result.stderr, /\n\s+at /)
}

describe('the production entry refuses security settings from the host', () => {
  const attackerRoot = readFileSync(new URL('fixtures/pki/other-root-ca.pem', import.meta.url), 'utf8')
  const rootFile = file('attacker-root.pem', attackerRoot)

  test('security: an attacker root CA in the host config is refused at start', () => {
    const config = file('root.json', { ...hostFile(), quote: { provider: 'tdx', trustedRootCaFiles: [rootFile] } })
    assertRefused(serve(['--config', config]), /^keymanager: config .*root\.json sets quote\.provider, quote\.trustedRootCaFiles: measured settings, taken only from the measured settings baked into the image/)
  })

  test('security: a gramine seal directory from the host is refused at start', () => {
    const config = file('seal.json', { ...hostFile(), seal: { provider: 'gramine', attestationDir: join(dir, 'host-chosen-keys') } })
    assertRefused(serve(['--config', config]), /^keymanager: config .*seal\.json sets seal\.provider, seal\.attestationDir: measured settings/)
  })

  test('security: the devnet flag in production is refused, as a config key, an environment variable or a flag', () => {
    const config = file('devnet.json', { ...hostFile(), devnet: true })
    assertRefused(serve(['--config', config]), /^keymanager: config .*devnet\.json sets devnet: a measured setting/)
    const plain = file('plain.json', hostFile())
    assertRefused(
      serve(['--config', plain], { KEYMANAGER_KILL_AT: 'tx.fulfillOnboard.stored' }),
      /^keymanager: environment variable KEYMANAGER_KILL_AT: the production entry reads no KEYMANAGER_\* variable/,
    )
    assertRefused(serve(['--config', plain], { KEYMANAGER_DEVNET: '1' }), /environment variable KEYMANAGER_DEVNET/)
    assertRefused(serve(['--config', plain, '--devnet']), /^keymanager: --devnet is a devnet-only flag: devnet mode exists only in the devnet entry/)
    const measured = file('measured-devnet.json', { version: 1, devnet: true, chain: { chainId: 31337, registry: `0x${'11'.repeat(20)}` }, quote: { provider: 'tdx' }, seal: 'dev-file' })
    assertRefused(
      serve(['--config', plain, `--measured=${measured}`]),
      /^keymanager: --measured is a devnet-only flag: a production build reads its measured settings only from the file baked into the image/,
    )
  })

  test('security: an appId map from the host is refused at start', () => {
    const config = file('appids.json', { ...hostFile(), pods: { appIds: { wallet: `0x${'ab'.repeat(20)}` } } })
    assertRefused(serve(['--config', config]), /^keymanager: config .*appids\.json sets pods\.appIds\.wallet: a measured setting/)
  })

  test('error: a checkout with no measured settings baked in does not start', () => {
    assertRefused(serve(['--config', file('ok.json', hostFile())]), /^keymanager: no measured settings in this build: .*measured\.json is missing/)
  })
})

describe('the production image: no devnet code, measured settings baked in', () => {
  let anvil: Anvil
  let registry: Address
  let registryCodeHash: Hex
  const image = join(dir, 'image')

  const entry = join(image, 'dist/keymanager.js')
  let bundleInputs: string[] = []

  /** Lays out the image as sidecar.Dockerfile does: package.json, the production bundle, node_modules, measured.json. */
  function buildImage(measured: unknown) {
    for (const name of ['measured.json', 'node_modules']) rmSync(join(image, name), { recursive: true, force: true })
    symlinkSync(join(ROOT, 'node_modules'), join(image, 'node_modules'))
    writeFileSync(join(image, 'measured.json'), JSON.stringify(measured, null, 2))
  }

  before(async () => {
    mkdirSync(image, { recursive: true })
    cpSync(join(ROOT, 'package.json'), join(image, 'package.json'))
    bundleInputs = (await buildProductionBundle(ROOT, join(image, 'dist'))).inputs
    anvil = await startAnvil({ chainId: foundry.id })
    const chain = { ...foundry, rpcUrls: { default: { http: [anvil.rpcUrl] } } }
    const publicClient = createPublicClient({ chain, transport: http(anvil.rpcUrl, { timeout: 60_000 }), pollingInterval: 50 })
    const walletClient = createWalletClient({ account: devAccount(0), chain, transport: http(anvil.rpcUrl, { timeout: 60_000 }) })
    registry = await deployKeyManager({ walletClient, publicClient, owner: walletClient.account.address, measurementDelay: 0n })
    registryCodeHash = keccak256((await publicClient.getCode({ address: registry }))!)
  })
  after(async () => {
    await anvil?.stop()
  })

  test('default: the image runs the bundle with the runtime settings the footprint bench measures (scripts/build.ts PRODUCTION_RUNTIME)', () => {
    const dockerfile = readFileSync(join(ROOT, 'sidecar.Dockerfile'), 'utf8')
    const runtime = dockerfile.slice(dockerfile.indexOf(' AS runtime'))
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(runtime)
    assert.ok(entrypoint, 'the runtime stage has an exec-form ENTRYPOINT')
    assert.deepEqual(JSON.parse(entrypoint[1]!), ['node', ...PRODUCTION_RUNTIME.nodeFlags, '/app/dist/keymanager.js'])
    const env = runtime.split('\n').filter((line) => line.startsWith('ENV ')).flatMap((line) => line.slice(4).trim().split(/\s+/))
    for (const [name, value] of Object.entries(PRODUCTION_RUNTIME.env)) assert.ok(env.includes(`${name}=${value}`), `the runtime stage sets ${name}=${value}`)
  })

  test('security: no production module imports src/devnet', () => {
    const offenders: string[] = []
    const walk = (path: string) => {
      for (const entry of readdirSync(path, { withFileTypes: true })) {
        const full = join(path, entry.name)
        if (entry.isDirectory()) {
          if (full !== join(ROOT, 'src/devnet')) walk(full)
        } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
          const text = readFileSync(full, 'utf8')
          // Static imports only: the `devnet` verb's dynamic import says the devnet is not part of the build.
          if (/^import [^;]*from '(\.\.?\/)+devnet\//m.test(text)) offenders.push(relative(ROOT, full))
        }
      }
    }
    walk(join(ROOT, 'src'))
    assert.deepEqual(offenders, [])
  })

  test('security: the production bundle holds no devnet module and no test', () => {
    assert.ok(bundleInputs.includes('src/main.ts') && bundleInputs.includes('src/cli/serve.ts'), 'the bundle is the production entry')
    assert.deepEqual(bundleInputs.filter((input) => /^src\/devnet\/|^test\/|\.test\.ts$/.test(input)), [])
    // Function names are kept in the bundle (scripts/build.ts: esbuild's keepNames writes each as a string): the devnet
    // entry's simulated TEE, dev-file seal and settings loader, which the devnet entry bundled the same way holds, are
    // not in any file of it.
    const dist = join(image, 'dist')
    const text = readdirSync(dist).filter((name) => name.endsWith('.js')).map((name) => readFileSync(join(dist, name), 'utf8')).join('\n')
    for (const name of ['simulatedQuoteProvider', 'simulatedMeasurement', 'devFileSealProvider', 'loadDevnetMeasuredSettings'])
      assert.ok(!text.includes(`"${name}"`), `${name} is in the production bundle`)
  })

  test('security: the production bundle refuses KEYMANAGER_* variables and devnet-only flags', () => {
    buildImage({ version: 1, chain: { chainId: foundry.id, registry }, quote: { provider: 'tdx' }, seal: 'none' })
    const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KEYMANAGER_')))
    const run = (args: string[], env: Record<string, string> = {}) => {
      const result = spawnSync(process.execPath, [entry, 'serve', '--config', file('image-host.json', hostFile(anvil.rpcUrl)), ...args], {
        encoding: 'utf8',
        env: { ...clean, ...env },
      })
      return { status: result.status, stderr: result.stderr }
    }
    assertRefused(
      run([], { KEYMANAGER_KILL_AT: 'tx.fulfillOnboard.stored' }),
      /^keymanager: environment variable KEYMANAGER_KILL_AT: the production entry reads no KEYMANAGER_\* variable/,
    )
    assertRefused(run(['--devnet']), /^keymanager: --devnet is a devnet-only flag/)
    assertRefused(run([`--measured=${file('bundle-measured.json', {})}`]), /^keymanager: --measured is a devnet-only flag/)
  })

  test('security: devnet-only settings baked into a production image are refused too', () => {
    buildImage({ version: 1, devnet: true, chain: { chainId: foundry.id, registry }, quote: { provider: 'tdx' }, seal: 'none' })
    const result = spawnSync(process.execPath, [entry, 'serve', '--config', file('image-host.json', hostFile(anvil.rpcUrl))], {
      encoding: 'utf8',
    })
    assert.equal(result.status, 1)
    assert.match(result.stderr, /^keymanager: measured settings .*image\/measured\.json: devnet is a devnet-only setting: devnet mode exists only in the devnet entry[^\n]*\n$/)
    // The image bakes its settings: the one variable a Gramine manifest may set is refused, whatever it holds.
    const viaEnv = spawnSync(process.execPath, [entry, 'serve', '--config', file('image-host.json', hostFile(anvil.rpcUrl))], {
      encoding: 'utf8',
      env: { ...process.env, KEYMANAGER_MEASURED_SETTINGS: JSON.stringify({ version: 1, chain: { chainId: foundry.id, registry } }) },
    })
    assert.equal(viaEnv.status, 1)
    assert.equal(
      viaEnv.stderr,
      'keymanager: environment variable KEYMANAGER_MEASURED_SETTINGS: this build takes its measured settings from the file baked into the image, never from the environment\n',
    )
    const devnetVerb = spawnSync(process.execPath, [entry, 'devnet', '--once'], { encoding: 'utf8' })
    assert.equal(devnetVerb.status, 1)
    assert.equal(devnetVerb.stderr, 'keymanager: the devnet is not part of this build (production images leave out src/devnet)\n')
  })

  test('default: the image starts on its baked settings; /status and dstack Info show their digest', async () => {
    const measured = {
      version: 1,
      chain: { chainId: foundry.id, registry },
      quote: { provider: 'tdx', tsmDir: join(dir, 'no-tsm') },
      seal: 'none',
      pods: { names: { '127.0.0.1': 'app' } },
      chainView: {
        registryCodeHash,
        lightClient: { network: 'sepolia', checkpointRoot: `0x${'5e'.repeat(32)}` },
      },
    }
    buildImage(measured)
    const expected = settingsDigest(parseMeasuredSettings(measured, 'test'))
    const child = spawn(process.execPath, [entry, 'serve', '--config', file('image-host.json', hostFile(anvil.rpcUrl))], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      const logged: Record<string, unknown>[] = []
      const listening = await new Promise<{ podUrl: string; hostUrl: string }>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const entry = JSON.parse(line) as Record<string, unknown>
          logged.push(entry)
          if (entry.msg === 'listening') resolve(entry as { podUrl: string; hostUrl: string })
        })
        child.once('exit', (code) => reject(new Error(`image node exited ${code}`)))
      })
      assert.ok(logged.some((e) => e.msg === 'measured settings' && e.settingsDigest === expected && e.devnet === false))
      assert.ok(!logged.some((e) => /INSECURE|SIMULATED|NOT INTEL/.test(String(e.msg))), 'a production node logs nothing insecure')
      assert.ok(logged.some((e) => e.msg === 'chain view: light-client verification (decisions read finalized headers and storage proofs)'))
      assert.ok(logged.some((e) => e.reason === 'unverified_chain' && /no verified chain view yet/.test(String(e.msg))))
      const status = (await (await fetch(`${listening.hostUrl}/status`, { headers: { authorization: 'Bearer a-host-token-of-enough-length' } })).json()) as Record<string, unknown>
      assert.equal(status.settingsDigest, expected)
      assert.equal(status.state, 'uninitialized')
      const info = (await (await fetch(`${listening.podUrl}/Info`, { method: 'POST', body: '{}' })).json()) as { key_provider_info: string; app_name: string }
      assert.equal(info.app_name, 'app')
      assert.equal((JSON.parse(info.key_provider_info) as { settings_digest: string }).settings_digest, expected)
      // The header identity is devnet-only: a production pod listener ignores it.
      const named = (await (await fetch(`${listening.podUrl}/Info`, { method: 'POST', body: '{}', headers: { 'x-keymanager-pod': 'wallet' } })).json()) as {
        app_name: string
      }
      assert.equal(named.app_name, 'app')
    } finally {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    }
  })
})
