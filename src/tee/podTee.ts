// This node's TEE as pods see it through the dstack API (docs/protocol.md#dstack-api): quotes with their event log,
// and runtime events. One instance per node, shared by the pod listener and every per-pod socket, so its limits
// hold for the whole TEE.
//
// Decisions written down here:
// - Report data: every quote a pod can cause (GetQuote, Attest, RA-TLS certificates) goes through
//   `assertPodReportData` (src/tee/podQuote.ts): no pod obtains a protocol-shaped quote.
// - Runtime events are the TD's, not the pod's: RTMR3 is one register for the whole TD, so a pod's event moves the
//   measurement id of every later quote of this TEE, the node's own register and rotate quotes included (the
//   hardware gives no other choice). Two rules follow:
//   1. A pod's event is recorded as `<appId hex>:<event>`, so a verifier replaying the log can tell which app emitted
//      what, and no pod can write an entry that reads as another's, or as one of dstack's boot events (dstack reads
//      those only before `system-ready`, and never with a colon-free prefix like ours). `:` is refused inside the
//      name: dstack's digest joins name and payload with `:`, and a colon in the name would let one entry be read
//      two ways.
//   2. Bounded: at most MAX_POD_EVENTS_PER_APP per app and MAX_POD_EVENTS in all per sidecar run (a TD reboot, which
//      resets RTMR3, starts over), names of at most MAX_EVENT_NAME_BYTES of visible ASCII, payloads of at most
//      MAX_EVENT_PAYLOAD_BYTES. The route additionally refuses events until the node is ready (src/app/dstack.ts).
import { bytesToHex } from '@noble/hashes/utils.js'
import { KeymanagerError } from '../errors.ts'
import { assertBytes } from '../keys/bytes.ts'
import { assertPodReportData } from './podQuote.ts'
import type { PlatformInfo, QuoteEvidence, QuoteProvider, TeeType } from './types.ts'

export const MAX_EVENT_NAME_BYTES = 128
export const MAX_EVENT_PAYLOAD_BYTES = 4096
export const MAX_POD_EVENTS_PER_APP = 64
export const MAX_POD_EVENTS = 256

const EVENT_NAME = /^[\x21-\x39\x3b-\x7e]+$/

export type PodTee = {
  readonly teeType: TeeType
  /** Whether this TEE can extend RTMR3 for a pod. */
  readonly canEmitEvents: boolean
  /** A quote over pod report data (reserved shapes refused) with its event log and VM config. */
  quote(reportData: Uint8Array): Promise<QuoteEvidence>
  /** Extends RTMR3 with `<appId hex>:<event>`; throws KeymanagerError for a refused event. */
  emitEvent(appId: Uint8Array, event: string, payload: Uint8Array): Promise<void>
  /**
   * This TEE's registers and event log for `Info` (a quote over LOCAL_REPORT_DATA), cached until the next pod event;
   * a failure is not cached.
   */
  localEvidence(): Promise<QuoteEvidence>
  /**
   * What the platform says of the CVM (provider `dstack`: its agent's Info), read once and kept (it does not change
   * during a boot); all "" where the provider says nothing or the read failed (then the next call tries again).
   */
  platformInfo(): Promise<PlatformInfo>
}

export const EMPTY_PLATFORM_INFO: PlatformInfo = Object.freeze({ deviceId: '', appCompose: '', cloudVendor: '', cloudProduct: '' })

/** Report data of the `Info` quote: binds nothing, and is not protocol-shaped (src/tee/podQuote.ts). */
export const LOCAL_REPORT_DATA = new Uint8Array(64).fill(0xff)

/** The event name recorded for a pod's event. */
export function podEventName(appId: Uint8Array, event: string): string {
  assertBytes(appId, 20, 'appId')
  return `${bytesToHex(appId)}:${event}`
}

/** Checks a pod's event name and payload; RangeError/TypeError name what is wrong. */
export function checkPodEvent(event: unknown, payload: Uint8Array): asserts event is string {
  if (typeof event !== 'string') throw new TypeError('event must be a string')
  if (event.length === 0) throw new RangeError('event must not be empty')
  if (event.length > MAX_EVENT_NAME_BYTES) throw new RangeError(`event must be at most ${MAX_EVENT_NAME_BYTES} bytes`)
  if (!EVENT_NAME.test(event)) throw new RangeError('event must be visible ASCII without spaces or ":"')
  if (payload.length > MAX_EVENT_PAYLOAD_BYTES) throw new RangeError(`payload must be at most ${MAX_EVENT_PAYLOAD_BYTES} bytes, got ${payload.length}`)
}

/** Provider failures reach the pod as `upstream_failed` with their message (paths and errno codes, never secrets). */
async function upstream<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (error) {
    if (error instanceof KeymanagerError || error instanceof TypeError || error instanceof RangeError) throw error
    throw new KeymanagerError('upstream_failed', (error as Error).message, { cause: error })
  }
}

export function createPodTee(provider: QuoteProvider): PodTee {
  const perApp = new Map<string, number>()
  let total = 0
  let local: Promise<QuoteEvidence> | undefined
  let platform: Promise<PlatformInfo> | undefined
  function quote(reportData: Uint8Array): Promise<QuoteEvidence> {
    assertPodReportData(reportData)
    return upstream(async () => {
      if (provider.quoteWithEvidence) return provider.quoteWithEvidence(reportData)
      return { quote: await provider.getQuote(reportData), eventLog: [], vmConfig: '' }
    })
  }
  return Object.freeze({
    teeType: provider.teeType,
    canEmitEvents: provider.emitEvent !== undefined,
    quote,
    localEvidence() {
      const pending = (local ??= quote(LOCAL_REPORT_DATA))
      pending.catch(() => {
        if (local === pending) local = undefined
      })
      return pending
    },
    platformInfo() {
      if (!provider.platformInfo) return Promise.resolve(EMPTY_PLATFORM_INFO)
      const pending = (platform ??= provider.platformInfo())
      return pending.catch(() => {
        if (platform === pending) platform = undefined
        return EMPTY_PLATFORM_INFO
      })
    },
    async emitEvent(appId: Uint8Array, event: string, payload: Uint8Array): Promise<void> {
      checkPodEvent(event, payload)
      const name = podEventName(appId, event)
      if (!provider.emitEvent) throw new KeymanagerError('unprocessable', `quote provider ${provider.name} cannot extend runtime measurements`)
      const app = name.slice(0, 40)
      const count = perApp.get(app) ?? 0
      if (count >= MAX_POD_EVENTS_PER_APP) throw new KeymanagerError('conflict', `this app has emitted its ${MAX_POD_EVENTS_PER_APP} events for this boot`)
      if (total >= MAX_POD_EVENTS) throw new KeymanagerError('conflict', `this TEE has taken its ${MAX_POD_EVENTS} pod events for this boot`)
      // Counted before the extension: a failed one may still have moved RTMR3, so it uses up its place.
      perApp.set(app, count + 1)
      total++
      local = undefined
      try {
        await upstream(() => provider.emitEvent!(name, payload))
      } finally {
        local = undefined
      }
    },
  })
}

const shared = new WeakMap<QuoteProvider, PodTee>()

/** The one PodTee of a node's quote provider: every listener and socket of the node gets the same (its limits hold for the TEE). */
export function podTeeFor(provider: QuoteProvider): PodTee {
  let tee = shared.get(provider)
  if (!tee) {
    tee = createPodTee(provider)
    shared.set(provider, tee)
  }
  return tee
}
