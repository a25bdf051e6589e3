// The devnet's PCCS: serves the collateral of the devnet PKI (pki.ts) in Intel PCS API v4 shape, so nodes fetch
// collateral exactly as they would from a real PCCS (src/tee/collateral.ts `pccsCollateral`).
import { createServer, type Server } from 'node:http'
import type { Hex } from 'viem'
import type { Collateral } from '../tee/collateral.ts'
import { DEVNET_FMSPC, type DevnetPki } from './pki.ts'

const DAY = 86_400
const clock = () => Math.floor(Date.now() / 1000)

export type DevnetPccs = { url: string; close(): Promise<void> }

/**
 * A PCCS for the devnet (Intel PCS API v4 shape, as `pccsCollateral` reads it): TDX TCB info for any FMSPC, the TD QE
 * identity, the platform PCK CRL and the root CA CRL, all signed by this PKI. Collateral is minted on first request
 * per FMSPC and re-minted daily, so a long-running devnet never serves expired collateral.
 */
export async function serveDevnetPccs(pki: DevnetPki, { host = '127.0.0.1', port = 0 }: { host?: string; port?: number } = {}): Promise<DevnetPccs> {
  const minted = new Map<string, { at: number; collateral: Collateral }>()
  const collateralFor = (fmspc: Hex) => {
    const cached = minted.get(fmspc)
    if (cached && clock() - cached.at < DAY) return cached.collateral
    const collateral = pki.collateral({ fmspc })
    minted.set(fmspc, { at: clock(), collateral })
    return collateral
  }
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://pccs')
    const send = (body: string | Buffer, headers: Record<string, string> = {}) => res.writeHead(200, headers).end(body)
    const notFound = () => res.writeHead(404).end()
    const any = collateralFor(DEVNET_FMSPC)
    switch (url.pathname) {
      case '/sgx/certification/v4/pckcrl':
        if (url.searchParams.get('ca') !== 'platform') return notFound() // the devnet has no Processor CA
        return send(Buffer.from(any.pck_crl, 'hex'), { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(any.pck_crl_issuer_chain) })
      case '/sgx/certification/v4/rootcacrl':
        return send(any.root_ca_crl)
      case '/tdx/certification/v4/tcb': {
        const fmspc = url.searchParams.get('fmspc') ?? ''
        if (!/^[0-9a-fA-F]{12}$/.test(fmspc)) return notFound()
        const c = collateralFor(`0x${fmspc.toLowerCase()}`)
        return send(`{"tcbInfo":${c.tcb_info},"signature":"${c.tcb_info_signature}"}`, { 'TCB-Info-Issuer-Chain': encodeURIComponent(c.tcb_info_issuer_chain) })
      }
      case '/tdx/certification/v4/qe/identity':
        return send(`{"enclaveIdentity":${any.qe_identity},"signature":"${any.qe_identity_signature}"}`, {
          'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(any.qe_identity_issuer_chain),
        })
    }
    notFound()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const address = server.address() as { port: number }
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
