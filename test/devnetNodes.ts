// Test-only settings for devnet nodes (addNode's `configure` hook): rogue builds, other platforms, stale collateral,
// lying or dead blob sources. They exist to make nodes that a helper must refuse or that must recover.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Hex } from 'viem'
import type { NodeConfig } from '../src/config.ts'
import type { DevnetNodeInfo, DevnetNodeSetup } from '../src/devnet/network.ts'
import { saveDevnetPlatform } from '../src/devnet/pki.ts'
import type { TcbStatus } from '../src/tee/types.ts'

type Configure = (config: NodeConfig, node: DevnetNodeSetup) => void

/** A build whose measurement the registry has not allowed (another simulated measurement label). */
export const rogueBuild =
  (label: string): Configure =>
  (config) => {
    if (config.quote.provider === 'simulated') config.quote.measurementLabel = label
  }

/** The node's platform: its TCB status under the devnet TCB info, and its FMSPC. */
export const platform =
  (options: { tcbStatus?: TcbStatus; fmspc?: Hex }): Configure =>
  (config, node) => {
    if (config.quote.provider !== 'simulated') return
    Object.assign(config.quote, saveDevnetPlatform(node.pki.mintPlatform(options), join(node.dir, 'platform')))
  }

/** Verify quotes with a collateral file issued at `issuedAt` (unix seconds), still valid for 30 days from now. */
export const collateralIssuedAt =
  (issuedAt: number): Configure =>
  (config, node) => {
    const file = join(node.dir, 'collateral.json')
    const validFor = Math.floor(Date.now() / 1000) - issuedAt + 30 * 86_400
    writeFileSync(file, JSON.stringify(node.pki.collateral({ issuedAt, validFor }), null, 2) + '\n')
    delete config.quote.pccsUrl
    config.quote.collateralFile = file
  }

/** Blobs from `url` (a lying or dead source), then from these peers' archives. */
export const blobSources =
  (url: string, peers: DevnetNodeInfo[] = []): Configure =>
  (config, node) => {
    config.blobs.url = url
    config.blobs.peers = peers.map((peer, p) => {
      writeFileSync(join(node.dir, `peer${p}.token`), peer.hostToken, { mode: 0o600 })
      return { url: peer.hostUrl, tokenFile: `peer${p}.token` }
    })
  }
