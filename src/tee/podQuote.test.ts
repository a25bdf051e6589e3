import assert from 'node:assert/strict'
import { test } from 'node:test'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { bootstrapReportData, PROTOCOL_MARKER, registerReportData, rotateReportData } from '../keys/reportData.ts'
import { POD_REPORT_DATA_REFUSED, podQuoteSource } from './podQuote.ts'

const provider = { getQuote: async (reportData: Uint8Array) => Uint8Array.from(reportData) }
const common = { chainId: 31337, registry: '0x5FbDB2315678afecb367f032d93F642f64180aa3', settingsDigest: new Uint8Array(32).fill(9) } as const
const key = () => secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), false).subarray(1)

test('default: everything that is not protocol-shaped is quoted as given, dstack 32-byte data included', async () => {
  const sha256Style = new Uint8Array(64)
  sha256Style.set(new Uint8Array(32).fill(0xab))
  for (const data of [sha256Style, new Uint8Array(64), new Uint8Array(64).fill(7), Uint8Array.from({ length: 64 }, (_, i) => i)])
    assert.deepEqual(await podQuoteSource(provider)(data), data)
  // One byte off the marker is not the marker.
  const near = new Uint8Array(64)
  near.set(PROTOCOL_MARKER, 32)
  near[63]! ^= 1
  assert.deepEqual(await podQuoteSource(provider)(near), near)
})

test('security: a pod cannot get a quote over bootstrap, register or rotate report data for its own key', async () => {
  const forged = [
    registerReportData({ ...common, pubkey64: key(), refBlockNumber: 10n, refBlockHash: new Uint8Array(32).fill(1) }),
    bootstrapReportData({ ...common, masterPubkey64: key() }),
    rotateReportData({ ...common, generation: 2n, masterPubkey64: key() }),
  ]
  let quoted = 0
  const counting = { getQuote: async (data: Uint8Array) => (quoted++, data) }
  for (const data of forged) await assert.rejects(podQuoteSource(counting)(data), { code: 'forbidden', message: POD_REPORT_DATA_REFUSED })
  // Any first half with the marker behind it.
  const anyHalf = new Uint8Array(64)
  anyHalf.set(PROTOCOL_MARKER, 32)
  await assert.rejects(podQuoteSource(counting)(anyHalf), { code: 'forbidden' })
  assert.equal(quoted, 0, 'the quote provider was never asked')
})

test('error: report data that is not 64 bytes', async () => {
  await assert.rejects(podQuoteSource(provider)(new Uint8Array(32)), RangeError)
})
