/**
 * Dashboards and alarms against what the code printed: every metric a dashboard widget graphs (an
 * explicit metric or a SEARCH expression) and every alarm's metric, in the namespaces the code emits
 * (not AWS/* or ECS/*, which AWS publishes), must match at least one EMF metric emitted during the rehearsal:
 * the same namespace, metric name and exact dimension set (and dimension values where given). A
 * CloudWatch SEARCH `{Namespace,Dim1,Dim2}` schema matches exactly that dimension set.
 */

export interface EmittedMetric {
  namespace: string;
  name: string;
  dimensions: Record<string, string>;
  source: string;
}

export interface MetricQuery {
  /** Where it is used, e.g. `dashboard keyless-demo / "Key-service errors"` or `alarm AlarmsErrorRate`. */
  where: string;
  namespace: string;
  /** Undefined: any metric name (a SEARCH without MetricName). */
  name?: string;
  dimensionNames: string[];
  /** Required dimension values. */
  values: Record<string, string>;
  text: string;
}

/** EMF lines (`_aws.CloudWatchMetrics`) among a process's stdout lines. */
export function emittedMetrics(lines: readonly { source: string; line: string }[]): EmittedMetric[] {
  const out = new Map<string, EmittedMetric>();
  for (const { source, line } of lines) {
    if (!line.includes('CloudWatchMetrics')) continue;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const meta =
      (
        doc._aws as
          | { CloudWatchMetrics?: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] }
          | undefined
      )?.CloudWatchMetrics ?? [];
    for (const d of meta) {
      for (const dimSet of d.Dimensions.length > 0 ? d.Dimensions : [[]]) {
        for (const m of d.Metrics) {
          const dimensions: Record<string, string> = {};
          for (const k of dimSet) dimensions[k] = String(doc[k]);
          const key = JSON.stringify([d.Namespace, m.Name, Object.entries(dimensions).sort()]);
          if (!out.has(key))
            out.set(key, { namespace: d.Namespace, name: m.Name, dimensions, source: source.replace(/ \S+$/, '') });
        }
      }
    }
  }
  return [...out.values()];
}

export function matches(q: MetricQuery, m: EmittedMetric): boolean {
  if (q.namespace !== m.namespace) return false;
  if (q.name !== undefined && q.name !== m.name) return false;
  const names = Object.keys(m.dimensions).sort();
  if (names.join('\u0000') !== [...q.dimensionNames].sort().join('\u0000')) return false;
  return Object.entries(q.values).every(([k, v]) => m.dimensions[k] === v);
}

/** `SEARCH('{Ns,D1,D2} MetricName="X" D1="v"', 'Sum', 60)` → the query it makes. */
export function parseSearch(expression: string, where: string): MetricQuery | undefined {
  const m = /SEARCH\(\s*'((?:[^'\\]|\\.)*)'/.exec(expression);
  if (!m) return undefined;
  const text = m[1].replace(/\\"/g, '"');
  const schema = /\{([^}]*)\}/.exec(text);
  if (!schema) return undefined;
  const [namespace, ...dimensionNames] = schema[1].split(',').map((s) => s.trim().replace(/^"|"$/g, ''));
  const values: Record<string, string> = {};
  let name: string | undefined;
  for (const t of text.slice(schema.index + schema[0].length).matchAll(/([A-Za-z0-9_:.-]+)\s*=\s*"([^"]*)"/g)) {
    if (t[1] === 'MetricName') name = t[2];
    else values[t[1]] = t[2];
  }
  return { where, namespace, name, dimensionNames, values, text: expression };
}

/** Metric queries of a dashboard body (the resolved DashboardBody JSON). */
export function dashboardQueries(body: string, dashboard: string): MetricQuery[] {
  const doc = JSON.parse(body) as {
    widgets?: { type: string; properties?: { title?: string; metrics?: unknown[][] } }[];
  };
  const out: MetricQuery[] = [];
  for (const w of doc.widgets ?? []) {
    if (w.type !== 'metric' || !w.properties?.metrics) continue;
    const where = `dashboard ${dashboard} / "${w.properties.title ?? '(untitled)'}"`;
    let previous: unknown[] = [];
    for (const row of w.properties.metrics) {
      const last = row[row.length - 1];
      const opts =
        last && typeof last === 'object' && !Array.isArray(last) ? (last as { expression?: string }) : undefined;
      const parts = opts ? row.slice(0, -1) : row;
      if (parts.length === 0 && opts?.expression) {
        const q = parseSearch(opts.expression, where);
        if (q) out.push(q);
        continue;
      }
      // "." repeats the value in the same position of the previous row.
      const full = parts.map((p, i) => (p === '.' ? previous[i] : p));
      previous = full;
      const [namespace, name, ...dims] = full.map(String);
      const values: Record<string, string> = {};
      for (let i = 0; i + 1 < dims.length; i += 2) values[dims[i]] = dims[i + 1];
      out.push({ where, namespace, name, dimensionNames: Object.keys(values), values, text: JSON.stringify(full) });
    }
  }
  return out;
}

/** The metric of an AWS::CloudWatch::Alarm (resolved properties), or of each MetricStat in its math. */
export function alarmQueries(props: Record<string, unknown>, alarm: string): MetricQuery[] {
  const where = `alarm ${alarm}`;
  const one = (ns: unknown, name: unknown, dims: unknown): MetricQuery => {
    const values: Record<string, string> = {};
    for (const d of (dims as { Name: string; Value: string }[] | undefined) ?? []) values[d.Name] = String(d.Value);
    return {
      where,
      namespace: String(ns),
      name: String(name),
      dimensionNames: Object.keys(values),
      values,
      text: `${String(ns)} ${String(name)} ${JSON.stringify(values)}`,
    };
  };
  if (props.MetricName) return [one(props.Namespace, props.MetricName, props.Dimensions)];
  const out: MetricQuery[] = [];
  for (const m of (props.Metrics as
    | {
        MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions?: unknown } };
        Expression?: string;
      }[]
    | undefined) ?? []) {
    if (m.MetricStat)
      out.push(one(m.MetricStat.Metric.Namespace, m.MetricStat.Metric.MetricName, m.MetricStat.Metric.Dimensions));
    else if (m.Expression) {
      const q = parseSearch(m.Expression, where);
      if (q) out.push(q);
    }
  }
  return out;
}

/** Namespaces AWS publishes itself (services, Container Insights): not the code's to emit. */
export const awsPublished = (namespace: string): boolean => /^(AWS|ECS)\//.test(namespace);

/** Metrics the walk cannot make the code emit, each with its reason. */
export const UNEXERCISED_METRICS: { namespace: string; name: string; dimensionNames: string[]; reason: string }[] = [
  {
    namespace: 'Keyless/KeyService',
    name: 'KmsThrottles',
    dimensionNames: ['Deployment', 'Operation', 'service'],
    reason: 'emitted only when KMS throttles a call; the local KMS has no request quota',
  },
  {
    namespace: 'Keyless/Edge',
    name: 'AdmissionRejections',
    dimensionNames: ['Deployment', 'Reason'],
    reason:
      'emitted only when admission control refuses a handshake; the rehearsal stays within the KMS budget (test/integration/admission-flood.test.ts provokes it)',
  },
];

const unexercised = (q: MetricQuery): boolean =>
  UNEXERCISED_METRICS.some(
    (u) =>
      u.namespace === q.namespace &&
      u.name === q.name &&
      [...u.dimensionNames].sort().join() === [...q.dimensionNames].sort().join(),
  );

/** Queries in namespaces the code emits that match no emitted metric. */
export function unmatchedQueries(queries: readonly MetricQuery[], emitted: readonly EmittedMetric[]): MetricQuery[] {
  const seen = new Set<string>();
  return queries.filter((q) => {
    const key = `${q.where}\u0000${q.text}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return !awsPublished(q.namespace) && !unexercised(q) && !emitted.some((m) => matches(q, m));
  });
}
