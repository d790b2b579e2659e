/**
 * A small in-memory metrics registry: counters, gauges and fixed-bucket histograms with typed label
 * names. Enough for the key-service client today; the Prometheus `/metrics` endpoint can render it
 * as it is (`renderPrometheus`) or adopt the same names with another library later.
 */

export type Labels<K extends string> = { readonly [P in K]: string };

export interface MetricSample {
  labels: Record<string, string>;
  value: number;
}

export interface HistogramSample {
  labels: Record<string, string>;
  /** Cumulative counts per upper bound (`le`), the last one being +Inf. */
  buckets: Array<{ le: number; count: number }>;
  sum: number;
  count: number;
}

export type MetricSnapshot =
  | { name: string; help: string; type: 'counter' | 'gauge'; samples: MetricSample[] }
  | { name: string; help: string; type: 'histogram'; samples: HistogramSample[] };

interface Metric {
  readonly name: string;
  snapshot(): MetricSnapshot;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function key(labelNames: readonly string[], labels: Record<string, string>): string {
  return labelNames.map((n) => labels[n] ?? '').join('\u0000');
}

function pick<K extends string>(labelNames: readonly K[], labels: Labels<K>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of labelNames) out[n] = String(labels[n] ?? '');
  return out;
}

export class Counter<K extends string = never> implements Metric {
  private readonly values = new Map<string, MetricSample>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly K[],
  ) {}

  inc(labels: Labels<K>, by = 1): void {
    if (!(by >= 0)) throw new RangeError('a counter only goes up');
    const k = key(this.labelNames, labels);
    const s = this.values.get(k);
    if (s) s.value += by;
    else this.values.set(k, { labels: pick(this.labelNames, labels), value: by });
  }

  get(labels: Labels<K>): number {
    return this.values.get(key(this.labelNames, labels))?.value ?? 0;
  }

  /** Sum over every label combination matching `partial`. */
  sum(partial: Partial<Labels<K>> = {}): number {
    let total = 0;
    for (const s of this.values.values()) {
      if (Object.entries(partial).every(([n, v]) => s.labels[n] === v)) total += s.value;
    }
    return total;
  }

  snapshot(): MetricSnapshot {
    return {
      name: this.name,
      help: this.help,
      type: 'counter',
      samples: [...this.values.values()].map((s) => ({ labels: { ...s.labels }, value: s.value })),
    };
  }
}

export class Gauge<K extends string = never> implements Metric {
  private readonly values = new Map<string, MetricSample>();
  /** Called before every snapshot, to set values that are read rather than pushed. */
  collect?: (gauge: Gauge<K>) => void;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly K[],
  ) {}

  set(labels: Labels<K>, value: number): void {
    const k = key(this.labelNames, labels);
    const s = this.values.get(k);
    if (s) s.value = value;
    else this.values.set(k, { labels: pick(this.labelNames, labels), value });
  }

  get(labels: Labels<K>): number | undefined {
    this.collect?.(this);
    return this.values.get(key(this.labelNames, labels))?.value;
  }

  snapshot(): MetricSnapshot {
    this.collect?.(this);
    return {
      name: this.name,
      help: this.help,
      type: 'gauge',
      samples: [...this.values.values()].map((s) => ({ labels: { ...s.labels }, value: s.value })),
    };
  }
}

export class Histogram<K extends string = never> implements Metric {
  private readonly values = new Map<
    string,
    { labels: Record<string, string>; counts: number[]; sum: number; count: number }
  >();
  private readonly observers: Array<(labels: Labels<K>, value: number) => void> = [];
  readonly buckets: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly K[],
    buckets: readonly number[],
  ) {
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]))) {
      throw new TypeError('histogram buckets must be finite and strictly increasing');
    }
    this.buckets = [...buckets];
  }

  observe(labels: Labels<K>, value: number): void {
    const k = key(this.labelNames, labels);
    let s = this.values.get(k);
    if (!s) {
      s = {
        labels: pick(this.labelNames, labels),
        counts: new Array<number>(this.buckets.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.values.set(k, s);
    }
    let i = this.buckets.findIndex((b) => value <= b);
    if (i < 0) i = this.buckets.length;
    s.counts[i]++;
    s.sum += value;
    s.count++;
    for (const o of this.observers) o(labels, value);
  }

  /** Calls `fn` with every observation from now on (e.g. to sample raw values); returns an unsubscribe. */
  onObserve(fn: (labels: Labels<K>, value: number) => void): () => void {
    this.observers.push(fn);
    return () => {
      const i = this.observers.indexOf(fn);
      if (i >= 0) this.observers.splice(i, 1);
    };
  }

  /** Observations recorded for these labels. */
  count(labels: Labels<K>): number {
    return this.values.get(key(this.labelNames, labels))?.count ?? 0;
  }

  snapshot(): MetricSnapshot {
    const samples: HistogramSample[] = [];
    for (const s of this.values.values()) {
      let cumulative = 0;
      const buckets = s.counts.map((c, i) => {
        cumulative += c;
        return { le: i < this.buckets.length ? this.buckets[i] : Infinity, count: cumulative };
      });
      samples.push({ labels: { ...s.labels }, buckets, sum: s.sum, count: s.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', samples };
  }
}

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  counter<K extends string = never>(name: string, help: string, labelNames: readonly K[] = []): Counter<K> {
    return this.add(new Counter<K>(name, help, labelNames));
  }

  gauge<K extends string = never>(name: string, help: string, labelNames: readonly K[] = []): Gauge<K> {
    return this.add(new Gauge<K>(name, help, labelNames));
  }

  histogram<K extends string = never>(
    name: string,
    help: string,
    labelNames: readonly K[],
    buckets: readonly number[],
  ): Histogram<K> {
    return this.add(new Histogram<K>(name, help, labelNames, buckets));
  }

  snapshot(): MetricSnapshot[] {
    return [...this.metrics.values()].map((m) => m.snapshot());
  }

  /** Prometheus text exposition format (version 0.0.4). */
  renderPrometheus(): string {
    return renderPrometheus(this.snapshot());
  }

  private add<M extends Metric>(metric: M): M {
    if (!NAME.test(metric.name)) throw new TypeError(`invalid metric name ${metric.name}`);
    if (this.metrics.has(metric.name)) throw new TypeError(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

/** Snapshots in Prometheus text exposition format (version 0.0.4): one registry's, or several merged. */
export function renderPrometheus(snapshots: readonly MetricSnapshot[]): string {
  const lines: string[] = [];
  for (const m of snapshots) {
    lines.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    lines.push(`# TYPE ${m.name} ${m.type}`);
    if (m.type === 'histogram') {
      for (const s of m.samples) {
        for (const b of s.buckets)
          lines.push(
            `${m.name}_bucket${labelText({ ...s.labels, le: b.le === Infinity ? '+Inf' : String(b.le) })} ${b.count}`,
          );
        lines.push(`${m.name}_sum${labelText(s.labels)} ${s.sum}`);
        lines.push(`${m.name}_count${labelText(s.labels)} ${s.count}`);
      }
    } else {
      for (const s of m.samples) lines.push(`${m.name}${labelText(s.labels)} ${s.value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return parts.length ? `{${parts.join(',')}}` : '';
}
