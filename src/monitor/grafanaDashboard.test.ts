// deploy/grafana/keymanager.json against what a node exports: a panel on a metric or label that does not exist shows
// "No data", and Grafana does not say why. Every series a query names must be a family of the node's exposition (a
// histogram's _bucket/_sum/_count of one), every label it selects, groups by or prints in a legend must be one that
// metric carries, and the families an operator looks for first each have a panel.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import parsePrometheus from 'parse-prometheus-text-format'
import { createMetrics } from './metrics.ts'

const text = readFileSync(new URL('../../deploy/grafana/keymanager.json', import.meta.url), 'utf8')
const metrics = createMetrics()
const families = new Map(parsePrometheus(await metrics.registry.metrics()).map((f) => [f.name, f.type]))

type Target = { expr: string; legendFormat?: string }
type Panel = { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string }; targets?: Target[]; panels?: Panel[] }
type Dashboard = { uid: string; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown; definition?: string }[] } }

/** Every panel, those inside collapsed rows included. */
const allPanels = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])])

/** Each query of the dashboard, with where it is: panel targets and the template variables' queries. */
function queries(d: Dashboard): { where: string; expr: string; legend: string }[] {
  const found = allPanels(d).flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr, legend: t.legendFormat ?? '' })))
  for (const variable of d.templating.list)
    if (variable.type === 'query') {
      const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query: string }).query
      found.push({ where: `variable $${variable.name}`, expr: query, legend: '' })
    }
  return found
}

/** The exported family a series name belongs to and the labels it carries (null: not exported). */
function resolve(series: string): { family: string; labels: Set<string> } | null {
  const labelsOf = (name: string, extra: string[] = []) =>
    new Set(['instance', 'job', ...extra, ...((metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [])])
  if (families.has(series)) return { family: series, labels: labelsOf(series) }
  const suffix = /^(.+)_(bucket|sum|count)$/.exec(series)
  if (suffix && families.get(suffix[1]!) === 'HISTOGRAM') return { family: suffix[1]!, labels: labelsOf(suffix[1]!, suffix[2] === 'bucket' ? ['le'] : []) }
  return null
}

/** What is wrong with the dashboard `json`, one line each (none: every name and label exists and panels do not overlap). */
function problems(json: string): string[] {
  const d = JSON.parse(json) as Dashboard
  const found: string[] = []
  for (const { where, expr, legend } of queries(d)) {
    const series = [...expr.matchAll(/\b((?:keymanager|process|nodejs)_[a-z0-9_]+)\s*(\{([^}]*)\})?/g)]
    if (series.length === 0) found.push(`${where}: uses no metric of the node`)
    const labels = new Set<string>()
    for (const [, name, , selector] of series) {
      const metric = resolve(name!)
      if (!metric) {
        found.push(`${where}: ${name} is not in the node's exposition`)
        continue
      }
      for (const label of metric.labels) labels.add(label)
      for (const [, label] of (selector ?? '').matchAll(/([a-zA-Z_]+)\s*(=~|!~|!=|=)/g))
        if (!metric.labels.has(label!)) found.push(`${where}: ${name} has no label ${label}`)
    }
    for (const label of [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())))
      if (!labels.has(label)) found.push(`${where}: groups by ${label}, which its metrics do not carry`)
    for (const [, label] of legend.matchAll(/\{\{\s*([a-zA-Z_]+)\s*\}\}/g))
      if (!labels.has(label!)) found.push(`${where}: legend prints ${label}, which its metrics do not carry`)
  }
  const ids = new Set<number>()
  const cells = new Map<string, string>()
  for (const p of allPanels(d)) {
    if (ids.has(p.id)) found.push(`panel "${p.title}": id ${p.id} used twice`)
    ids.add(p.id)
    if (p.type !== 'row' && p.datasource?.uid !== '${datasource}') found.push(`panel "${p.title}": not on the $datasource variable`)
    const { x, y, w, h } = p.gridPos
    if (x < 0 || w < 1 || x + w > 24) found.push(`panel "${p.title}": outside the 24-column grid`)
    for (let row = y; row < y + h; row++)
      for (let col = x; col < x + w; col++) {
        const other = cells.get(`${row},${col}`)
        if (other && other !== p.title) found.push(`panel "${p.title}" overlaps "${other}"`)
        cells.set(`${row},${col}`, p.title)
      }
  }
  return [...new Set(found)]
}

test('default: every query of the Grafana dashboard names only metrics and labels the node exports', () => {
  assert.deepEqual(problems(text), [])
})

test('default: the dashboard has a panel on each family an operator watches', () => {
  const used = new Set(queries(JSON.parse(text) as Dashboard).flatMap(({ expr }) => [...expr.matchAll(/\b((?:keymanager|process|nodejs)_[a-z0-9_]+)/g)].map((m) => resolve(m[1]!)?.family)))
  const watched = [
    'keymanager_ready',
    'keymanager_generation',
    'keymanager_onboarding_decisions_total',
    'keymanager_quote_verification_seconds',
    'keymanager_quote_verifications_total',
    'keymanager_pending_requests',
    'keymanager_outbox_depth',
    'keymanager_outbox_oldest_age_seconds',
    'keymanager_outbox_stuck_txs',
    'keymanager_chain_head_block',
    'keymanager_verified_head_block',
    'keymanager_watcher_lag_blocks',
    'keymanager_finality_lag_blocks',
    'keymanager_finality_lag_seconds',
    'keymanager_blob_fetches_total',
    'keymanager_blob_archive_bytes',
    'keymanager_gas_used_total',
    'keymanager_blob_gas_used_total',
    'keymanager_fees_paid_wei_total',
    'keymanager_gas_balance_wei',
    'keymanager_collateral_expiry_seconds',
    'keymanager_tcb_status',
    'keymanager_tcb_evaluation_data_number',
    'keymanager_pod_requests_total',
    'keymanager_alert_active',
  ]
  assert.deepEqual(
    watched.filter((name) => !used.has(name)),
    [],
    'families without a panel',
  )
  // Each of those is a family the node exports (the list itself cannot drift).
  assert.deepEqual(
    watched.filter((name) => !families.has(name)),
    [],
  )
})

test('error: a renamed metric, a wrong label, a grouping and a legend no metric carries, and overlapping panels are each caught', () => {
  const broken = JSON.parse(text) as Dashboard
  const panels = allPanels(broken)
  const target = (title: string) => panels.find((p) => p.title === title)!.targets![0]!
  target('Pending requests').expr = target('Pending requests').expr.replace('keymanager_pending_requests', 'keymanager_pending_request')
  target('Decisions by reason').expr = target('Decisions by reason').expr.replace('sum by (decision, reason)', 'sum by (decision, cause)')
  target('Blob fetches by source and result').legendFormat = '{{source}} {{outcome}}'
  target('Pod errors').expr = target('Pod errors').expr.replace('status=~', 'code=~')
  panels.find((p) => p.title === 'Generation')!.gridPos = { ...panels.find((p) => p.title === 'Ready')!.gridPos }
  assert.deepEqual(problems(JSON.stringify(broken)), [
    "panel \"Decisions by reason\": groups by cause, which its metrics do not carry",
    'panel "Pending requests": keymanager_pending_request is not in the node\'s exposition',
    // (its legend's {{instance}} has no metric left to come from)
    'panel "Pending requests": legend prints instance, which its metrics do not carry',
    'panel "Blob fetches by source and result": legend prints outcome, which its metrics do not carry',
    'panel "Pod errors": keymanager_pod_requests_total has no label code',
    'panel "Generation" overlaps "Ready"',
  ])
})
