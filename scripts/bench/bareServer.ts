// Baselines for `npm run bench`, each served exactly as the sidecar serves its pod listener (@hono/node-server, its
// own process): `/bare` a bare hono route (the baseline of /sealkey), `/bare-attest/:appdata` the same EIP-712 digest
// and RFC 6979 signature /attest makes, with nothing else (the baseline of /attest).
import { serve } from '@hono/node-server'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { Hono } from 'hono'
import { bytesToHex, hexToBytes } from 'viem'
import { signDigest } from '../../src/keys/signature.ts'
import { attestationDigest } from '../../src/keys/typedData.ts'

const key = secp256k1.utils.randomSecretKey()
const app = new Hono()
app.get('/bare', (c) => c.json({ ok: true }))
app.get('/bare-attest/:appdata', (c) => {
  const appData = hexToBytes(`0x${c.req.param('appdata')}`)
  const digest = attestationDigest({ chainId: 31337, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3', hostname: 'bench', appData })
  return c.json({ signature: bytesToHex(signDigest(digest, key)) })
})
serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => process.stdout.write(`${JSON.stringify({ port: info.port })}\n`))
