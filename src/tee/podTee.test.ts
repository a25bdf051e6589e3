import assert from 'node:assert/strict'
import { test } from 'node:test'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { appIdForPod } from '../keys/derive.ts'
import { createPodTee, MAX_POD_EVENTS, MAX_POD_EVENTS_PER_APP, podEventName, podTeeFor } from './podTee.ts'

test('default: one PodTee per quote provider, shared by every listener of the node', () => {
  const provider = simulatedQuoteProvider({ measurement: simulatedMeasurement('shared') })
  assert.equal(podTeeFor(provider), podTeeFor(provider))
  assert.notEqual(podTeeFor(provider), podTeeFor(simulatedQuoteProvider({ measurement: simulatedMeasurement('shared') })))
})

test('security: events are named after the app, and the whole TEE takes at most MAX_POD_EVENTS of them', async () => {
  const provider = simulatedQuoteProvider({ measurement: simulatedMeasurement('caps') })
  const tee = createPodTee(provider)
  assert.equal(podEventName(appIdForPod('a'), 'x'), `${Buffer.from(appIdForPod('a')).toString('hex')}:x`)
  const apps = Math.ceil(MAX_POD_EVENTS / MAX_POD_EVENTS_PER_APP)
  for (let app = 0; app < apps; app++) {
    for (let i = 0; i < MAX_POD_EVENTS_PER_APP; i++) await tee.emitEvent(appIdForPod(`app${app}`), `e${i}`, new Uint8Array())
  }
  await assert.rejects(tee.emitEvent(appIdForPod('late'), 'e', new Uint8Array()), { code: 'conflict', message: /taken its 256 pod events/ })
  const log = (await tee.quote(new Uint8Array(64).fill(1))).eventLog
  assert.equal(log.length, MAX_POD_EVENTS)
})

test('default: localEvidence is cached until the next event; a failure is not cached', async () => {
  let fail = true
  const base = simulatedQuoteProvider({ measurement: simulatedMeasurement('local') })
  let calls = 0
  const tee = createPodTee({
    ...base,
    quoteWithEvidence: async (reportData) => {
      calls++
      if (fail) throw new Error('not yet')
      return base.quoteWithEvidence!(reportData)
    },
  })
  await assert.rejects(tee.localEvidence(), { code: 'upstream_failed', message: 'not yet' })
  fail = false
  const first = await tee.localEvidence()
  assert.equal(await tee.localEvidence(), first)
  await tee.emitEvent(appIdForPod('a'), 'x', new Uint8Array())
  assert.notEqual(await tee.localEvidence(), first)
  assert.equal(calls, 3)
})
