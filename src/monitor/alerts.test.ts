import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, test } from 'node:test'
import parsePrometheus from 'parse-prometheus-text-format'
import pino from 'pino'
import { AlertBadges } from '../app/status/page.tsx'
import { createDevnetPki } from '../devnet/pki.ts'
import { simulatedMeasurement, simulatedQuoteProvider } from '../devnet/simulated.ts'
import { openDatabase } from '../store/database.ts'
import { createMetaStore } from '../store/meta.ts'
import type { Collateral, CollateralSource } from '../tee/collateral.ts'
import { createDcapVerifier } from '../tee/dcap.ts'
import type { TcbStatus } from '../tee/types.ts'
import { createAlerts } from './alerts.ts'
import { createMetrics } from './metrics.ts'
import { collateralRecorder, createPlatformCheck, PLATFORM_CHECK_REPORT_DATA } from './platform.ts'

const DAY = 86_400
const pki = createDevnetPki()

/** A platform rated `tcbStatus`, collateral from `collateral()` (changeable between checks), the production verifier. */
function setup(options: { tcbStatus?: TcbStatus; now?: () => number } = {}) {
  let collateral: Collateral = pki.collateral()
  const recorder = collateralRecorder()
  const source: CollateralSource = {
    async get(request) {
      recorder.record(request, collateral)
      return collateral
    },
  }
  const quoteProvider = simulatedQuoteProvider({ platform: pki.mintPlatform({ tcbStatus: options.tcbStatus ?? 'UpToDate' }), measurement: simulatedMeasurement('alerts') })
  const now = options.now ?? (() => Math.floor(Date.now() / 1000))
  const check = createPlatformCheck({
    quoteProvider,
    verifier: createDcapVerifier({ collateral: source, trustedRootCaDer: [pki.rootCaDer] }),
    collateral: recorder,
    now,
  })
  const lines: { level: number; alert?: string; msg: string }[] = []
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)))
        done()
      },
    }),
  )
  const db = openDatabase(':memory:')
  const meta = createMetaStore(db)
  const metrics = createMetrics({ processMetrics: false })
  const settings = { collateralExpiryDays: 7, minGasBalanceWei: 10n ** 16n, tcbRecoveryNoticeDays: 30 }
  const makeAlerts = () => createAlerts({ settings, logger, metrics, meta, now })
  return {
    check,
    alerts: makeAlerts(),
    makeAlerts,
    lines,
    metrics,
    setCollateral: (c: Collateral) => {
      collateral = c
    },
  }
}

/** `keymanager_alert_active` by alert, read from the Prometheus exposition. */
async function activeAlerts(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const families = parsePrometheus(await metrics.registry.metrics())
  const family = families.find((f) => f.name === 'keymanager_alert_active')
  assert.ok(family, 'keymanager_alert_active is exported')
  return Object.fromEntries(family.metrics.map((m) => [m.labels!.alert!, Number(m.value)]))
}

describe('platform check', () => {
  test('default: the node verifies its own quote and reads status, expiry and evaluation number from the collateral', async () => {
    const t = setup()
    const result = await t.check()
    assert.ok(result.ok, JSON.stringify(result))
    assert.equal(result.report.status, 'UpToDate')
    assert.equal(result.report.tcbEvaluationDataNumber, 1)
    const expected = pki.collateral()
    assert.ok(result.report.collateralExpiresAt! > result.report.checkedAt + 29 * DAY)
    assert.ok(result.report.collateralExpiresAt! <= result.report.checkedAt + 30 * DAY + 60, JSON.stringify(expected.tcb_info).slice(0, 10))
  })

  test('the self-check report data has neither the protocol shape nor an empty half', () => {
    assert.equal(PLATFORM_CHECK_REPORT_DATA.length, 64)
    assert.ok(PLATFORM_CHECK_REPORT_DATA.subarray(32).every((b) => b === 0xff))
    assert.ok(PLATFORM_CHECK_REPORT_DATA.subarray(0, 32).some((b) => b !== 0))
  })

  test('error: expired collateral is a failed check with the verifier reason', async () => {
    const t = setup()
    t.setCollateral(pki.collateral({ issuedAt: Math.floor(Date.now() / 1000) - 40 * DAY, validFor: 30 * DAY }))
    const result = await t.check()
    assert.equal(result.ok, false)
    assert.ok(!result.ok && result.reason === 'collateral_expired', JSON.stringify(result))
  })
})

describe('alerts', () => {
  test('default: an UpToDate platform with fresh collateral raises nothing', async () => {
    const t = setup()
    t.alerts.platform(await t.check())
    t.alerts.gas(10n ** 18n)
    assert.deepEqual(t.alerts.list(), [])
    assert.deepEqual(Object.values(await activeAlerts(t.metrics)), [0, 0, 0, 0, 0])
    assert.equal(t.lines.filter((l) => l.level >= 40).length, 0)
  })

  test('collateral expiring within N days: warning line, metric and alert list', async () => {
    const t = setup()
    t.setCollateral(pki.collateral({ validFor: 3 * DAY }))
    t.alerts.platform(await t.check())
    const [alert] = t.alerts.list()
    assert.equal(alert?.name, 'collateral_expiring')
    assert.match(alert!.message, /^DCAP collateral expires in 2 d 23 h$/)
    assert.equal((await activeAlerts(t.metrics)).collateral_expiring, 1)
    const warning = t.lines.find((l) => l.level === 40 && l.alert === 'collateral_expiring')
    assert.ok(warning, 'a warning log line names the alert')
    // Refreshed collateral clears it, with an info line.
    t.setCollateral(pki.collateral())
    t.alerts.platform(await t.check())
    assert.deepEqual(t.alerts.list(), [])
    assert.equal((await activeAlerts(t.metrics)).collateral_expiring, 0)
    assert.ok(t.lines.some((l) => l.level === 30 && l.alert === 'collateral_expiring' && /cleared/.test(l.msg)))
  })

  test('a TCB status other than UpToDate raises tcb_status_not_up_to_date with the advisories', async () => {
    const t = setup({ tcbStatus: 'SWHardeningNeeded' })
    t.alerts.platform(await t.check())
    assert.deepEqual(
      t.alerts.list().map((a) => a.name),
      ['tcb_status_not_up_to_date'],
    )
    assert.match(t.alerts.list()[0]!.message, /SWHardeningNeeded \(DEVNET-SA-\d+\)/)
    assert.equal((await activeAlerts(t.metrics)).tcb_status_not_up_to_date, 1)
  })

  test('a new TCB evaluation data number raises tcb_evaluation_number_new, kept across a restart, gone after the notice period', async () => {
    let clock = Math.floor(Date.now() / 1000)
    const t = setup({ now: () => clock })
    t.alerts.platform(await t.check())
    assert.deepEqual(t.alerts.list(), [], 'the first number seen is the baseline')
    t.setCollateral(pki.collateral({ tcbEvaluationDataNumber: 2 }))
    t.alerts.platform(await t.check())
    assert.deepEqual(
      t.alerts.list().map((a) => a.message),
      ['TCB evaluation data number went from 1 to 2: a TCB recovery is under way'],
    )
    // A restarted node (same database) still shows it.
    const restarted = t.makeAlerts()
    restarted.platform(await t.check())
    assert.deepEqual(
      restarted.list().map((a) => a.name),
      ['tcb_evaluation_number_new'],
    )
    clock += 31 * DAY
    t.setCollateral(pki.collateral({ tcbEvaluationDataNumber: 2, issuedAt: clock - 60 }))
    restarted.platform(await t.check())
    assert.deepEqual(restarted.list(), [])
  })

  test('low gas balance raises gas_balance_low; a node without a gas key never does', async () => {
    const t = setup()
    t.alerts.gas(10n ** 15n)
    assert.deepEqual(
      t.alerts.list().map((a) => a.message),
      ['gas balance 0.001 ETH is below 0.01 ETH'],
    )
    assert.equal((await activeAlerts(t.metrics)).gas_balance_low, 1)
    t.alerts.gas(undefined)
    assert.deepEqual(t.alerts.list(), [])
  })

  test('error: a failed self-check raises platform_check_failed with the reason', async () => {
    const t = setup()
    t.setCollateral(pki.collateral({ issuedAt: Math.floor(Date.now() / 1000) - 40 * DAY }))
    t.alerts.platform(await t.check())
    const [alert] = t.alerts.list()
    assert.equal(alert?.name, 'platform_check_failed')
    assert.match(alert!.message, /collateral_expired/)
  })
})

describe('status page', () => {
  test('default: every alert shows as a warning badge naming it, beside its log line and metric', async () => {
    const t = setup({ tcbStatus: 'OutOfDate' })
    t.alerts.platform(await t.check())
    t.setCollateral(pki.collateral({ validFor: 3 * DAY, tcbEvaluationDataNumber: 2 }))
    t.alerts.platform(await t.check())
    t.alerts.gas(10n ** 15n)
    const names = ['collateral_expiring', 'gas_balance_low', 'tcb_evaluation_number_new', 'tcb_status_not_up_to_date']
    assert.deepEqual(t.alerts.list().map((a) => a.name).sort(), names)
    const html = await AlertBadges({ alerts: t.alerts.list() })!.toString()
    for (const alert of t.alerts.list()) {
      const badge = html.match(new RegExp(`<span class="badge warn" data-testid="alert-${alert.name}" title="since [^"]+">([^<]*)</span>`))
      assert.ok(badge, `a warning badge for ${alert.name}`)
      const text = badge[1]!.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
      assert.equal(text, `⚠ ${alert.message}`)
      assert.equal((await activeAlerts(t.metrics))[alert.name], 1)
      assert.ok(t.lines.some((l) => l.level === 40 && l.alert === alert.name), `a warning line for ${alert.name}`)
    }
    assert.doesNotMatch(html, /alerts-none/)
    assert.match(await AlertBadges({ alerts: [] })!.toString(), /data-testid="alerts-none">no alerts</)
  })
})
