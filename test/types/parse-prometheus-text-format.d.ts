// parse-prometheus-text-format 1.1.1 ships no types; its output follows prom2json.
declare module 'parse-prometheus-text-format' {
  export type Sample = {
    labels?: Record<string, string>
    value?: string
    /** Histograms: upper bound → cumulative count. */
    buckets?: Record<string, string>
    quantiles?: Record<string, string>
    count?: string
    sum?: string
  }
  export type MetricFamily = { name: string; help: string; type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'; metrics: Sample[] }
  export default function parsePrometheusTextFormat(text: string): MetricFamily[]
}
