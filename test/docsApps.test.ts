// docs/apps.md runs as written: every `sh`, `ts` and `python` block is taken from the markdown (so the page and this
// test cannot drift) and run against a devnet as the pod `app`, and the Solidity block is compiled, deployed and called
// there. The one Python block that needs the dstack Python SDK (not installable here) is parsed, not run.
// The devnet is real (anvil, registry, sidecar processes, blobs); only the name `dstack-keymanager` is pointed at a
// node, as a compose network would: curl through a .curlrc `connect-to`, fetch through a preload that rewrites the
// origin, Python through a sitecustomize that answers the name's address lookup. The examples reach node 2 (onboarded from node 1), whose measured settings name 127.0.0.1 `app` and give
// `app` a dstack socket; the checks compare with node 1, so they also show that every node answers alike.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash, hkdfSync } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { X509Certificate } from 'node:crypto'
import { BaseError, ContractFunctionRevertedError, hexToBytes, type Address, type Hex } from 'viem'
import { createRegistryClient } from '../src/chain/registry.ts'
import { keyManagerAbi } from '../src/chain/keyManagerArtifact.ts'
import { runDevnet, type NodeProcess } from '../src/devnet/network.ts'
import { appIdForPod } from '../src/keys/derive.ts'
import { verifyGetKeyChain } from '../src/keys/verifyChain.ts'
import { fencedBlocks, type FencedBlock } from './markdown.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SDK_DIR = join(ROOT, 'test', 'dstack-sdk')
const SDK_VERSION = '0.5.8'
const POD = 'app'
const PAGE = 'docs/apps.md'

type Devnet = Awaited<ReturnType<typeof runDevnet>>
type Run = { code: number | null; stdout: string; stderr: string }

/** Installs test/dstack-sdk from its lockfile when it is missing (npm's cache makes this work offline). */
function ensureSdkInstalled(): void {
  const installed = join(SDK_DIR, 'node_modules', '@phala', 'dstack-sdk', 'package.json')
  if (existsSync(installed) && (JSON.parse(readFileSync(installed, 'utf8')) as { version: string }).version === SDK_VERSION) return
  const npm = spawnSync('npm', ['ci', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: SDK_DIR, encoding: 'utf8' })
  if (npm.status !== 0) throw new Error(`npm ci in test/dstack-sdk failed (${npm.status}): ${npm.stderr.trim().split('\n').at(-1)}`)
}

function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    child.once('error', reject)
    child.once('exit', (code) => resolvePromise({ code, stdout, stderr }))
  })
}

const RUNNABLE = ['sh', 'bash', 'ts', 'typescript', 'python']
/** Marks the one kind of block the suite cannot run: it needs the dstack Python SDK, which cannot be installed here. */
const NEEDS_PYTHON_SDK = /(?:^|\s)requires=dstack-sdk(?:\s|$)/

/** The examples of the page: `sh`, `ts` and `python` blocks, each named by `example=NAME` in its info string. */
function examples(markdown: string): Map<string, FencedBlock> {
  const named = new Map<string, FencedBlock>()
  for (const block of fencedBlocks(markdown)) {
    if (!RUNNABLE.includes(block.lang)) continue
    if (block.lang === 'python' && NEEDS_PYTHON_SDK.test(block.info)) continue
    const name = /(?:^|\s)example=([\w-]+)/.exec(block.info)?.[1]
    assert.ok(name, `${PAGE}:${block.line}: a ${block.lang} block without example=NAME would not be run`)
    assert.ok(!named.has(name), `${PAGE}:${block.line}: example=${name} twice`)
    named.set(name, block)
  }
  return named
}

function revertName(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) return undefined
  const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null
  return reverted?.data?.errorName
}

/** Compiles the page's Solidity block, importing the registry interface from this repository. */
function compileSolidityExample(source: string): { abi: unknown[]; bytecode: Hex } {
  const solc = createRequire(import.meta.url)('solc') as { compile(input: string, options: { import(path: string): { contents: string } | { error: string } }): string }
  const input = {
    language: 'Solidity',
    sources: { 'Example.sol': { content: source } },
    settings: { evmVersion: 'cancun', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  }
  const output = JSON.parse(
    solc.compile(JSON.stringify(input), {
      import: (path) =>
        path.startsWith('keymanager/') ? { contents: readFileSync(join(ROOT, path.slice('keymanager/'.length)), 'utf8') } : { error: `not found: ${path}` },
    }),
  ) as { errors?: { severity: string; formattedMessage: string }[]; contracts: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>> }
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  assert.deepEqual(errors.map((e) => e.formattedMessage), [])
  const [contract] = Object.values(output.contracts['Example.sol'] ?? {})
  assert.ok(contract, 'the Solidity example defines a contract')
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` }
}

describe('docs/apps.md examples against a devnet', () => {
  const markdown = readFileSync(join(ROOT, PAGE), 'utf8')
  const blocks = examples(markdown)
  let devnet: Devnet
  let node: NodeProcess
  let work: string
  let env: NodeJS.ProcessEnv
  let preload: string
  let python: string
  const socketDir = mkdtempSync(join(tmpdir(), 'km-apps-'))
  const socketPath = join(socketDir, 'dstack.sock')

  async function runExample(name: string): Promise<Run> {
    const block = blocks.get(name)
    assert.ok(block, `${PAGE} has no example=${name}`)
    if (block.lang === 'sh' || block.lang === 'bash') return run('bash', ['-euo', 'pipefail', '-c', block.code], { cwd: work, env })
    if (block.lang === 'python') return run(python, ['-c', block.code], { cwd: work, env })
    const file = join(work, `${name}.ts`)
    writeFileSync(file, block.code)
    return run(process.execPath, ['--import', 'tsx', '--import', preload, file], { cwd: work, env })
  }

  async function runJson(name: string): Promise<Record<string, any>> {
    const result = await runExample(name)
    assert.equal(result.code, 0, `example=${name} exited ${result.code}: ${result.stderr.trim()}\n${result.stdout.trim()}`)
    return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, any>
  }

  /** Node 1 answers the same pod through the devnet header, so the examples' answers (from node 2) can be compared. */
  async function nodeOne(path: string, init: RequestInit = {}, pod = POD) {
    const res = await fetch(devnet.info.nodes[0]!.podUrl + path, { ...init, headers: { 'x-keymanager-pod': pod } })
    assert.equal(res.status, 200, path)
    return (await res.json()) as Record<string, any>
  }

  before(async () => {
    ensureSdkInstalled()
    python = ['python3', 'python'].find((name) => spawnSync(name, ['--version']).status === 0) ?? ''
    assert.ok(python, 'the Python examples need python3 on PATH')
    devnet = await runDevnet({ nodes: 1, dir: mkdtempSync(join(tmpdir(), 'km-apps-devnet-')), print: () => {} })
    node = await devnet.addNode({
      configure: ({ measured }) => {
        measured.pods = { sockets: [{ path: socketPath, pod: POD }], names: { '127.0.0.1': POD }, appIds: {} }
      },
    })
    await devnet.onboard(node, devnet.nodes[0]!)
    // Inside test/dstack-sdk, so that `@phala/dstack-sdk` resolves from its own node_modules (it needs noble 1.x).
    work = mkdtempSync(join(SDK_DIR, '.docs-examples-'))
    const curlHome = join(work, '.curl')
    mkdirSync(curlHome)
    const port = new URL(node.podUrl).port
    writeFileSync(join(curlHome, '.curlrc'), `connect-to = "dstack-keymanager:80:127.0.0.1:${port}"\n`)
    preload = join(work, '.resolve-dstack-keymanager.mjs')
    writeFileSync(
      preload,
      [
        `const target = ${JSON.stringify(node.podUrl)}`,
        'const original = globalThis.fetch',
        "globalThis.fetch = (input, init) => original(typeof input === 'string' || input instanceof URL ? String(input).replace(/^http:\\/\\/dstack-keymanager(?=\\/|$)/, target) : input, init)",
      ].join('\n'),
    )
    // Python: the name resolves to node 2's pod listener, as a compose network's DNS would answer it.
    const pythonPath = join(work, '.python')
    mkdirSync(pythonPath)
    writeFileSync(
      join(pythonPath, 'sitecustomize.py'),
      [
        'import socket',
        '_getaddrinfo = socket.getaddrinfo',
        'def getaddrinfo(host, port, *args, **kwargs):',
        "    if host == 'dstack-keymanager' and int(port or 80) == 80:",
        `        host, port = '127.0.0.1', ${port}`,
        '    return _getaddrinfo(host, port, *args, **kwargs)',
        'socket.getaddrinfo = getaddrinfo',
      ].join('\n') + '\n',
    )
    const bin = join(work, '.bin')
    mkdirSync(bin)
    writeFileSync(join(bin, 'keymanager'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'bin', 'keymanager.js')}" "$@"\n`)
    chmodSync(join(bin, 'keymanager'), 0o755)
    env = {
      ...process.env,
      CURL_HOME: curlHome,
      PATH: `${bin}:${process.env.PATH}`,
      RPC_URL: devnet.info.rpcUrl,
      REGISTRY: devnet.registry,
      DSTACK_SIMULATOR_ENDPOINT: socketPath,
      PYTHONPATH: pythonPath,
    }
  })
  after(async () => {
    await devnet?.stop()
    if (work) rmSync(work, { recursive: true, force: true })
    rmSync(socketDir, { recursive: true, force: true })
  })

  test('default: every sh and ts block of the page is a named example this test runs', () => {
    const checked = ['sealkey', 'sealkey-ts', 'sealkey-py', 'attest', 'attest-ts', 'attest-py', 'getkey', 'getkey-py', 'dstack-sdk', 'verify-chain']
    checked.push('tls-sdk', 'verify-ca', 'sign-sdk', 'sign-py', 'emit-event', 'generations', 'migrate-ts')
    assert.deepEqual([...blocks.keys()].sort(), [...checked].sort())
  })

  test('default: the Python block that needs the dstack SDK is the only one not run, and it parses', async () => {
    const unrun = fencedBlocks(markdown).filter((b) => b.lang === 'python' && NEEDS_PYTHON_SDK.test(b.info))
    assert.equal(unrun.length, 1)
    assert.match(unrun[0]!.code, /from dstack_sdk import/)
    const file = join(work, 'sdk-example.py')
    writeFileSync(file, unrun[0]!.code)
    const parsed = await run(python, ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', file], { cwd: work, env })
    assert.equal(parsed.code, 0, parsed.stderr)
  })

  test('default: curl /sealkey answers the pod key every node derives', async () => {
    const answer = await runJson('sealkey')
    assert.match(answer.key, /^0x[0-9a-f]{64}$/)
    assert.deepEqual(answer, await nodeOne('/sealkey'))
  })

  test('default: the TypeScript sealkey example derives a key and opens what it sealed', async () => {
    assert.deepEqual(await runJson('sealkey-ts'), { generation: 1, opened: 'account balances' })
  })

  test('default: the Python sealkey example derives the key WebCrypto derives in the TypeScript example', async () => {
    const answer = await runJson('sealkey-py')
    const { key, generation } = await nodeOne('/sealkey')
    const sealkey = await crypto.subtle.importKey('raw', hexToBytes(key), 'HKDF', false, ['deriveBits'])
    const params = { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: new TextEncoder().encode('myapp/db/v1') }
    const dbKey = new Uint8Array(await crypto.subtle.deriveBits(params, sealkey, 256))
    assert.deepEqual(new Uint8Array(hkdfSync('sha256', hexToBytes(key), new Uint8Array(0), 'myapp/db/v1', 32)), dbKey)
    assert.deepEqual(answer, { generation, db_key_id: createHash('sha256').update(dbKey).digest('hex').slice(0, 16) })
  })

  test('default: curl /attest gives a signature that verifyAttestation and the Solidity example accept for pod app only', async () => {
    const attestation = await runJson('attest')
    assert.equal(attestation.hostname, POD)
    const registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    assert.equal(attestation.signer.toLowerCase(), (await registry.xPub()).toLowerCase())
    assert.equal(await registry.verifyAttestation(POD, attestation.appData, attestation.signature), true)
    assert.equal(await registry.verifyAttestation('other', attestation.appData, attestation.signature), false)

    const solidity = fencedBlocks(markdown).filter((b) => b.lang === 'solidity')
    assert.equal(solidity.length, 1, 'one Solidity example')
    const { abi, bytecode } = compileSolidityExample(solidity[0]!.code)
    const hash = await devnet.owner.deployContract({ abi, bytecode, args: [devnet.registry] } as never)
    const receipt = await devnet.publicClient.waitForTransactionReceipt({ hash })
    const address = receipt.contractAddress as Address
    const submit = (result: Hex, signature: Hex) =>
      devnet.publicClient.simulateContract({ account: devnet.owner.account, address, abi, functionName: 'submit', args: [result, signature] } as never)
    await submit(attestation.appData, attestation.signature)
    const sent = await devnet.owner.writeContract({ address, abi, functionName: 'submit', args: [attestation.appData, attestation.signature] } as never)
    assert.equal((await devnet.publicClient.waitForTransactionReceipt({ hash: sent })).status, 'success')
    assert.equal(await devnet.publicClient.readContract({ address, abi, functionName: 'accepted', args: [attestation.appData] } as never), true)
    // Another result under the same signature is refused.
    await assert.rejects(submit(`0x${'42'.repeat(32)}`, attestation.signature), (e) => revertName(e) === 'NotAttested')
    const fromNodeOne = (await nodeOne(`/attest/${attestation.appData}`)).signature as Hex
    assert.equal(fromNodeOne, attestation.signature, 'every node signs the same attestation (RFC 6979)')
  })

  test('default: the TypeScript attest example verifies on chain', async () => {
    const answer = await runJson('attest-ts')
    assert.equal(answer.hostname, POD)
    assert.equal(answer.valid, true)
  })

  test('default: curl /generations and /sealkey?generation=1 answer what every node holds', async () => {
    const result = await runExample('generations')
    assert.equal(result.code, 0, result.stderr)
    const [listed, older] = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, any>)
    assert.deepEqual(listed, await nodeOne('/generations'))
    assert.equal(listed!.current, 1)
    assert.deepEqual(older, await nodeOne('/sealkey?generation=1'))
    assert.deepEqual(older, await nodeOne('/sealkey'), 'generation 1 is the current one on this devnet')
  })

  test('default: the TypeScript migration example seals under the oldest held generation and ends on the current one', async () => {
    // A one-generation devnet: the record is current already; the rotation e2e (test/rotation.test.ts) serves older ones.
    assert.deepEqual(await runJson('migrate-ts'), { current: 1, from: 1, to: 1, opened: 'account balances' })
  })

  test('default: the Python attest example gets a signature verifyAttestation accepts', async () => {
    const attestation = await runJson('attest-py')
    assert.equal(attestation.hostname, POD)
    assert.equal(attestation.appData, `0x${createHash('sha256').update('result of job 44').digest('hex')}` as Hex)
    const registry = createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry })
    assert.equal(await registry.verifyAttestation(POD, attestation.appData, attestation.signature), true)
  })

  test('default: curl GetKey answers a key whose chain leads to the registry master key', async () => {
    const answer = await runJson('getkey')
    const xPub = (await createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry }).xPub()) as Address
    const verified = verifyGetKeyChain({
      appId: appIdForPod(POD),
      key: hexToBytes(`0x${answer.key}`),
      signatureChain: (answer.signature_chain as string[]).map((s) => hexToBytes(`0x${s}`)),
      purpose: 'signing',
      masterAddress: xPub,
    })
    assert.equal(verified.ok, true, JSON.stringify(verified.steps))
    const fromNodeOne = await nodeOne('/GetKey', { method: 'POST', body: JSON.stringify({ path: 'wallet/eth', purpose: 'signing' }) })
    assert.equal(fromNodeOne.key, answer.key)
  })

  test('default: the Python GetKey example gets the key and chain every node answers', async () => {
    const answer = await runJson('getkey-py')
    const fromNodeOne = await nodeOne('/GetKey', { method: 'POST', body: JSON.stringify({ path: 'wallet/eth', purpose: 'signing' }) })
    assert.deepEqual(answer, {
      key_id: createHash('sha256').update(Buffer.from(fromNodeOne.key, 'hex')).digest('hex').slice(0, 16),
      signature_chain: fromNodeOne.signature_chain,
    })
  })

  test('default: the dstack SDK example gets a key, its proof and a quote over the socket', async () => {
    const answer = await runJson('dstack-sdk')
    assert.equal(answer.app_id, Buffer.from(appIdForPod(POD)).toString('hex'))
    assert.equal(answer.purpose, 'signing')
    assert.ok(answer.quoteBytes > 600, `a quote of ${answer.quoteBytes} bytes`)
    const xPub = (await createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry }).xPub()) as Address
    const verified = verifyGetKeyChain({
      appId: appIdForPod(POD),
      publicKey: hexToBytes(`0x${answer.public_key}`),
      signatureChain: (answer.signature_chain as string[]).map((s) => hexToBytes(`0x${s}`)),
      purpose: 'signing',
      masterAddress: xPub,
    })
    assert.equal(verified.ok, true, JSON.stringify(verified.steps))
  })

  test('default: keymanager verify-chain accepts the proof the SDK example wrote, off chain and on chain', async () => {
    const result = await runExample('verify-chain')
    assert.equal(result.code, 0, result.stderr + result.stdout)
    assert.match(result.stdout, /on-chain/)
    // The same proof for another purpose is refused.
    const proof = JSON.parse(readFileSync(join(work, 'proof.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(work, 'proof.json'), JSON.stringify({ ...proof, purpose: 'other' }))
    assert.equal((await runExample('verify-chain')).code, 1)
  })

  test('default: the GetTlsKey example serves TLS to a client pinning the app CA, the CA every node issues under', async () => {
    assert.deepEqual(await runJson('tls-sdk'), { greeting: 'hello from the enclave', certificates: 2 })
    const written = readFileSync(join(work, 'chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
    assert.equal(written.length, 2)
    const fromNodeOne = await nodeOne('/GetTlsKey', { method: 'POST', body: JSON.stringify({ subject: 'api.internal', usage_server_auth: true }) })
    const ca = new X509Certificate(written[1]!)
    assert.ok(ca.ca)
    assert.ok(new X509Certificate(written[0]!).checkIssued(ca), 'the leaf is issued by the app CA')
    assert.equal(new X509Certificate(fromNodeOne.certificate_chain[1]).fingerprint256, ca.fingerprint256, 'node 1 issues under the same app CA')
  })

  test('default: keymanager verify-chain accepts the app CA of this app on this network, refuses another app\'s', async () => {
    const result = await runExample('verify-ca')
    assert.equal(result.code, 0, result.stderr + result.stdout)
    const other = await nodeOne('/GetTlsKey', { method: 'POST', body: JSON.stringify({ subject: 'api.internal' }) }, 'other')
    writeFileSync(join(work, 'chain.pem'), (other.certificate_chain as string[]).join('\n'))
    const refused = await runExample('verify-ca')
    assert.equal(refused.code, 1, refused.stderr + refused.stdout)
  })

  test('default: the Sign example signs SHA-256(data) with a key whose chain leads to the registry master key', async () => {
    const answer = await runJson('sign-sdk')
    assert.equal(answer.valid, true)
    const data = new TextEncoder().encode('ETH/USD 3141.59 at block 123')
    const digest = createHash('sha256').update(data).digest()
    assert.equal(secp256k1.verify(hexToBytes(`0x${answer.signature}`), digest, hexToBytes(`0x${answer.public_key}`), { prehash: false }), true)
    assert.equal(answer.signature_chain[0], answer.signature)
    const xPub = (await createRegistryClient({ publicClient: devnet.publicClient, address: devnet.registry }).xPub()) as Address
    const verified = verifyGetKeyChain({
      appId: appIdForPod(POD),
      publicKey: hexToBytes(`0x${answer.public_key}`),
      signatureChain: (answer.signature_chain as string[]).slice(1).map((s) => hexToBytes(`0x${s}`)),
      purpose: 'signing',
      masterAddress: xPub,
    })
    assert.equal(verified.ok, true, JSON.stringify(verified.steps))
  })

  test('default: the Python Sign example gets the signature every node makes (RFC 6979) and Verify accepts it', async () => {
    const answer = await runJson('sign-py')
    const data = Buffer.from('ETH/USD 3141.59 at block 123').toString('hex')
    const fromNodeOne = await nodeOne('/Sign', { method: 'POST', body: JSON.stringify({ algorithm: 'secp256k1', data }) })
    assert.deepEqual(answer, { valid: true, ...fromNodeOne })
  })

  // Last: the event moves node 2's RTMR3 (and its measurement id) for good.
  test('default: the runtime event example moves RTMR3 in the devnet node\'s next quote, which replays to it', async () => {
    const answer = await runJson('emit-event')
    assert.notEqual(answer.rtmr3After, answer.rtmr3Before)
    // TDX v4 quote: RTMR3 at bytes 520..568.
    assert.equal((answer.quote as string).slice(520 * 2, 568 * 2), answer.rtmr3After, 'replayRtmrs() gives the quote\'s RTMR3')
    assert.equal(answer.event, `${Buffer.from(appIdForPod(POD)).toString('hex')}:model-loaded`)
  })
})
