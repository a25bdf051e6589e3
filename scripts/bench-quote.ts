// Quote verification speed (docs/protocol.md#tee-providers): verifications per second with collateral already cached, for devnet
// quotes (collateral from a node's SQLite cache, as a helper reads it) and for the Intel TDX fixture at a pinned now
// (collateral file), each against its floor in alternating rounds: the six ECDSA P-256 verifications every
// verification makes (the quote, the QE report, the TCB info, the QE identity, two CRLs), a part of the subject's work,
// so the ratio cannot pass 1.0. @phala/dcap-qvl's own `verify` on the same quote is printed beside it, for comparison
// (src/tee/dcapQuote.ts says why it is not in the path); and the share of one onboarding's wall time (register → help
// → complete on a devnet) that the helper's verification takes.
// `scripts/bench.ts` calls `benchQuoteVerification`; run alone: node --import tsx scripts/bench-quote.ts
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QuoteVerifier as DcapQvlVerifier } from '@phala/dcap-qvl'
import { hostCall, runDevnet } from '../src/devnet/network.ts'
import { createCollateralCache } from '../src/store/collateralCache.ts'
import { openDatabase } from '../src/store/database.ts'
import { fileCollateral, parseCollateral, pccsCollateral, type Collateral } from '../src/tee/collateral.ts'
import { createDcapVerifier, INTEL_SGX_ROOT_CA_DER } from '../src/tee/dcap.ts'
import { serveDevnetPccs } from '../src/devnet/pccs.ts'
import { createDevnetPki } from '../src/devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../src/devnet/simulated.ts'
import type { QuoteVerifier } from '../src/tee/types.ts'
import { alternate, rateRatioCell, type Paired } from './bench/ratio.ts'

/**
 * The floor of one verification: six ECDSA P-256 verifications over messages of the sizes a verification signs-checks
 * (a TDX v4 quote's signed part, a QE report, a TCB info, a QE identity, two CRLs' to-be-signed parts).
 */
function signatureFloor(): () => void {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const signed = [632, 384, 3000, 1000, 400, 300].map((length) => {
    const data = randomBytes(length)
    return { data, signature: sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) }
  })
  return () => {
    for (const { data, signature } of signed) {
      if (!verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) throw new Error('floor: a signature failed')
    }
  }
}

/** Alternating rounds of verifier and its floor per ratio (scripts/bench/ratio.ts). */
const ROUNDS = 4
const FIXTURE_NOW = 1751328000 // the Intel fixture's collateral is valid around 2025-07-01

export type QuoteBench = {
  devnet: { perSecond: number; floorPerSecond: number; dcapQvlPerSecond: number }
  intelFixture: { perSecond: number; floorPerSecond: number; dcapQvlPerSecond: number }
  onboarding: { medianMs: number; verifyMs: number; share: number }
}

async function rate(seconds: number, verify: () => Promise<unknown> | unknown): Promise<number> {
  for (let i = 0; i < 20; i++) await verify() // warm-up: JIT, the collateral cache
  let n = 0
  const start = performance.now()
  const deadline = start + seconds * 1000
  while (performance.now() < deadline) {
    await verify()
    n++
  }
  return n / ((performance.now() - start) / 1000)
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(1))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export async function benchQuoteVerification(print: (line: string) => void, { seconds = 2, onboardings = 3 }: { seconds?: number; onboardings?: number } = {}): Promise<QuoteBench> {
  // Devnet quote, collateral through pccsCollateral from a SQLite cache filled by one fetch (a helper's steady state).
  const pki = createDevnetPki()
  const quote = await simulatedQuoteProvider({ platform: pki.mintPlatform(), measurement: simulatedMeasurement('bench') }).getQuote(new Uint8Array(64))
  const pccs = await serveDevnetPccs(pki)
  const db = openDatabase(':memory:')
  const floor = signatureFloor()
  let devnetRate: number
  let devnetBaseline: number
  let devnetAlone: number
  let devnetPaired: Paired
  let devnetVerifier: QuoteVerifier
  try {
    devnetVerifier = createDcapVerifier({ collateral: pccsCollateral({ url: pccs.url, cache: createCollateralCache(db) }), trustedRootCaDer: [pki.rootCaDer] })
    await devnetVerifier.verify(quote)
    await pccs.close() // from here on, every verification is served from the cache
    const collateral = pki.collateral()
    const now = Math.floor(Date.now() / 1000)
    const alone = new DcapQvlVerifier(Buffer.from(pki.rootCaDer))
    const verifier = devnetVerifier
    devnetPaired = await alternate(
      ROUNDS,
      () => rate(seconds / ROUNDS, floor),
      () => rate(seconds / ROUNDS, () => verifier.verify(quote)),
    )
    devnetAlone = await rate(seconds / 2, () => alone.verify(Buffer.from(quote), collateral, now))
    devnetRate = devnetPaired.subject
    devnetBaseline = devnetPaired.baseline
  } finally {
    await pccs.close()
  }

  // The Intel TDX fixture at its pinned now, collateral from the file (read once, kept).
  const fixture = (name: string) => new URL(`../test/fixtures/dcap/${name}`, import.meta.url)
  const intelQuote = new Uint8Array(readFileSync(fixture('tdx_quote')))
  const intelVerifier = createDcapVerifier({ collateral: fileCollateral(fixture('tdx_quote_collateral.json').pathname) })
  const intelCollateral: Collateral = parseCollateral(JSON.parse(readFileSync(fixture('tdx_quote_collateral.json'), 'utf8')))
  const intelAlone = new DcapQvlVerifier(Buffer.from(INTEL_SGX_ROOT_CA_DER))
  const intelPaired = await alternate(
    ROUNDS,
    () => rate(seconds / ROUNDS, floor),
    () => rate(seconds / ROUNDS, () => intelVerifier.verify(intelQuote, { now: FIXTURE_NOW })),
  )
  const intelAloneRate = await rate(seconds / 2, () => intelAlone.verify(Buffer.from(intelQuote), intelCollateral, FIXTURE_NOW))
  const intelRate = intelPaired.subject
  const intelBaseline = intelPaired.baseline

  // One onboarding's wall time on a devnet: register, help (where the helper verifies the quote), complete.
  const dir = mkdtempSync(join(tmpdir(), 'km-bench-quote-'))
  const devnet = await runDevnet({ nodes: 1, dir, print: () => {} })
  const walls: number[] = []
  try {
    const helper = devnet.info.nodes[0]!
    for (let i = 0; i < onboardings; i++) {
      const newcomer = await devnet.addNode()
      const start = performance.now()
      const reg = await hostCall<{ enckey: string }>(newcomer, 'POST', '/register')
      await hostCall(helper, 'POST', `/helper/${reg.enckey}`)
      await hostCall(newcomer, 'POST', `/register/${reg.enckey}`)
      walls.push(performance.now() - start)
    }
  } finally {
    await devnet.stop()
    rmSync(dir, { recursive: true, force: true })
    db.close()
  }
  const medianMs = median(walls)
  const verifyMs = 1000 / devnetRate

  print('')
  print('| quote verification, collateral cached | rate | ratio to baseline |')
  print('|---|---|---|')
  print(`| floor: six ECDSA P-256 verifications (baseline) | ${fmt(devnetBaseline)} /s | 1.00 |`)
  print(`| createDcapVerifier, devnet quote, collateral from the SQLite cache | ${fmt(devnetRate)} /s | ${rateRatioCell(devnetPaired.ratio, 'its floor')} |`)
  print(`| for comparison: @phala/dcap-qvl's verify alone, devnet quote | ${fmt(devnetAlone)} /s | |`)
  print(`| floor: six ECDSA P-256 verifications (baseline) | ${fmt(intelBaseline)} /s | 1.00 |`)
  print(`| createDcapVerifier, Intel TDX fixture, collateral file | ${fmt(intelRate)} /s | ${rateRatioCell(intelPaired.ratio, 'its floor')} |`)
  print(`| for comparison: @phala/dcap-qvl's verify alone, Intel TDX fixture | ${fmt(intelAloneRate)} /s | |`)
  print(`| one onboarding, register → help → complete (median of ${walls.length}) | ${medianMs.toFixed(0)} ms | verification is ${(verifyMs / medianMs).toPrecision(2)} of it |`)
  return {
    devnet: { perSecond: devnetRate, floorPerSecond: devnetBaseline, dcapQvlPerSecond: devnetAlone },
    intelFixture: { perSecond: intelRate, floorPerSecond: intelBaseline, dcapQvlPerSecond: intelAloneRate },
    onboarding: { medianMs, verifyMs, share: verifyMs / medianMs },
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchQuoteVerification((line) => process.stdout.write(line + '\n'))
}
