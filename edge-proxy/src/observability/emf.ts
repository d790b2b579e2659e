/**
 * CloudWatch embedded metric format (EMF): the edge's figures as JSON lines on stdout, which the ECS
 * `awslogs` driver ships to CloudWatch Logs, where CloudWatch extracts them as metrics. The task role
 * needs no CloudWatch permission and nothing is sent from the request path.
 *
 * Every `intervalSeconds` one flush writes the *deltas* since the previous flush of the counters, the
 * current value of gauges, and for latency histograms up to 100 raw observations (a uniform
 * reservoir sample) from which CloudWatch computes percentiles. Dimensions are few and bounded:
 * `Deployment` always, plus one of `Alert` (TLS alert names), `Reason` (admission reasons) or `Kind`
 * (full/resumed) — never a client address, SNI or connection id.
 *
 * Document structure (CloudWatch "Specification: Embedded metric format"): the root holds
 * `_aws: {Timestamp, CloudWatchMetrics: [{Namespace, Dimensions: [[dimension names]], Metrics:
 * [{Name, Unit}]}]}` and one member per dimension (string) and per metric (a number, or an array of
 * at most 100 numbers). At most 100 metrics per directive and 30 dimensions per dimension set.
 */
import { EDGE_METRICS, METRIC_DIMENSIONS } from '../../../contract/metric-names';
import type { EdgeMetrics } from './edge-metrics';
import type { KeyClientMetrics } from '../keyless/client-metrics';
import type { Labels, MetricSample } from './metrics-registry';

/** Metric names, shared with the CDK dashboard and alarms (contract/metric-names.ts). */
export const EMF_METRICS = EDGE_METRICS;

export const EMF_DEPLOYMENT_DIMENSION = METRIC_DIMENSIONS.deployment;

/** EMF limit on the values of one metric in one document. */
export const MAX_VALUES_PER_METRIC = 100;

export type EmfUnit = 'Count' | 'Milliseconds';

export interface EmfDocument {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: EmfUnit }>;
    }>;
  };
  [member: string]: unknown;
}

export interface EmfOptions {
  namespace: string;
  /** Value of the `Deployment` dimension. */
  deployment: string;
  intervalMs: number;
  /** Where lines go (default: stdout). */
  write?: (line: string) => void;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
  /** Uniform random in [0, 1) for the reservoir (tests). */
  random?: () => number;
}

/** A uniform sample of at most MAX_VALUES_PER_METRIC observations (Vitter's algorithm R). */
class Reservoir {
  values: number[] = [];
  seen = 0;
  constructor(private readonly random: () => number) {}

  add(v: number): void {
    this.seen++;
    if (this.values.length < MAX_VALUES_PER_METRIC) this.values.push(v);
    else {
      const j = Math.floor(this.random() * this.seen);
      if (j < MAX_VALUES_PER_METRIC) this.values[j] = v;
    }
  }

  take(): number[] {
    const v = this.values;
    this.values = [];
    this.seen = 0;
    return v;
  }
}

/** Key operations of a handshake (not ping, ticket keys or public-key lookups). */
const isHandshakeOp = (op: string): boolean => op.startsWith('tls13.') || op.startsWith('tls12.');

/** Milliseconds, rounded to microseconds (keeps lines short). */
const ms = (seconds: number): number => Math.round(seconds * 1e6) / 1e3;

export class EmfPublisher {
  private readonly write: (line: string) => void;
  private readonly now: () => number;
  private readonly last = new Map<string, number>();
  private readonly keyLatency: Reservoir;
  private readonly handshakeDuration = new Map<string, Reservoir>();
  private readonly unsubscribe: Array<() => void> = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly edge: EdgeMetrics,
    private readonly keys: KeyClientMetrics,
    private readonly options: EmfOptions,
  ) {
    this.write = options.write ?? ((line) => process.stdout.write(line));
    this.now = options.now ?? Date.now;
    const random = options.random ?? Math.random;
    this.keyLatency = new Reservoir(random);
    this.unsubscribe.push(
      keys.operationDuration.onObserve((l: Labels<'op'>, v) => {
        if (isHandshakeOp(l.op)) this.keyLatency.add(ms(v));
      }),
      edge.handshakeDuration.onObserve((l: Labels<'protocol' | 'kind'>, v) => {
        let r = this.handshakeDuration.get(l.kind);
        if (!r) this.handshakeDuration.set(l.kind, (r = new Reservoir(random)));
        r.add(ms(v));
      }),
    );
  }

  /** Flushes every `intervalMs` until `stop()`; the timer never keeps the process alive. */
  start(): void {
    this.timer ??= setInterval(() => this.flush(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what accumulated since the last flush (nothing is lost on SIGTERM). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
    for (const u of this.unsubscribe.splice(0)) u();
  }

  /** Writes one EMF line per document; returns the documents. */
  flush(): EmfDocument[] {
    const docs = this.collect();
    for (const d of docs) this.write(`${JSON.stringify(d)}\n`);
    return docs;
  }

  /** The documents for the interval since the previous call (advances the counter baselines). */
  collect(): EmfDocument[] {
    const timestamp = this.now();
    const docs: EmfDocument[] = [];
    const doc = (dimensions: Record<string, string>, metrics: Array<[string, EmfUnit, number | number[]]>): void => {
      const present = metrics.filter(([, , v]) => !Array.isArray(v) || v.length > 0);
      if (present.length === 0) return;
      const d: EmfDocument = {
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [
            {
              Namespace: this.options.namespace,
              Dimensions: [Object.keys(dimensions)],
              Metrics: present.map(([Name, Unit]) => ({ Name, Unit })),
            },
          ],
        },
        ...dimensions,
      };
      for (const [name, , value] of present) d[name] = value;
      docs.push(d);
    };
    const dep = { [EMF_DEPLOYMENT_DIMENSION]: this.options.deployment };

    // Handshakes by kind and result, failures by alert.
    let full = 0;
    let resumed = 0;
    let abandoned = 0;
    let failures = 0;
    const byAlert = new Map<string, number>();
    for (const s of this.edge.handshakes.snapshot().samples as MetricSample[]) {
      const delta = this.delta('handshakes', s);
      if (delta === 0) continue;
      const { kind, result, alert } = s.labels;
      if (result === 'ok') {
        if (kind === 'resumed') resumed += delta;
        else full += delta;
      } else if (result === 'closed') {
        abandoned += delta;
      } else {
        failures += delta;
        const name = result === 'alert_received' ? `received:${alert}` : alert || 'none';
        byAlert.set(name, (byAlert.get(name) ?? 0) + delta);
      }
    }
    let rejections = 0;
    const byReason = new Map<string, number>();
    for (const s of this.edge.admissionRejections.snapshot().samples as MetricSample[]) {
      const delta = this.delta('admission', s);
      rejections += delta;
      if (delta > 0) byReason.set(s.labels.reason, delta);
    }
    let keyErrors = 0;
    for (const s of this.keys.operations.snapshot().samples as MetricSample[]) {
      const delta = this.delta('keyops', s);
      if (s.labels.outcome !== 'ok' && isHandshakeOp(s.labels.op)) keyErrors += delta;
    }
    const avoided = this.delta('avoided', { labels: {}, value: this.edge.keyOperationsAvoided.get({}) });
    const active = this.edge.activeConnections.get({}) ?? 0;

    doc(dep, [
      [EMF_METRICS.handshakesFull, 'Count', full],
      [EMF_METRICS.handshakesResumed, 'Count', resumed],
      [EMF_METRICS.handshakeFailures, 'Count', failures],
      [EMF_METRICS.handshakesAbandoned, 'Count', abandoned],
      [EMF_METRICS.keyOperationsAvoided, 'Count', avoided],
      [EMF_METRICS.keyOperationErrors, 'Count', keyErrors],
      [EMF_METRICS.admissionRejections, 'Count', rejections],
      [EMF_METRICS.activeConnections, 'Count', active],
      [EMF_METRICS.keyOperationLatency, 'Milliseconds', this.keyLatency.take()],
    ]);
    for (const [alert, n] of byAlert)
      doc({ ...dep, [METRIC_DIMENSIONS.alert]: alert }, [[EMF_METRICS.handshakeFailures, 'Count', n]]);
    for (const [reason, n] of byReason)
      doc({ ...dep, [METRIC_DIMENSIONS.reason]: reason }, [[EMF_METRICS.admissionRejections, 'Count', n]]);
    for (const [kind, r] of this.handshakeDuration)
      doc({ ...dep, [METRIC_DIMENSIONS.kind]: kind }, [[EMF_METRICS.handshakeDuration, 'Milliseconds', r.take()]]);
    return docs;
  }

  /** Increase of a counter sample since the previous call (counters only go up). */
  private delta(metric: string, s: MetricSample): number {
    const key = `${metric}\u0000${Object.values(s.labels).join('\u0000')}`;
    const before = this.last.get(key) ?? 0;
    this.last.set(key, s.value);
    return Math.max(0, s.value - before);
  }
}
