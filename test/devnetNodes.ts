// Test-only settings for devnet nodes (addNode's `configure` hook): rogue builds, other platforms, stale collateral,
// lying or dead blob sources. They exist to make nodes that a helper must refuse or that must recover.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Hex } from 'viem'
import type { DevnetNodeInfo, DevnetNodeSettings, DevnetNodeSetup } from '../src/devnet/network.ts'
import { saveDevnetPlatform } from '../src/devnet/pki.ts'
import type { TcbStatus } from '../src/tee/types.ts'

type Configure = (settings: DevnetNodeSettings, node: DevnetNodeSetup) => void

/** A build whose measurement the registry has not allowed (another simulated measurement label). */
export const rogueBuild =
  (label: string): Configure =>
  ({ measured }) => {
    if (measured.quote.provider === 'simulated') measured.quote.measurementLabel = label
  }

/** The node's platform: its TCB status under the devnet TCB info, and its FMSPC. */
export const platform =
  (options: { tcbStatus?: TcbStatus; fmspc?: Hex }): Configure =>
  ({ measured }, node) => {
    if (measured.quote.provider !== 'simulated') return
    Object.assign(measured.quote, saveDevnetPlatform(node.pki.mintPlatform(options), join(node.dir, 'platform')))
  }

/** Verify quotes with a collateral file issued at `issuedAt` (unix seconds), still valid for 30 days from now. */
export const collateralIssuedAt =
  (issuedAt: number): Configure =>
  ({ host }, node) => {
    const file = join(node.dir, 'collateral.json')
    const validFor = Math.floor(Date.now() / 1000) - issuedAt + 30 * 86_400
    writeFileSync(file, JSON.stringify(node.pki.collateral({ issuedAt, validFor }), null, 2) + '\n')
    host.collateral = { file }
  }

/** Blobs from `url` (a lying or dead source), then from these peers' public archives (no token). */
export const blobSources =
  (url: string, peers: DevnetNodeInfo[] = []): Configure =>
  ({ host }) => {
    host.blobs.url = url
    host.blobs.peers = peers.map((peer) => ({ url: peer.hostUrl }))
  }

/** The node reads the chain through these URLs (a lying RPC or beacon proxy, src/devnet/rpcProxy.ts). */
export const viaProxies =
  ({ rpc, beacon }: { rpc?: string; beacon?: string }): Configure =>
  ({ host }) => {
    if (rpc) host.chain.rpcUrl = rpc
    if (beacon) host.chain.beaconUrl = beacon
  }

/** A decision gives up waiting for its freshness mark after `seconds` (withholding tests). */
export const freshnessTimeout =
  (seconds: number): Configure =>
  ({ measured }) => {
    measured.chainView.freshness = { timeoutSeconds: seconds }
  }

/** Runs several configure hooks in order. */
export const all =
  (...hooks: Configure[]): Configure =>
  (settings, node) => {
    for (const hook of hooks) hook(settings, node)
  }
