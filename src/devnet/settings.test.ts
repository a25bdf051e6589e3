import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseDevnetMeasuredSettings } from './settings.ts'

const base = {
  version: 1,
  devnet: true,
  chain: { chainId: 31337, registry: `0x${'11'.repeat(20)}` },
  quote: { provider: 'simulated', pckChainFile: 'platform/pck-chain.pem', pckKeyFile: 'platform/pck.key', measurementLabel: 'x' },
  seal: 'dev-file',
}
const lightClient = { registryCodeHash: `0x${'ab'.repeat(32)}`, lightClient: { network: 'mainnet', checkpointRoot: `0x${'cd'.repeat(32)}` } }

test('default: the devnet entry takes chain.verification light-client (the default) or trusted-rpc, each with its own chainView', () => {
  assert.equal(parseDevnetMeasuredSettings({ ...base, chainView: lightClient }, 'm').chain.verification, 'light-client')
  const trusted = parseDevnetMeasuredSettings({ ...base, chain: { ...base.chain, verification: 'trusted-rpc' }, chainView: {} }, 'm')
  assert.equal(trusted.chain.verification, 'trusted-rpc')
  assert.deepEqual(trusted.chainView, { freshness: { timeoutSeconds: 1800 } })
})

test('error: a chainView that does not fit chain.verification is refused, naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...base, chainView: {} }, /m: chainView\.lightClient: required: chain\.verification is light-client \(the default\)$/],
    [{ ...base, chain: { ...base.chain, verification: 'trusted-rpc' }, chainView: lightClient }, /m: chainView\.lightClient: not used: chain\.verification is trusted-rpc$/],
    [{ ...base, chain: { ...base.chain, verification: 'rpc' }, chainView: lightClient }, /m: chain\.verification: /],
    [{ ...base, chainView: { ...lightClient, verification: 'trusted-rpc' } }, /m: chainView: /],
  ]
  for (const [value, expected] of cases) assert.throws(() => parseDevnetMeasuredSettings(value, 'm'), expected, JSON.stringify(value))
})
