// Pod identity on the TCP pod listener (docs/protocol.md#pod-identity): forward-confirmed reverse DNS against a real DNS
// server on loopback (dns2, test/dnsServer.ts), through the pod app as a pod calls it.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { hexToBytes, type Hex } from 'viem'
import { startDnsServer } from '../../test/dnsServer.ts'
import { toHex0x } from '../keys/bytes.ts'
import { appIdForPod } from '../keys/derive.ts'
import { createMasterSecret } from '../secret/masterSecret.ts'
import { parseMeasuredSettings } from '../config.ts'
import { createPodApp } from './pod.ts'
import { checkResolverAddress, servicePodName, sourceRangeList, type DnsIdentityOptions } from './podIdentity.ts'

const secret = hexToBytes('0x0101010101010101010101010101010101010101010101010101010101010101')
const env = (address: string) => ({ incoming: { socket: { remoteAddress: address, remotePort: 5000, remoteFamily: address.includes(':') ? 'IPv6' : 'IPv4' } } })

function podApp(dns: DnsIdentityOptions, names: Record<string, string> = {}) {
  const master = createMasterSecret(secret)
  return createPodApp({
    node: { state: 'ready', generation: 1, master: () => master },
    chainId: 31337,
    registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
    settingsDigest: `0x${'d1'.repeat(32)}`,
    appIds: {},
    identity: { devnet: false, staticNames: names, dns },
    quoteProvider: { name: 'echo', teeType: 'tdx', getQuote: async (reportData: Uint8Array) => reportData },
    version: '0.0.0-test',
    logger: pino({ level: 'silent' }),
  })
}

async function sealkey(app: ReturnType<typeof createPodApp>, address: string) {
  const res = await app.request('/sealkey', {}, env(address))
  const body = (await res.json()) as { key?: Hex; appId?: Hex; error?: { code: string; message: string } }
  return { status: res.status, ...body }
}

test('default: the measured rule turns a confirmed name into the compose service', () => {
  const compose = { project: 'myapp', replicaIndex: true, domain: 'myapp_default' }
  assert.deepEqual(servicePodName('myapp-web-1.myapp_default.', compose), { pod: 'web' })
  assert.deepEqual(servicePodName('MYAPP_web_12.myapp_default', compose), { pod: 'web' })
  assert.deepEqual(servicePodName('myapp-web-2-1.myapp_default', compose), { pod: 'web-2' })
  assert.deepEqual(servicePodName('web-0.nsa', { replicaIndex: true }), { pod: 'web.nsa' })
  assert.deepEqual(servicePodName('web-0.web.nsa.svc.cluster.local', { replicaIndex: true, domain: 'svc.cluster.local' }), { pod: 'web.web.nsa' })
  assert.deepEqual(servicePodName('web-0.nsa', { replicaIndex: false }), { pod: 'web-0.nsa' })
  assert.deepEqual(servicePodName('other-web-1.myapp_default', compose), { refused: 'its name is not a container of project myapp' })
  assert.deepEqual(servicePodName('myapp-web-1.other_default', compose), { refused: 'its name is not in the domain myapp_default' })
  assert.deepEqual(servicePodName('myapp-.myapp_default', compose), { refused: 'its name gives no valid pod name' })
})

test('error: source ranges and resolver addresses are checked', () => {
  assert.ok(sourceRangeList(['10.0.0.0/8', 'fd00::/8']).check('10.1.2.3', 'ipv4'))
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0.0/8/1'])
    assert.throws(() => sourceRangeList([bad]), { name: 'RangeError', message: `source range ${bad} is not a CIDR range` })
  for (const good of ['127.0.0.11', '127.0.0.1:5353', '[::1]:53', '::1']) assert.equal(checkResolverAddress(good), good)
  for (const bad of ['dns.example', '127.0.0.1:0', '127.0.0.1:70000', '[::1']) assert.throws(() => checkResolverAddress(bad), RangeError)
})

describe('forward-confirmed reverse DNS against a DNS server on loopback', () => {
  let dns: Awaited<ReturnType<typeof startDnsServer>>
  let clock = 1_000_000
  // pods.dns as the measured settings fill it in when the image leaves cacheSeconds out.
  const measuredDns = () =>
    parseMeasuredSettings(
      {
        version: 1,
        chain: { chainId: 1, registry: '0x0000000000000000000000000000000000000001' },
        quote: { provider: 'tdx' },
        seal: 'none',
        pods: { dns: { resolver: dns.resolver, sourceRanges: ['10.0.0.0/16'], rule: { project: 'myapp', replicaIndex: true, domain: 'myapp_default' } } },
        chainView: {
          registryCodeHash: `0x${'00'.repeat(31)}01`,
          lightClient: { network: 'mainnet', checkpointRoot: `0x${'00'.repeat(31)}02` },
        },
      },
      'test',
    ).pods.dns!
  const options = (over: Partial<DnsIdentityOptions> = {}): DnsIdentityOptions => ({
    ...measuredDns(),
    timeoutMs: 1000,
    now: () => clock,
    ...over,
  })

  before(async () => {
    dns = await startDnsServer()
  })
  after(async () => {
    await dns?.close()
  })

  test('security: a PTR name without a matching A record gets 403 and no key', async () => {
    // The reverse zone says 10.0.0.66 is the wallet; the wallet's name resolves elsewhere (or nowhere).
    dns.records.ptr.set('10.0.0.66', ['myapp-wallet-1.myapp_default'])
    dns.records.a.set('myapp-wallet-1.myapp_default', ['10.0.0.20'])
    const app = podApp(options())
    const spoofed = await sealkey(app, '10.0.0.66')
    assert.equal(spoofed.status, 403)
    assert.equal(spoofed.key, undefined)
    assert.match(spoofed.error!.message, /^cannot tell which pod is calling from 10\.0\.0\.66: its reverse DNS name does not resolve back to it$/)
    dns.records.a.delete('myapp-wallet-1.myapp_default')
    assert.equal((await sealkey(app, '10.0.0.66')).status, 403)
    // No PTR at all.
    assert.match((await sealkey(app, '10.0.0.67')).error!.message, /no reverse DNS name/)
  })

  test('default: a replica pair of one service shares a key', async () => {
    dns.set('10.0.0.7', 'myapp-web-1.myapp_default')
    dns.set('10.0.0.8', 'myapp-web-2.myapp_default')
    const app = podApp(options())
    const one = await sealkey(app, '10.0.0.7')
    const two = await sealkey(app, '10.0.0.8')
    assert.equal(one.status, 200)
    assert.equal(one.key, two.key)
    assert.equal(one.appId, toHex0x(appIdForPod('web')))
  })

  test('security: the same service name in two namespaces gets two keys', async () => {
    dns.set('10.0.1.5', 'web-0.nsa')
    dns.set('10.0.2.5', 'web-0.nsb')
    dns.set('10.0.1.6', 'web-1.nsa')
    const app = podApp(options({ rule: { replicaIndex: true } }))
    const [a0, b0, a1] = [await sealkey(app, '10.0.1.5'), await sealkey(app, '10.0.2.5'), await sealkey(app, '10.0.1.6')]
    assert.equal(a0.appId, toHex0x(appIdForPod('web.nsa')))
    assert.equal(b0.appId, toHex0x(appIdForPod('web.nsb')))
    assert.notEqual(a0.key, b0.key)
    assert.equal(a0.key, a1.key, 'replicas within a namespace still share')
  })

  test('security: by default every call confirms the name again: the very next call after the A record moves is refused', async () => {
    assert.equal(measuredDns().cacheSeconds, 0, 'the measured default')
    dns.set('10.0.0.9', 'myapp-billing-1.myapp_default')
    const app = podApp(options())
    assert.equal((await sealkey(app, '10.0.0.9')).status, 200)
    const asked = dns.queries.length
    assert.equal((await sealkey(app, '10.0.0.9')).status, 200)
    assert.ok(dns.queries.length > asked, 'the second call asked DNS again, with the clock standing still')
    // The billing container is replaced; its name now points at another address, and 10.0.0.9 is someone else's.
    dns.records.a.set('myapp-billing-1.myapp_default', ['10.0.0.10'])
    const moved = await sealkey(app, '10.0.0.9')
    assert.equal(moved.status, 403)
    assert.equal(moved.key, undefined)
    // The new holder of the address, under its own name, gets its own service's key, never billing's.
    dns.set('10.0.0.9', 'myapp-reports-1.myapp_default')
    const renamed = await sealkey(app, '10.0.0.9')
    assert.equal(renamed.status, 200)
    assert.equal(renamed.appId, toHex0x(appIdForPod('reports')))
  })

  test('security: with an explicit cacheSeconds a confirmed name is reused for that window only, then dropped once it no longer resolves to the address', async () => {
    dns.set('10.0.0.19', 'myapp-billing-1.myapp_default')
    const app = podApp(options({ cacheSeconds: 5 }))
    const first = await sealkey(app, '10.0.0.19')
    assert.equal(first.status, 200)
    const asked = dns.queries.length
    // The A record moves inside the window: the documented risk, the previous name is still served until it ends.
    dns.records.a.set('myapp-billing-1.myapp_default', ['10.0.0.10'])
    clock += 4_000
    const inside = await sealkey(app, '10.0.0.19')
    assert.equal(inside.status, 200)
    assert.equal(inside.appId, first.appId)
    assert.equal(dns.queries.length, asked, 'within cacheSeconds the confirmed name is reused without asking DNS')
    clock += 2_000
    const after = await sealkey(app, '10.0.0.19')
    assert.equal(after.status, 403)
    assert.ok(dns.queries.length > asked, 'the name was confirmed again')
    clock += 10_000
    assert.equal((await sealkey(app, '10.0.0.19')).status, 403, 'and it stays refused: nothing negative is cached, nothing stale is served')
  })

  test('security: only allowed source ranges are looked up at all', async () => {
    dns.set('192.168.1.7', 'myapp-web-1.myapp_default')
    const app = podApp(options())
    const asked = dns.queries.length
    const outside = await sealkey(app, '192.168.1.7')
    assert.equal(outside.status, 403)
    assert.match(outside.error!.message, /not in the allowed source ranges/)
    assert.equal(dns.queries.length, asked)
  })

  test('security: names from another project or domain, and ambiguous names, are refused', async () => {
    dns.set('10.0.0.30', 'intruder-web-1.myapp_default')
    dns.set('10.0.0.31', 'myapp-web-1.elsewhere')
    dns.records.ptr.set('10.0.0.32', ['myapp-web-3.myapp_default', 'myapp-wallet-3.myapp_default'])
    dns.records.a.set('myapp-web-3.myapp_default', ['10.0.0.32'])
    dns.records.a.set('myapp-wallet-3.myapp_default', ['10.0.0.32'])
    const app = podApp(options())
    assert.match((await sealkey(app, '10.0.0.30')).error!.message, /not a container of project myapp/)
    assert.match((await sealkey(app, '10.0.0.31')).error!.message, /not in the domain myapp_default/)
    assert.match((await sealkey(app, '10.0.0.32')).error!.message, /several pods \(web, wallet\)/)
  })

  test('default: the static map wins, and an unreachable resolver refuses instead of guessing', async () => {
    const app = podApp(options({ resolver: '127.0.0.1:9', timeoutMs: 200 }), { '10.0.0.7': 'billing' })
    assert.equal((await sealkey(app, '10.0.0.7')).appId, toHex0x(appIdForPod('billing')))
    const down = await sealkey(app, '10.0.0.8')
    assert.equal(down.status, 403)
    assert.match(down.error!.message, /no reverse DNS name/)
  })
})
