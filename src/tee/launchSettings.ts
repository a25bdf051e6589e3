// Measured settings from a platform's measured launch config (docs/protocol.md#measured-settings, "launch config"),
// for images that bake a pointer (`{"version": 1, "source": …}`) instead of the settings themselves, so that one
// public image serves many deployments while each deployment's settings stay part of its measurement.
//
// - dstack: the settings are the `x-keymanager.settings` entry of the compose file inside the CVM's app-compose.json.
//   dstack's boot extends RTMR3 with `compose-hash` = SHA-256(app-compose.json) before `system-ready`, so the compose
//   file is part of the measurement the registry allows. The sidecar does not take the agent's word for it: it asks
//   the agent for a quote over a fresh nonce with its event log, replays the runtime events to the quote's RTMR3, takes
//   the `compose-hash` boot event (one emitted by an app after `system-ready` cannot stand in for it), and checks that
//   the app-compose.json the agent's Info returns hashes to it. The same compose file is then checked at start as
//   `keymanager compose-check` checks it (src/cli/composeCheck.ts): a deployment in which another service reaches the
//   agent socket, configfs-tsm, /dev/attestation or the sidecar's data does not start.
// - Gramine (SGX): the settings are the JSON of `KEYMANAGER_MEASURED_SETTINGS`, which the manifest sets with
//   `loader.env` (measured into MRENCLAVE). Gramine exposes no manifest to the enclave and cannot tell a manifest value
//   from a host one, so the variable is read only when the baked pointer says so and only inside a Gramine SGX enclave
//   with DCAP attestation; a manifest that lets the host set it (`loader.insecure__use_host_env`, or
//   `loader.env.KEYMANAGER_MEASURED_SETTINGS = { passthrough = true }`) must never be allowed (docs/protocol.md#platforms).
// Everything read here is bounded and checked; every refusal is one line.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import { checkCompose, DEFAULT_SIDECAR, parseCompose, type Finding } from '../cli/composeCheck.ts'
import {
  MEASURED_SETTINGS_FILE,
  parseLaunchSource,
  parseMeasuredSettings,
  readBakedMeasuredFile,
  type LaunchSource,
  type MeasuredSettings,
} from '../config.ts'
import { KeymanagerError } from '../errors.ts'
import { bootRuntimeEventPayload, type TdxEvent } from './eventLog.ts'
import { dstackQuoteProvider, MAX_APP_COMPOSE_CHARS } from './hardwareQuotes.ts'
import { replayRuntimeRtmr3, tdRegistersOf } from './tdReport.ts'
import type { QuoteProvider } from './types.ts'

/** The top-level compose extension that carries the sidecar's measured settings. */
export const COMPOSE_SETTINGS_KEY = 'x-keymanager'
/** The variable a Gramine manifest sets to the measured settings' JSON (`loader.env`). */
export const GRAMINE_SETTINGS_VARIABLE = 'KEYMANAGER_MEASURED_SETTINGS'
/** Largest settings JSON taken from the Gramine manifest's variable. */
export const MAX_GRAMINE_SETTINGS_CHARS = 64 * 1024

/** A launch config that does not give measured settings this node can trust (the node does not start). */
export class LaunchSettingsError extends KeymanagerError {
  override name = 'LaunchSettingsError'
  constructor(message: string) {
    super('unprocessable', message)
  }
}

/** What the dstack source needs of the guest agent (the `dstack` quote provider has both). */
export type DstackEvidenceSource = Required<Pick<QuoteProvider, 'quoteWithEvidence' | 'platformInfo'>>

/**
 * The app-compose.json this CVM booted with, as text, after checking it against the measured `compose-hash` event:
 * the event log replays to the RTMR3 of a fresh quote, and SHA-256 of the text is the event's payload.
 */
export async function measuredAppCompose(agent: DstackEvidenceSource): Promise<string> {
  // A fresh nonce: the log must belong to a quote made now, not to one replayed from earlier.
  const reportData = new Uint8Array(64)
  reportData.set(randomBytes(32))
  const { quote, eventLog } = await agent.quoteWithEvidence(reportData)
  let registers: ReturnType<typeof tdRegistersOf>
  try {
    registers = tdRegistersOf(quote)
  } catch (error) {
    throw new LaunchSettingsError(`dstack app-compose: the agent's quote does not parse (${(error as Error).message})`)
  }
  if (!registers) throw new LaunchSettingsError('dstack app-compose: the agent answered with a quote that is not a TDX quote')
  if (bytesToHex(replayRuntimeRtmr3(eventLog)) !== bytesToHex(registers.rtMr3))
    throw new LaunchSettingsError("dstack app-compose: the agent's event log does not replay to the quote's RTMR3")
  const measured = bootRuntimeEventPayload(eventLog as TdxEvent[], 'compose-hash')
  if (!measured) throw new LaunchSettingsError('dstack app-compose: no compose-hash event before system-ready in the measured event log (not a dstack CVM?)')
  if (measured.length !== 32) throw new LaunchSettingsError(`dstack app-compose: the compose-hash event holds ${measured.length} bytes, expected a SHA-256`)
  const { appCompose } = await agent.platformInfo()
  if (appCompose === '') throw new LaunchSettingsError(`dstack app-compose: the agent's Info gave no app_compose (or one over ${MAX_APP_COMPOSE_CHARS} characters)`)
  const hash = sha256(utf8ToBytes(appCompose))
  if (bytesToHex(hash) !== bytesToHex(measured))
    throw new LaunchSettingsError(
      `dstack app-compose: the app-compose.json the agent gave hashes to ${bytesToHex(hash)}, the measured compose-hash is ${bytesToHex(measured)}`,
    )
  return appCompose
}

export type ComposeSettings = {
  /** The raw settings object (parse it with parseMeasuredSettings). */
  settings: unknown
  /** The sidecar's compose service (`x-keymanager.service`, default `dstack-keymanager`). */
  service: string
  /** The parsed compose file, for the start-up compose check. */
  compose: Record<string, unknown>
}

/** The `x-keymanager` entry of an app-compose.json's compose file: `{service?, settings}`. */
export function composeSettingsOf(appComposeText: string): ComposeSettings {
  let appCompose: unknown
  try {
    appCompose = JSON.parse(appComposeText)
  } catch {
    throw new LaunchSettingsError('dstack app-compose: app-compose.json is not JSON')
  }
  const obj = isObject(appCompose) ? appCompose : {}
  if (obj.runner !== 'docker-compose' || typeof obj.docker_compose_file !== 'string')
    throw new LaunchSettingsError('dstack app-compose: app-compose.json has no docker-compose runner with a docker_compose_file')
  let compose: Record<string, unknown>
  try {
    compose = parseCompose(obj.docker_compose_file)
  } catch (error) {
    throw new LaunchSettingsError(`dstack app-compose: docker_compose_file: ${(error as Error).message}`)
  }
  const entry = compose[COMPOSE_SETTINGS_KEY]
  if (!isObject(entry) || !Object.hasOwn(entry, 'settings'))
    throw new LaunchSettingsError(`dstack app-compose: the compose file has no ${COMPOSE_SETTINGS_KEY}.settings (the sidecar's measured settings)`)
  const extra = Object.keys(entry).filter((key) => key !== 'settings' && key !== 'service')
  if (extra.length > 0) throw new LaunchSettingsError(`dstack app-compose: ${COMPOSE_SETTINGS_KEY} has unknown keys ${extra.join(', ')} (service, settings)`)
  if (entry.service !== undefined && (typeof entry.service !== 'string' || entry.service === ''))
    throw new LaunchSettingsError(`dstack app-compose: ${COMPOSE_SETTINGS_KEY}.service must be a service name`)
  return { settings: entry.settings, service: (entry.service as string | undefined) ?? DEFAULT_SIDECAR, compose }
}

/** The settings a Gramine manifest set, read only inside a Gramine SGX enclave with DCAP attestation. */
export function gramineManifestSettings(env: Record<string, string | undefined>, attestationDir = '/dev/attestation'): unknown {
  let type: string
  try {
    type = readFileSync(join(attestationDir, 'attestation_type'), 'utf8').trim()
  } catch {
    throw new LaunchSettingsError(`gramine manifest: ${attestationDir}/attestation_type is missing (not inside a Gramine SGX enclave)`)
  }
  if (type !== 'dcap') throw new LaunchSettingsError(`gramine manifest: attestation type is '${type}', DCAP is required`)
  const text = env[GRAMINE_SETTINGS_VARIABLE]
  if (text === undefined || text === '') throw new LaunchSettingsError(`gramine manifest: ${GRAMINE_SETTINGS_VARIABLE} is not set (loader.env in the manifest)`)
  if (text.length > MAX_GRAMINE_SETTINGS_CHARS) throw new LaunchSettingsError(`gramine manifest: ${GRAMINE_SETTINGS_VARIABLE} is over ${MAX_GRAMINE_SETTINGS_CHARS} characters`)
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new LaunchSettingsError(`gramine manifest: ${GRAMINE_SETTINGS_VARIABLE} is not JSON (${(error as Error).message})`)
  }
}

export type ProductionSettings = {
  measured: MeasuredSettings
  /** Where they came from: the image itself, or the launch config it names. */
  source: 'image' | LaunchSource['source']
}

/**
 * The production entry's measured settings: the baked file, or the launch config it names. `dataDir` (a host setting)
 * is where the sidecar keeps its data, for the start-up compose check on dstack. The environment is read for
 * `KEYMANAGER_MEASURED_SETTINGS` only, and that variable is refused unless the image names the Gramine manifest.
 */
export async function loadProductionSettings(options: {
  dataDir: string
  env: Record<string, string | undefined>
  bakedPath?: string
  /** Tests: the agent to ask instead of the socket the pointer names. */
  dstackAgent?: DstackEvidenceSource
}): Promise<ProductionSettings> {
  const bakedPath = options.bakedPath ?? MEASURED_SETTINGS_FILE
  const raw = readBakedMeasuredFile(bakedPath)
  const pointer = parseLaunchSource(raw, `measured settings ${bakedPath}`)
  if (pointer?.source !== 'gramine-manifest' && options.env[GRAMINE_SETTINGS_VARIABLE] !== undefined)
    throw new Error(
      `environment variable ${GRAMINE_SETTINGS_VARIABLE}: this build takes its measured settings from ${pointer ? `the ${pointer.source}` : 'the file baked into the image'}, never from the environment`,
    )
  if (!pointer) return { measured: parseMeasuredSettings(raw, `measured settings ${bakedPath}`), source: 'image' }
  switch (pointer.source) {
    case 'dstack-app-compose': {
      const agent = options.dstackAgent ?? (dstackQuoteProvider({ socketPath: pointer.socket }) as DstackEvidenceSource)
      const { settings, service, compose } = composeSettingsOf(await measuredAppCompose(agent))
      const measured = parseMeasuredSettings(settings, `measured settings (${COMPOSE_SETTINGS_KEY} of the dstack app-compose)`)
      let findings: Finding[]
      try {
        findings = checkCompose(compose, { sidecar: service, dataDir: options.dataDir, baseDir: '/' })
      } catch (error) {
        throw new LaunchSettingsError(`dstack app-compose: ${(error as Error).message}`)
      }
      if (findings.length > 0) {
        const f = findings[0]!
        throw new LaunchSettingsError(
          `dstack app-compose: the measured compose file fails compose-check (${findings.length} finding(s)); first: service ${f.service}: ${f.where} ${f.problem}`,
        )
      }
      return { measured, source: pointer.source }
    }
    case 'gramine-manifest':
      return {
        measured: parseMeasuredSettings(gramineManifestSettings(options.env, pointer.attestationDir), `measured settings (${GRAMINE_SETTINGS_VARIABLE} of the Gramine manifest)`),
        source: pointer.source,
      }
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
