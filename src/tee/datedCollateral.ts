// Collateral of a past time (docs/protocol.md#command-line `audit`): an audit judges an old quote with the collateral
// that was valid when the quote was judged, not with today's (TCB levels move, and today's TCB info is issued after the
// quote's time, so it cannot even be checked at that time). Intel's PCS serves only current collateral, so the
// collateral of each time comes from files the operator kept (`keymanager quote verify` and the nodes' PCCS caches
// write the dcap-qvl shape). The choice reads the files' dates unchecked; the verifier then checks the chosen
// collateral in full at the same time, so a wrong choice can only fail, never pass.
import { readFileSync } from 'node:fs'
import { QuoteVerificationError } from './types.ts'
import { collateralTime, parseCollateral, type Collateral, type CollateralRequest, type CollateralSource } from './collateral.ts'

type Dated = { collateral: Collateral; path: string; fmspc: string | undefined; from: number; until: number }

function window(collateral: Collateral, path: string): Dated {
  const body = (json: string, what: string) => {
    try {
      return JSON.parse(json) as Record<string, unknown>
    } catch {
      throw new QuoteVerificationError('collateral_invalid', `${path}: ${what} is not JSON`)
    }
  }
  const tcb = body(collateral.tcb_info, 'tcb_info')
  const qe = body(collateral.qe_identity, 'qe_identity')
  return {
    collateral,
    path,
    fmspc: typeof tcb.fmspc === 'string' ? tcb.fmspc.toLowerCase() : undefined,
    from: Math.max(collateralTime(tcb.issueDate, `${path} tcb_info issueDate`), collateralTime(qe.issueDate, `${path} qe_identity issueDate`)),
    until: Math.min(collateralTime(tcb.nextUpdate, `${path} tcb_info nextUpdate`), collateralTime(qe.nextUpdate, `${path} qe_identity nextUpdate`)),
  }
}

/** Reads collateral files (dcap-qvl shape) and returns, for each request, the one whose window covers its time and FMSPC. */
export function datedCollateral(paths: readonly string[]): CollateralSource {
  const dated = paths.map((path) => {
    let json: unknown
    try {
      json = JSON.parse(readFileSync(path, 'utf8'))
    } catch (error) {
      throw new QuoteVerificationError('collateral_unavailable', `cannot read collateral file ${path}: ${(error as Error).message}`)
    }
    return window(parseCollateral(json), path)
  })
  return {
    async get(request: CollateralRequest) {
      const fmspc = request.fmspc.replace(/^0x/, '').toLowerCase()
      const covering = dated.filter((d) => (d.fmspc === undefined || d.fmspc === fmspc) && d.from <= request.now && request.now <= d.until)
      // The latest issued among those valid then: what a node fetching at that time would have had.
      const best = covering.sort((a, b) => b.from - a.from)[0]
      if (!best)
        throw new QuoteVerificationError(
          'collateral_unavailable',
          `no collateral file covers ${new Date(request.now * 1000).toISOString()} for FMSPC ${fmspc} (files: ${dated.map((d) => d.path).join(', ')})`,
        )
      return best.collateral
    },
  }
}
