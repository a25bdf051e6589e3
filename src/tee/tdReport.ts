// What dstack's `Info` and RA-TLS app info derive from a TDX quote and its event log (docs/protocol.md#dstack-api),
// as Dstack-TEE/dstack v0.5.8 dstack-attest `decode_app_info`/`decode_mr_tdx` computes it:
// - mr_system = SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ mr_key_provider), mr_key_provider = SHA-256(key provider
//   info) or 32 zero bytes without one;
// - mr_aggregated = SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3 replayed from the runtime events
//   [‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG, only when one of them is not all zeros]);
// - compose_hash / instance_id / os_image_hash: payloads of the boot runtime events `compose-hash` / `instance-id` /
//   `os-image-hash` (before `system-ready`). Not the `os_image_hash` of the VM config JSON: a dstack 0.6.0 CVM gives
//   two different values there (test/vectors/dstack-agent-getquote.json), and dstack's Info answers the event's.
// A value the TEE does not give is empty, never invented.
import { sha256 } from '@noble/hashes/sha2.js'
import { concatBytes, hexToBytes } from '@noble/hashes/utils.js'
import { bootRuntimeEventPayload, extendRtmr, RUNTIME_IMR, RTMR_BYTES, type TdxEvent } from './eventLog.ts'
import { measurementOf } from './measurement.ts'

export type TdRegisters = {
  mrTd: Uint8Array
  rtMr0: Uint8Array
  rtMr1: Uint8Array
  rtMr2: Uint8Array
  rtMr3: Uint8Array
  mrConfigId: Uint8Array
  mrOwner: Uint8Array
  mrOwnerConfig: Uint8Array
}

/** TD report offsets (from the start of the body) of MROWNER and MROWNERCONFIG; the rest comes from measurementOf. */
const MR_OWNER = 232
const MR_OWNER_CONFIG = 280

/** The TD registers of a TDX quote, or undefined for an SGX quote. Throws on a malformed quote. */
export function tdRegistersOf(quote: Uint8Array): TdRegisters | undefined {
  const parsed = measurementOf(quote)
  if (parsed.teeType !== 'tdx') return undefined
  const field = (name: string) => hexToBytes(parsed.measurements[name]!.slice(2))
  const bodyStart = parsed.version === 5 ? 54 : 48
  return {
    mrTd: field('mrTd'),
    rtMr0: field('rtMr0'),
    rtMr1: field('rtMr1'),
    rtMr2: field('rtMr2'),
    rtMr3: field('rtMr3'),
    mrConfigId: field('mrConfigId'),
    mrOwner: quote.slice(bodyStart + MR_OWNER, bodyStart + MR_OWNER + 48),
    mrOwnerConfig: quote.slice(bodyStart + MR_OWNER_CONFIG, bodyStart + MR_OWNER_CONFIG + 48),
  }
}

/** RTMR3 replayed from the runtime events of a log (dstack replays RTMR3 from its runtime events only). */
export function replayRuntimeRtmr3(events: readonly TdxEvent[]): Uint8Array {
  let mr: Uint8Array = new Uint8Array(RTMR_BYTES)
  for (const e of events) if (e.imr === RUNTIME_IMR) mr = extendRtmr(mr, hexToBytes(e.digest))
  return mr
}

export function mrSystem(r: TdRegisters, keyProviderInfo: Uint8Array): Uint8Array {
  const mrKeyProvider = keyProviderInfo.length === 0 ? new Uint8Array(32) : sha256(keyProviderInfo)
  return sha256(concatBytes(r.mrTd, r.rtMr0, r.rtMr1, r.rtMr2, mrKeyProvider))
}

export function mrAggregated(r: TdRegisters, events: readonly TdxEvent[]): Uint8Array {
  const parts = [r.mrTd, r.rtMr0, r.rtMr1, r.rtMr2, replayRuntimeRtmr3(events)]
  if ([r.mrConfigId, r.mrOwner, r.mrOwnerConfig].some((mr) => mr.some((b) => b !== 0))) parts.push(r.mrConfigId, r.mrOwner, r.mrOwnerConfig)
  return sha256(concatBytes(...parts))
}

/** The boot runtime events dstack's Info reads, empty when the TD has none. */
export function bootFacts(events: readonly TdxEvent[]): { composeHash: Uint8Array; instanceId: Uint8Array; osImageHash: Uint8Array } {
  return {
    composeHash: bootRuntimeEventPayload(events, 'compose-hash') ?? new Uint8Array(0),
    instanceId: bootRuntimeEventPayload(events, 'instance-id') ?? new Uint8Array(0),
    osImageHash: bootRuntimeEventPayload(events, 'os-image-hash') ?? new Uint8Array(0),
  }
}
