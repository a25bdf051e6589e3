// Operator alerts: conditions a person must act on before they stop the node. Each active alert is a warning log
// line (once when it starts, again if its text changes, an info line when it clears), `keymanager_alert_active{alert}`
// = 1, and a badge on the status page. Prometheus rules in deploy/prometheus/alerts.yaml fire on the same metrics.
//
// - collateral_expiring: this platform's DCAP collateral expires within `collateralExpiryDays`. Collateral is
//   refreshed from the PCCS long before it expires; an alert means the refresh has been failing.
// - tcb_evaluation_number_new: Intel published a higher tcbEvaluationDataNumber than the one this node saw before, a
//   TCB recovery: platforms are rated against new TCB levels once the number is enforced. Active for
//   `tcbRecoveryNoticeDays` after it was first seen (persisted, so a restart does not hide it).
// - tcb_status_not_up_to_date: this platform's TCB status is not UpToDate (helpers under the default policy refuse
//   its quotes: it cannot onboard or re-onboard).
// - platform_check_failed: the node could not quote or verify itself (no collateral, expired collateral, ...).
// - gas_balance_low: the gas key holds less than `minGasBalanceWei` (the node cannot send its transactions).
import type { Logger } from 'pino'
import { formatEther } from 'viem'
import type { MetaStore } from '../store/meta.ts'
import type { AlertName, Metrics } from './metrics.ts'
import type { PlatformCheckResult } from './platform.ts'

const DAY = 86_400
const TCB_EVALUATION_KEY = 'monitor.tcb_evaluation_number'

export type AlertSettings = {
  collateralExpiryDays: number
  minGasBalanceWei: bigint
  tcbRecoveryNoticeDays: number
}

export type Alert = { name: AlertName; message: string; since: number }

type EvaluationRecord = { number: number; seenAt: number; previous: number | null }

export function createAlerts(deps: { settings: AlertSettings; logger: Logger; metrics: Metrics; meta: MetaStore; now(): number }) {
  const { settings, logger, metrics, meta } = deps
  const active = new Map<AlertName, Alert>()

  function set(name: AlertName, message: string | null) {
    const current = active.get(name)
    if (message === null) {
      if (!current) return
      active.delete(name)
      metrics.alertActive.set({ alert: name }, 0)
      logger.info({ alert: name }, `alert cleared: ${name}`)
      return
    }
    if (current?.message === message) return
    active.set(name, { name, message, since: current?.since ?? deps.now() })
    metrics.alertActive.set({ alert: name }, 1)
    logger.warn({ alert: name }, `ALERT ${name}: ${message}`)
  }

  /** Records the evaluation number seen now; returns the record (with `previous` set when it went up). */
  function trackEvaluationNumber(number: number, now: number): EvaluationRecord {
    let stored: EvaluationRecord | undefined
    try {
      stored = JSON.parse(meta.get(TCB_EVALUATION_KEY) ?? 'null') as EvaluationRecord | undefined
    } catch {
      stored = undefined
    }
    if (stored && typeof stored.number === 'number' && number <= stored.number) return stored
    const record: EvaluationRecord = { number, seenAt: now, previous: stored && typeof stored.number === 'number' ? stored.number : null }
    meta.put(TCB_EVALUATION_KEY, JSON.stringify(record))
    return record
  }

  return {
    /** Re-evaluates the platform alerts from a platform check. */
    platform(result: PlatformCheckResult) {
      const now = deps.now()
      if (!result.ok) {
        set('platform_check_failed', `this node could not verify its own quote: ${result.reason}: ${result.message}`)
        return
      }
      set('platform_check_failed', null)
      const { report } = result
      set('tcb_status_not_up_to_date', report.status === 'UpToDate' ? null : `this platform's TCB status is ${report.status}${report.advisoryIds.length ? ` (${report.advisoryIds.join(', ')})` : ''}`)
      const expiresAt = report.collateralExpiresAt
      if (expiresAt !== null && expiresAt - now < settings.collateralExpiryDays * DAY) {
        const left = expiresAt - now
        set('collateral_expiring', left <= 0 ? `DCAP collateral expired ${formatDuration(-left)} ago` : `DCAP collateral expires in ${formatDuration(left)}`)
      } else set('collateral_expiring', null)
      if (report.tcbEvaluationDataNumber !== null) {
        const record = trackEvaluationNumber(report.tcbEvaluationDataNumber, now)
        const recent = record.previous !== null && now - record.seenAt < settings.tcbRecoveryNoticeDays * DAY
        set(
          'tcb_evaluation_number_new',
          recent ? `TCB evaluation data number went from ${record.previous} to ${record.number}: a TCB recovery is under way` : null,
        )
      }
    },
    /** Re-evaluates the gas alert; `balance` undefined when the node has no gas key (no alert then). */
    gas(balance: bigint | undefined) {
      if (balance === undefined) return set('gas_balance_low', null)
      set('gas_balance_low', balance < settings.minGasBalanceWei ? `gas balance ${formatEther(balance)} ETH is below ${formatEther(settings.minGasBalanceWei)} ETH` : null)
    },
    list(): Alert[] {
      return [...active.values()]
    },
  }
}
export type Alerts = ReturnType<typeof createAlerts>

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s >= DAY) return `${Math.floor(s / DAY)} d ${Math.floor((s % DAY) / 3600)} h`
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  if (s >= 60) return `${Math.floor(s / 60)} min`
  return `${s} s`
}
