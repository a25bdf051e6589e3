// deploy/prometheus/alerts.yaml against the metrics the node exports: a rule on a metric or label that does not exist
// never fires, and Prometheus does not say so. Every keymanager_* series a rule names, and every label it selects on
// or prints, must be one createMetrics registers.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { createMetrics } from './metrics.ts'

const rules = readFileSync(new URL('../../deploy/prometheus/alerts.yaml', import.meta.url), 'utf8')
const { registry } = createMetrics({ processMetrics: false })

/** Each rule: its expression and the `$labels.x` its annotations print. */
function parseRules(text: string): { alert: string; expr: string; printed: string[] }[] {
  return text
    .split(/\n\s*- alert: /)
    .slice(1)
    .map((block) => {
      const alert = block.split('\n')[0]!.trim()
      const expr = /\n\s*expr: (.+)/.exec(block)?.[1] ?? ''
      const printed = [...block.matchAll(/\$labels\.([a-z_]+)/g)].map((m) => m[1]!)
      return { alert, expr, printed }
    })
}

/** What is wrong with the rules in `text`, one line each (none: every name and label exists). */
function problems(text: string): string[] {
  const found: string[] = []
  for (const { alert, expr, printed } of parseRules(text)) {
    if (!expr) found.push(`${alert}: no expression`)
    const series = [...expr.matchAll(/(keymanager_[a-z_]+)(\{([^}]*)\})?/g)]
    if (series.length === 0) found.push(`${alert}: uses no keymanager metric`)
    const labels = new Set<string>(['instance', 'job'])
    for (const [, name, , selector] of series) {
      const metric = registry.getSingleMetric(name!) as unknown as { labelNames?: string[] } | undefined
      if (!metric) {
        found.push(`${alert}: ${name} is not a metric of src/monitor/metrics.ts`)
        continue
      }
      for (const label of metric.labelNames ?? []) labels.add(label)
      for (const [, label] of (selector ?? '').matchAll(/([a-z_]+)\s*(=~|!~|!=|=)/g))
        if (!metric.labelNames?.includes(label!)) found.push(`${alert}: ${name} has no label ${label}`)
    }
    for (const label of [...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())))
      if (!labels.has(label)) found.push(`${alert}: groups by ${label}, which its metrics do not carry`)
    for (const label of printed) if (!labels.has(label)) found.push(`${alert}: prints $labels.${label}, which its metrics do not carry`)
  }
  return found
}

test('default: every rule names only metrics and labels the node exports', () => {
  const names = parseRules(rules).map((r) => r.alert)
  assert.ok(names.length >= 8 && names.includes('KeymanagerAlertActive'), `rules parsed: ${names.join(', ')}`)
  assert.deepEqual(problems(rules), [])
})

test('error: a renamed metric, a wrong label and a printed label no metric carries are each caught', () => {
  const broken = rules
    .replace('keymanager_outbox_stuck_txs', 'keymanager_outbox_stuck')
    .replace('decision="refused"', 'verdict="refused"')
    .replace('{{ $labels.alert }}"', '{{ $labels.alarm }}"')
  assert.deepEqual(problems(broken), [
    'KeymanagerAlertActive: prints $labels.alarm, which its metrics do not carry',
    'KeymanagerOutboxStuck: keymanager_outbox_stuck is not a metric of src/monitor/metrics.ts',
    'KeymanagerRefusals: keymanager_onboarding_decisions_total has no label verdict',
  ])
})
