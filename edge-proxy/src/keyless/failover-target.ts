/**
 * Failover across several key services (docs/architecture.md: retries, failover across
 * several key services in several regions, a circuit breaker), as one KeyServiceTarget under the unchanged KeyServiceClient.
 *
 * - Order: the first key service in configured order that is healthy (EWMA of errors and latency,
 *   see TargetHealth) and whose breaker lets requests through; a half-open breaker counts as healthy
 *   so its probe is the next request (fail back). When none is healthy, the first whose breaker is
 *   not open; when every breaker is open the request fails at once with `unavailable` naming them.
 * - At most one retry per operation, and only after a retryable failure — `unavailable` (connection
 *   refused or reset, connect timeout, 5xx, a typed `unavailable` answer) or `throttled` — to the
 *   next key service in that order, or to the same one when there is no other. Never after a
 *   `timeout` (the deadline is spent), a typed `bad_request`/`unknown_key`/`unsupported` answer (the
 *   request is the problem, not the service) or a `bad_signature`.
 * - Everything runs under the caller's one AbortSignal: nothing here sets a timer or extends it.
 * - Every request's outcome feeds that key service's circuit breaker and health. A response that
 *   looks fine but then fails verification in the client (`bad_signature`, a malformed result) is
 *   charged to the key service that sent it when the operation runs inside `track` /
 *   `trackOperations` (the edge wraps its KeyOperations so); outside it a well-formed envelope counts
 *   as a success.
 */
import type { KeyServiceRequest } from '../../../contract/key-service-protocol';
import { BREAKER_STATE_VALUE, KeyClientMetrics } from './client-metrics';
import { CircuitBreaker, type BreakerPermit, type BreakerState, type CircuitBreakerOptions } from './circuit-breaker';
import { KeyOperationError, type KeyDescription, type KeyOperations } from '../tls/key-operations';
import { abortReason, KeyServiceClient, raceAbort } from './key-service-client';
import type { KeyServiceTarget } from './target';
import { TargetHealth, type TargetHealthOptions } from './target-health';

/** Failures after which another attempt may succeed (and nothing was decided by the service). */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(['unavailable', 'throttled']);
/** Typed answers that mean the key service itself is in trouble (the others are about the request). */
const SERVICE_FAILURE_CODES: ReadonlySet<string> = new Set(['unavailable', 'throttled', 'internal']);
/** Final operation errors that condemn a response the key service did send. */
const RESPONSE_FAULT_CODES: ReadonlySet<string> = new Set(['bad_signature', 'internal']);

/** KeyOperations method → protocol operation, for metric labels. */
const METHOD_OPS: Readonly<Record<string, string>> = {
  signTls13CertificateVerify: 'tls13.certificate_verify',
  signTls12ServerKeyExchange: 'tls12.server_key_exchange',
  rsaMasterSecret: 'tls12.rsa_master_secret',
  publicKey: 'public_key',
  ticketKeys: 'ticket_keys',
  ping: 'ping',
};

export type FailoverEvent =
  | { type: 'breaker'; target: string; from: BreakerState; to: BreakerState }
  | { type: 'failover'; from: string; to: string; reason: 'retry' | 'health' };

export interface FailoverTargetOptions {
  /** Key services in failover order (e.g. home region first). At least one. */
  targets: readonly KeyServiceTarget[];
  /** Circuit-breaker settings, the same for every key service. */
  breaker?: Omit<CircuitBreakerOptions, 'name' | 'now' | 'onStateChange'>;
  /** Health settings (EWMA), the same for every key service. */
  health?: Omit<TargetHealthOptions, 'now'>;
  /** Retry once after a retryable failure. Default true. */
  retry?: boolean;
  /** Monotonic milliseconds (breakers and health); default `performance.now()`. */
  now?: () => number;
  /** Where to record metrics; a new KeyClientMetrics by default (see `metrics`). */
  metrics?: KeyClientMetrics;
  /** Breaker transitions and failovers, for logs. */
  onEvent?: (event: FailoverEvent) => void;
}

export interface TargetStatus {
  name: string;
  breaker: BreakerState;
  /** Health by recent errors and latency (ignores the breaker). */
  healthy: boolean;
  /** The key service the next request goes to first. */
  preferred: boolean;
  errorRate: number;
  latencyMs: number | null;
  consecutiveFailures: number;
  /** While open: milliseconds until the next probe. */
  retryInMs: number;
}

export interface TargetPing {
  name: string;
  reachable: boolean;
  version?: string;
  /** The key names it serves (from its `ping`). */
  keys?: KeyDescription[];
  error?: string;
  latencyMs: number;
}

interface Member {
  readonly index: number;
  readonly target: KeyServiceTarget;
  readonly breaker: CircuitBreaker;
  readonly health: TargetHealth;
  pinger?: KeyServiceClient;
}

/** A response that looked fine, settled when the operation around it ends. */
interface PendingOutcome {
  member: Member;
  permit: BreakerPermit;
  latencyMs: number;
}

interface OperationScope {
  owner: FailoverTarget;
  closed: boolean;
  ops: string[];
  pending: PendingOutcome[];
  /** Codes of attempts already counted as failures (their errors are not the answers' fault). */
  failed: string[];
}

type Attempt =
  { ok: true; response: unknown } | { ok: false; error: KeyOperationError; response?: unknown; retryable: boolean };

/**
 * The operation `track` is running right now. KeyServiceClient sends its request synchronously
 * within the method call (validation, then `run` → `call` → `target.invoke`, no await before it), so
 * `invoke` finds its scope here and keeps it for its retries. A synchronous hand-off costs nothing per
 * async resource, which an AsyncLocalStorage does not guarantee (measured on Node 20 at ~4% of the
 * edge's CPU per kept-alive HTTP request; Node 24's AsyncContextFrame makes it cheaper, but this needs
 * no context propagation at all).
 */
let currentScope: OperationScope | undefined;

export class FailoverTarget implements KeyServiceTarget {
  readonly name: string;
  readonly metrics: KeyClientMetrics;
  private readonly members: Member[];
  private readonly retry: boolean;
  private readonly now: () => number;
  private readonly onEvent?: (event: FailoverEvent) => void;
  private preferredIndex = 0;

  constructor(options: FailoverTargetOptions) {
    if (!Array.isArray(options.targets) || options.targets.length === 0)
      throw new TypeError('at least one key-service target is required');
    const names = options.targets.map((t) => t.name);
    if (new Set(names).size !== names.length) throw new TypeError('key-service target names must be unique');
    this.now = options.now ?? (() => performance.now());
    this.retry = options.retry ?? true;
    this.onEvent = options.onEvent;
    this.metrics = options.metrics ?? new KeyClientMetrics();
    this.name = options.targets.length === 1 ? names[0] : `failover(${names.join(', ')})`;
    this.members = options.targets.map((target, index) => {
      const health = new TargetHealth({ ...options.health, now: this.now });
      const breaker = new CircuitBreaker({
        ...options.breaker,
        name: target.name,
        now: this.now,
        onStateChange: (to, from) => {
          if (from === 'half_open' && to === 'closed') health.reset();
          this.metrics.breakerState.set({ target: target.name }, BREAKER_STATE_VALUE[to]);
          this.metrics.breakerTransitions.inc({ target: target.name, to });
          this.onEvent?.({ type: 'breaker', target: target.name, from, to });
        },
      });
      this.metrics.breakerState.set({ target: target.name }, BREAKER_STATE_VALUE.closed);
      return { index, target, breaker, health };
    });
    const previousCollect = this.metrics.breakerState.collect;
    this.metrics.breakerState.collect = (gauge) => {
      previousCollect?.(gauge);
      for (const m of this.members) gauge.set({ target: m.target.name }, BREAKER_STATE_VALUE[m.breaker.state]);
    };
  }

  /** The configured key services, in failover order. */
  get targets(): readonly KeyServiceTarget[] {
    return this.members.map((m) => m.target);
  }

  /** The circuit breaker of a key service (by name or position). */
  breaker(target: string | number): CircuitBreaker {
    return this.member(target).breaker;
  }

  /** The health record of a key service (by name or position). */
  health(target: string | number): TargetHealth {
    return this.member(target).health;
  }

  async invoke(request: KeyServiceRequest, signal: AbortSignal): Promise<unknown> {
    if (signal.aborted) throw abortReason(signal);
    const scope = this.scope();
    scope?.ops.push(request.op);

    const order = this.candidates();
    if (order.length === 0) throw this.allUnavailable();
    const first = order[0];
    this.notePreferred(first);
    const a = await this.attempt(first, request, signal, scope);
    if (a.ok) return a.response;
    if (!this.retry || !a.retryable || signal.aborted) return settleFailed(a);

    // One retry: the next key service in preference order, or the same one when there is no other.
    const next = this.candidates().find((m) => m !== first) ?? (first.breaker.allowsRequest() ? first : undefined);
    if (!next) return settleFailed(a);
    this.metrics.retries.inc({ target: first.target.name, reason: a.error.code });
    if (next !== first) {
      this.metrics.failovers.inc({ from: first.target.name, to: next.target.name, reason: 'retry' });
      this.onEvent?.({ type: 'failover', from: first.target.name, to: next.target.name, reason: 'retry' });
    }
    const b = await this.attempt(next, request, signal, scope);
    return b.ok ? b.response : settleFailed(b);
  }

  /**
   * Run one key operation (`fn` calls a KeyServiceClient method whose requests come here) so that a
   * response it later rejects (`bad_signature`, malformed) counts against the key service that sent
   * it, and record the operation's count and latency under `label` (a method or operation name).
   */
  track<T>(label: string, fn: () => T): T {
    const scope: OperationScope = { owner: this, closed: false, ops: [], pending: [], failed: [] };
    const started = this.now();
    let result: T;
    try {
      const outer = currentScope;
      currentScope = scope;
      try {
        result = fn();
      } finally {
        currentScope = outer;
      }
    } catch (e) {
      this.finish(scope, label, started, e, false); // a synchronous method (not a key operation) threw
      throw e;
    }
    if (!isPromiseLike(result)) {
      this.finish(scope, label, started, undefined, false);
      return result;
    }
    return Promise.resolve(result).then(
      (v) => {
        this.finish(scope, label, started, undefined, true);
        return v;
      },
      (e: unknown) => {
        this.finish(scope, label, started, e, true);
        throw e;
      },
    ) as T;
  }

  /**
   * A decorator of `ops` (the KeyServiceClient over this target) whose every key operation runs
   * inside `track`, so its outcome is charged to the key service that answered; the same shape as
   * AdmissionController.wrap.
   */
  trackOperations(ops: KeyOperations): KeyOperations {
    return {
      signTls13CertificateVerify: (...a) =>
        this.track('signTls13CertificateVerify', () => ops.signTls13CertificateVerify(...a)),
      signTls12ServerKeyExchange: (...a) =>
        this.track('signTls12ServerKeyExchange', () => ops.signTls12ServerKeyExchange(...a)),
      rsaMasterSecret: (...a) => this.track('rsaMasterSecret', () => ops.rsaMasterSecret(...a)),
      ticketKeys: () => this.track('ticketKeys', () => ops.ticketKeys()),
      publicKey: (...a) => this.track('publicKey', () => ops.publicKey(...a)),
      ping: () => this.track('ping', () => ops.ping()),
    };
  }

  /** Breaker and health of every key service, in configured order. */
  status(): TargetStatus[] {
    const preferred = this.candidates()[0];
    return this.members.map((m) => ({
      name: m.target.name,
      breaker: m.breaker.state,
      healthy: m.health.healthy,
      preferred: m === preferred,
      errorRate: round(m.health.errorRate, 3),
      latencyMs: m.health.latencyMs === undefined ? null : round(m.health.latencyMs, 1),
      consecutiveFailures: m.breaker.consecutiveFailures,
      retryInMs: Math.ceil(m.breaker.retryInMs),
    }));
  }

  /**
   * `ping` every key service directly (bypassing breakers and health: this is reachability, for
   * /healthz), each under its own `timeoutMs` deadline.
   */
  async pingTargets(timeoutMs: number): Promise<TargetPing[]> {
    return Promise.all(
      this.members.map(async (m): Promise<TargetPing> => {
        m.pinger ??= new KeyServiceClient({ target: m.target, timeoutMs, maxInFlight: 4 });
        const started = this.now();
        try {
          const pong = await m.pinger.ping();
          return {
            name: m.target.name,
            reachable: true,
            version: pong.version,
            keys: pong.keys,
            latencyMs: round(this.now() - started, 1),
          };
        } catch (e) {
          const err = e instanceof KeyOperationError ? `${e.code}: ${e.message}` : 'internal';
          return { name: m.target.name, reachable: false, error: err, latencyMs: round(this.now() - started, 1) };
        }
      }),
    );
  }

  close(): void {
    for (const m of this.members) m.target.close?.();
  }

  // -------------------------------------------------------------------------------------------

  private member(target: string | number): Member {
    const m = typeof target === 'number' ? this.members[target] : this.members.find((x) => x.target.name === target);
    if (!m) throw new RangeError(`no key-service target ${String(target)}`);
    return m;
  }

  private scope(): OperationScope | undefined {
    const s = currentScope;
    return s && s.owner === this ? s : undefined;
  }

  /** Members a request may go to, best first (see the file comment). */
  private candidates(): Member[] {
    const allowed = this.members.filter((m) => m.breaker.allowsRequest());
    const good = allowed.filter((m) => m.breaker.state === 'half_open' || m.health.healthy);
    return good.length === allowed.length ? allowed : [...good, ...allowed.filter((m) => !good.includes(m))];
  }

  private notePreferred(m: Member): void {
    if (m.index === this.preferredIndex) return;
    const from = this.members[this.preferredIndex].target.name;
    this.preferredIndex = m.index;
    this.metrics.failovers.inc({ from, to: m.target.name, reason: 'health' });
    this.onEvent?.({ type: 'failover', from, to: m.target.name, reason: 'health' });
  }

  private allUnavailable(): KeyOperationError {
    const why = this.members.map((m) => m.breaker.rejection().message).join('; ');
    return new KeyOperationError('unavailable', `no key service available: ${why}`);
  }

  private async attempt(
    m: Member,
    request: KeyServiceRequest,
    signal: AbortSignal,
    scope: OperationScope | undefined,
  ): Promise<Attempt> {
    const permit = m.breaker.tryAcquire();
    if (!permit) return { ok: false, error: m.breaker.rejection(), retryable: false };
    const started = this.now();
    let response: unknown;
    try {
      // raceAbort: the caller's deadline holds even if a target ignored its signal. A rejection that
      // comes after the deadline won is observed here, never left unhandled.
      const pending = m.target.invoke(request, signal);
      pending.catch(() => undefined);
      response = await raceAbort(pending, signal);
    } catch (e) {
      const error = signal.aborted
        ? abortReason(signal)
        : e instanceof KeyOperationError
          ? e
          : new KeyOperationError('internal', `${m.target.name} failed`);
      this.recordFailure(m, permit, error.code, this.now() - started);
      scope?.failed.push(error.code);
      return { ok: false, error, retryable: RETRYABLE_CODES.has(error.code) && !signal.aborted };
    }
    const latencyMs = this.now() - started;
    const code = typedErrorCode(response);
    if (code !== undefined && SERVICE_FAILURE_CODES.has(code)) {
      this.recordFailure(m, permit, code, latencyMs);
      scope?.failed.push(code);
      return {
        ok: false,
        error: new KeyOperationError(code as KeyOperationError['code'], `${m.target.name} answered ${code}`),
        response,
        retryable: RETRYABLE_CODES.has(code),
      };
    }
    if (scope && !scope.closed) scope.pending.push({ member: m, permit, latencyMs });
    else this.recordSuccess(m, permit, latencyMs);
    return { ok: true, response };
  }

  private recordSuccess(m: Member, permit: BreakerPermit, latencyMs: number): void {
    permit.success();
    m.health.record(false, latencyMs);
    this.metrics.requests.inc({ target: m.target.name, outcome: 'ok' });
    this.metrics.requestDuration.observe({ target: m.target.name }, latencyMs / 1000);
  }

  private recordFailure(m: Member, permit: BreakerPermit, code: string, latencyMs: number): void {
    permit.failure();
    m.health.record(true, latencyMs);
    this.metrics.requests.inc({ target: m.target.name, outcome: code });
    this.metrics.requestDuration.observe({ target: m.target.name }, latencyMs / 1000);
    this.metrics.errors.inc({ target: m.target.name, type: code });
  }

  private finish(scope: OperationScope, label: string, started: number, error: unknown, record: boolean): void {
    scope.closed = true;
    const code = error === undefined ? undefined : error instanceof KeyOperationError ? error.code : 'internal';
    // The operation failed because of a response that looked fine (bad signature, malformed result),
    // unless its error is one an attempt already failed with (and was counted for).
    const fault = code !== undefined && RESPONSE_FAULT_CODES.has(code) && !scope.failed.includes(code);
    for (const p of scope.pending.splice(0)) {
      if (fault) this.recordFailure(p.member, p.permit, code, p.latencyMs);
      else this.recordSuccess(p.member, p.permit, p.latencyMs);
    }
    if (!record) return;
    const op = METHOD_OPS[label] ?? scope.ops[0] ?? label;
    this.metrics.operations.inc({ op, outcome: code ?? 'ok' });
    this.metrics.operationDuration.observe({ op }, (this.now() - started) / 1000);
  }
}

/** A failed attempt as the caller sees it: the typed answer itself (the client maps it) or the error. */
function settleFailed(a: Extract<Attempt, { ok: false }>): unknown {
  if (a.response !== undefined) return a.response;
  throw a.error;
}

/** The code of a typed error answer (`{ok: false, error: {code}}`), if that is what `response` is. */
function typedErrorCode(response: unknown): string | undefined {
  if (typeof response !== 'object' || response === null) return undefined;
  const r = response as { ok?: unknown; error?: unknown };
  if (r.ok !== false || typeof r.error !== 'object' || r.error === null) return undefined;
  const code = (r.error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
