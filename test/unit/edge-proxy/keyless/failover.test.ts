/**
 * FailoverTarget on scripted in-memory targets and a hand-driven clock (no sleeps): preference order,
 * at most one retry and only for retryable failures, the caller's one deadline, breakers per key
 * service, health (EWMA) with fail over and fail back, and the charge of a bad response (wrong-key
 * signature, garbage) to the key service that sent it when running under the real KeyServiceClient
 * and the real key-service handler.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type KeyServiceHandler } from '../../../../lambdas/key-service/handler';
import { createLocalHandler } from '../../../../local/lambda/local-key-service';
import { PROTOCOL_VERSION, type KeyServiceRequest } from '../../../../contract/key-service-protocol';
import {
  FailoverTarget,
  type FailoverEvent,
  type FailoverTargetOptions,
} from '../../../../edge-proxy/src/keyless/failover-target';
import { KeyOperationError } from '../../../../edge-proxy/src/tls/key-operations';
import { KeyServiceClient } from '../../../../edge-proxy/src/keyless/key-service-client';
import type { KeyServiceTarget } from '../../../../edge-proxy/src/keyless/target';
import { keyOperationCode } from '../../../helpers/rejection';

type Behaviour = (request: KeyServiceRequest, signal: AbortSignal) => Promise<unknown> | unknown;

class ScriptedTarget implements KeyServiceTarget {
  calls = 0;
  closed = false;
  constructor(
    readonly name: string,
    public behaviour: Behaviour = answer,
  ) {}
  async invoke(request: KeyServiceRequest, signal: AbortSignal): Promise<unknown> {
    this.calls++;
    return this.behaviour(request, signal);
  }
  close(): void {
    this.closed = true;
  }
}

/** A well-formed ping answer. */
function answer(request: KeyServiceRequest): unknown {
  return {
    v: PROTOCOL_VERSION,
    id: request.id,
    ok: true,
    result: { service: 'keyless-key-service', protocol: 2, version: 'test', keys: [] },
  };
}
const typed = (code: string) => (request: KeyServiceRequest) => ({
  v: PROTOCOL_VERSION,
  id: request.id,
  ok: false,
  error: { code, message: `service says ${code}` },
});
const throwing = (code: KeyOperationError['code']) => () => {
  throw new KeyOperationError(code, `transport says ${code}`);
};

const ping = (): KeyServiceRequest => ({ v: PROTOCOL_VERSION, id: crypto.randomUUID(), op: 'ping' });

function setup(n = 2, options: Partial<FailoverTargetOptions> = {}) {
  const clock = { t: 10_000 };
  const targets = Array.from({ length: n }, (_, i) => new ScriptedTarget(`t${i}`));
  const events: FailoverEvent[] = [];
  const failover = new FailoverTarget({
    targets,
    breaker: { failureThreshold: 3, cooldownMs: 5_000, minimumRequests: 100 },
    health: { halfLifeMs: 5_000, slowMs: 500 },
    now: () => clock.t,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const invoke = (signal = new AbortController().signal) => failover.invoke(ping(), signal);
  return { clock, targets, failover, events, invoke, m: failover.metrics };
}

const codeOf = keyOperationCode;

describe('order and retries', () => {
  it('sends everything to the first key service while it is healthy', async () => {
    const { targets, invoke, m } = setup(3);
    for (let i = 0; i < 5; i++) await invoke();
    expect(targets.map((t) => t.calls)).toEqual([5, 0, 0]);
    expect(m.requests.get({ target: 't0', outcome: 'ok' })).toBe(5);
    expect(m.requestDuration.count({ target: 't0' })).toBe(5);
  });

  it.each([
    ['unavailable (connection refused)', throwing('unavailable'), 'unavailable'],
    ['throttled (429)', throwing('throttled'), 'throttled'],
    ['a typed throttled answer', typed('throttled'), 'throttled'],
    ['a typed unavailable answer', typed('unavailable'), 'unavailable'],
  ])('retries once on the next key service after %s', async (_name, behaviour, reason) => {
    const { targets, invoke, m, events } = setup(3);
    targets[0].behaviour = behaviour;
    const r = (await invoke()) as { ok: boolean };
    expect(r.ok).toBe(true);
    expect(targets.map((t) => t.calls)).toEqual([1, 1, 0]);
    expect(m.retries.get({ target: 't0', reason })).toBe(1);
    expect(m.failovers.get({ from: 't0', to: 't1', reason: 'retry' })).toBe(1);
    expect(m.errors.get({ target: 't0', type: reason })).toBe(1);
    expect(events).toContainEqual({ type: 'failover', from: 't0', to: 't1', reason: 'retry' });
  });

  it('retries on the same key service when it is the only one', async () => {
    const { targets, invoke, m } = setup(1);
    let n = 0;
    targets[0].behaviour = (req) => (n++ === 0 ? throwing('unavailable')() : answer(req));
    await invoke();
    expect(targets[0].calls).toBe(2);
    expect(m.retries.get({ target: 't0', reason: 'unavailable' })).toBe(1);
    expect(m.failovers.sum()).toBe(0);
  });

  it('retries at most once: the second failure is the answer', async () => {
    const { targets, invoke } = setup(3);
    targets[0].behaviour = throwing('unavailable');
    targets[1].behaviour = throwing('throttled');
    expect(await codeOf(invoke())).toBe('throttled');
    expect(targets.map((t) => t.calls)).toEqual([1, 1, 0]);
  });

  it('returns the last typed answer when the retry also gets one (the client maps it)', async () => {
    const { targets, invoke } = setup(2);
    targets[0].behaviour = typed('throttled');
    targets[1].behaviour = typed('unavailable');
    expect(await invoke()).toMatchObject({ ok: false, error: { code: 'unavailable' } });
  });

  it.each([
    ['function_error', throwing('function_error')],
    ['internal', throwing('internal')],
    ['a typed internal answer', typed('internal')],
  ])('does not retry after %s, but counts it against the key service', async (_name, behaviour) => {
    const { targets, invoke, failover } = setup(2);
    targets[0].behaviour = behaviour;
    await invoke().catch(() => undefined);
    expect(targets.map((t) => t.calls)).toEqual([1, 0]);
    expect(failover.breaker('t0').consecutiveFailures).toBe(1);
  });

  it.each(['bad_request', 'unknown_key', 'unsupported'])(
    'returns a typed %s answer as is: no retry, and the key service stays healthy',
    async (code) => {
      const { targets, invoke, failover, m } = setup(2);
      targets[0].behaviour = typed(code);
      expect(await invoke()).toMatchObject({ ok: false, error: { code } });
      expect(targets.map((t) => t.calls)).toEqual([1, 0]);
      expect(failover.breaker('t0').consecutiveFailures).toBe(0);
      expect(failover.health('t0').errorRate).toBe(0);
      expect(m.requests.get({ target: 't0', outcome: 'ok' })).toBe(1);
    },
  );

  it('never extends the deadline: a timeout is not retried, even from a target that ignores the signal', async () => {
    const { targets, failover, m } = setup(2);
    targets[0].behaviour = () => new Promise(() => undefined); // never answers, ignores the signal
    const controller = new AbortController();
    const p = failover.invoke(ping(), controller.signal);
    controller.abort(new KeyOperationError('timeout', 'key operation exceeded its 1000 ms deadline'));
    await expect(p).rejects.toThrow(/exceeded its 1000 ms deadline/);
    expect(targets.map((t) => t.calls)).toEqual([1, 0]);
    expect(m.errors.get({ target: 't0', type: 'timeout' })).toBe(1);
  });

  it('does not retry when the deadline passed during the failed attempt', async () => {
    const { targets, failover } = setup(2);
    const controller = new AbortController();
    targets[0].behaviour = () => {
      controller.abort(new KeyOperationError('timeout', 'deadline'));
      throw new KeyOperationError('unavailable', 'refused');
    };
    expect(await codeOf(failover.invoke(ping(), controller.signal))).toBe('timeout');
    expect(targets.map((t) => t.calls)).toEqual([1, 0]);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { targets, failover } = setup(2);
    const controller = new AbortController();
    controller.abort(new KeyOperationError('timeout', 'late'));
    expect(await codeOf(failover.invoke(ping(), controller.signal))).toBe('timeout');
    expect(targets[0].calls).toBe(0);
  });

  it('maps a non-KeyOperationError from a target to internal', async () => {
    const { targets, invoke } = setup(1);
    targets[0].behaviour = () => {
      throw new Error('boom');
    };
    expect(await codeOf(invoke())).toBe('internal');
  });

  it('can be told never to retry', async () => {
    const { targets, invoke } = setup(2, { retry: false });
    targets[0].behaviour = throwing('unavailable');
    expect(await codeOf(invoke())).toBe('unavailable');
    expect(targets.map((t) => t.calls)).toEqual([1, 0]);
  });
});

describe('breakers, health, fail over and fail back', () => {
  it('opens the breaker of a failing key service, fails over, and fails back once it recovers', async () => {
    const { clock, targets, invoke, failover, m, events } = setup(2, { health: { halfLifeMs: 60_000 } });
    targets[0].behaviour = throwing('internal'); // not retryable: each operation fails on t0
    // Health alone would steer away after the first failure; make it ignore errors here to see the breaker work.
    for (let i = 0; i < 3; i++) {
      await invoke().catch(() => undefined);
      failover.health('t0').reset();
    }
    expect(failover.breaker('t0').state).toBe('open');
    expect(m.breakerState.get({ target: 't0' })).toBe(1);
    expect(m.breakerTransitions.get({ target: 't0', to: 'open' })).toBe(1);
    expect(events).toContainEqual({ type: 'breaker', target: 't0', from: 'closed', to: 'open' });

    // Open: t0 is not even tried; t1 serves.
    await invoke();
    await invoke();
    expect(targets.map((t) => t.calls)).toEqual([3, 2]);
    expect(m.failovers.get({ from: 't0', to: 't1', reason: 'health' })).toBe(1);
    expect(failover.status().map((s) => [s.name, s.breaker, s.preferred])).toEqual([
      ['t0', 'open', false],
      ['t1', 'closed', true],
    ]);

    // Cool-down over: half-open, the next request is t0's probe; it succeeds and traffic fails back.
    targets[0].behaviour = answer;
    clock.t += 5_000;
    expect(m.breakerState.get({ target: 't0' })).toBe(2);
    await invoke();
    expect(failover.breaker('t0').state).toBe('closed');
    await invoke();
    expect(targets.map((t) => t.calls)).toEqual([5, 2]);
    expect(m.failovers.get({ from: 't1', to: 't0', reason: 'health' })).toBe(1);
    expect(failover.health('t0').errorRate).toBe(0);
  });

  it('a failed probe re-opens the breaker and the request goes to the next key service', async () => {
    const { clock, targets, invoke, failover } = setup(2);
    targets[0].behaviour = throwing('unavailable');
    for (let i = 0; i < 3; i++) {
      await invoke();
      failover.health('t0').reset();
    }
    expect(failover.breaker('t0').state).toBe('open');
    clock.t += 5_000;
    const before = targets[1].calls;
    await invoke(); // probe fails (retryable) → retried on t1
    expect(failover.breaker('t0').state).toBe('open');
    expect(targets[1].calls).toBe(before + 1);
  });

  it('fails at once, naming every breaker, when all are open', async () => {
    const { targets, invoke, failover } = setup(2, { health: { halfLifeMs: 1 } });
    for (const t of targets) t.behaviour = throwing('internal');
    for (let i = 0; i < 6; i++) await invoke().catch(() => undefined);
    expect(failover.status().map((s) => s.breaker)).toEqual(['open', 'open']);
    const calls = targets.map((t) => t.calls);
    const err = await invoke().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyOperationError);
    expect((err as KeyOperationError).code).toBe('unavailable');
    expect((err as KeyOperationError).message).toMatch(
      /no key service available: circuit breaker "t0" is open.*circuit breaker "t1" is open/,
    );
    expect(targets.map((t) => t.calls)).toEqual(calls);
  });

  it('steers away from an erroring key service at once (EWMA) and tries it again when its record has decayed', async () => {
    const { clock, targets, invoke, failover, m } = setup(2);
    targets[0].behaviour = throwing('unavailable');
    await invoke(); // t0 fails, retried on t1
    expect(failover.health('t0').healthy).toBe(false);
    await invoke();
    await invoke();
    expect(targets.map((t) => t.calls)).toEqual([1, 3]);
    expect(failover.breaker('t0').state).toBe('closed'); // one failure: health, not the breaker, moved traffic
    targets[0].behaviour = answer;
    clock.t += 5_000; // one half-life: error rate 1 → 0.5, still unhealthy (hysteresis)
    expect(failover.health('t0').healthy).toBe(false);
    clock.t += 5_001; // two: below 0.25, healthy again
    expect(failover.health('t0').healthy).toBe(true);
    await invoke();
    expect(targets.map((t) => t.calls)).toEqual([2, 3]);
    expect(m.failovers.get({ from: 't1', to: 't0', reason: 'health' })).toBe(1);
  });

  it('moves traffic off a slow key service (latency EWMA above slowMs) and back later', async () => {
    const { clock, targets, invoke, failover } = setup(2);
    targets[0].behaviour = (req) => {
      clock.t += 900; // the key service takes 900 ms (> slowMs 500) but answers
      return answer(req);
    };
    await invoke();
    expect(failover.health('t0').latencyMs).toBe(900);
    expect(failover.health('t0').healthy).toBe(true); // one slow answer is not enough
    await invoke();
    await invoke();
    expect(failover.health('t0').healthy).toBe(false);
    await invoke();
    expect(targets.map((t) => t.calls)).toEqual([3, 1]);
    targets[0].behaviour = answer;
    clock.t += 10_000; // 900 ms decays to 225 ms, below half of slowMs
    await invoke();
    expect(targets.map((t) => t.calls)).toEqual([4, 1]);
  });

  it('uses an unhealthy key service when none is healthy', async () => {
    const { targets, invoke, failover } = setup(2);
    for (const t of targets) t.behaviour = throwing('unavailable');
    await invoke().catch(() => undefined);
    expect(failover.status().map((s) => s.healthy)).toEqual([false, false]);
    for (const t of targets) t.behaviour = answer;
    await invoke();
    expect(targets.map((t) => t.calls)).toEqual([2, 1]);
  });
});

describe('pings, status, lifecycle', () => {
  it('pings every key service directly, whatever its breaker', async () => {
    const { targets, failover } = setup(2);
    targets[1].behaviour = throwing('unavailable');
    const r = await failover.pingTargets(1000);
    expect(r.map((p) => [p.name, p.reachable])).toEqual([
      ['t0', true],
      ['t1', false],
    ]);
    expect(r[0].version).toBe('test');
    expect(r[1].error).toMatch(/^unavailable/);
    expect(failover.breaker('t1').consecutiveFailures).toBe(0); // pings do not feed breakers
  });

  it('closes every target and validates its options', () => {
    const { targets, failover } = setup(2);
    failover.close();
    expect(targets.every((t) => t.closed)).toBe(true);
    expect(() => new FailoverTarget({ targets: [] })).toThrow(/at least one/);
    expect(() => new FailoverTarget({ targets: [new ScriptedTarget('a'), new ScriptedTarget('a')] })).toThrow(/unique/);
    expect(new FailoverTarget({ targets: [new ScriptedTarget('a')] }).name).toBe('a');
    expect(new FailoverTarget({ targets: [new ScriptedTarget('a'), new ScriptedTarget('b')] }).name).toBe(
      'failover(a, b)',
    );
    expect(() => failover.breaker('nope')).toThrow(RangeError);
  });
});

// --------------------------------------------------------------------------------------------
// Under the real KeyServiceClient and the real key-service handler (file keys): responses the client
// rejects after the target returned them are charged to the key service that sent them.

let dir: string;
let real: KeyServiceHandler;
let impostor: KeyServiceHandler;
let certKey: crypto.KeyObject;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-failover-'));
  const write = (name: string, k: crypto.KeyObject) => {
    const file = path.join(dir, `${name}.pem`);
    fs.writeFileSync(file, k.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    return file;
  };
  const good = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  certKey = crypto.createPublicKey(good);
  real = createLocalHandler({
    keys: [{ name: 'web', custody: 'file', path: write('good', good) }],
    logger: () => undefined,
  });
  impostor = createLocalHandler({
    keys: [{ name: 'web', custody: 'file', path: write('other', other) }],
    logger: () => undefined,
  });
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function handlerTarget(name: string, handler: () => KeyServiceHandler | Behaviour): ScriptedTarget {
  return new ScriptedTarget(name, (req) => (handler() as (e: unknown) => unknown)(req));
}

function stack(first: () => KeyServiceHandler | Behaviour, second: () => KeyServiceHandler | Behaviour = () => real) {
  const clock = { t: 0 };
  const targets = [handlerTarget('primary', first), handlerTarget('secondary', second)];
  const failover = new FailoverTarget({
    targets,
    breaker: { failureThreshold: 2, cooldownMs: 1000 },
    health: { halfLifeMs: 1e9 },
    now: () => clock.t,
  });
  const client = new KeyServiceClient({
    target: failover,
    timeoutMs: 2000,
    certificateKeys: { web: certKey },
    fetchUnregisteredKeys: false,
  });
  const keys = failover.trackOperations(client);
  const sign = () => keys.signTls13CertificateVerify('web', 'ecdsa_secp256r1_sha256', crypto.randomBytes(32));
  return { clock, targets, failover, client, keys, sign, m: failover.metrics };
}

describe('tracked operations (real client, real handler)', () => {
  it('signs through the first key service and records the operation', async () => {
    const { targets, sign, m } = stack(() => real);
    const r = await sign();
    expect(r.signature.length).toBeGreaterThan(0);
    expect(targets.map((t) => t.calls)).toEqual([1, 0]);
    expect(m.operations.get({ op: 'tls13.certificate_verify', outcome: 'ok' })).toBe(1);
    expect(m.operationDuration.count({ op: 'tls13.certificate_verify' })).toBe(1);
    expect(m.requests.get({ target: 'primary', outcome: 'ok' })).toBe(1);
  });

  it('a signature by the wrong key: bad_signature, never retried, charged to that key service until its breaker opens; the second takes over', async () => {
    const { targets, failover, sign, m } = stack(() => impostor);
    expect(await codeOf(sign())).toBe('bad_signature');
    expect(targets.map((t) => t.calls)).toEqual([1, 0]);
    expect(failover.breaker('primary').consecutiveFailures).toBe(1);
    expect(m.errors.get({ target: 'primary', type: 'bad_signature' })).toBe(1);
    expect(m.operations.get({ op: 'tls13.certificate_verify', outcome: 'bad_signature' })).toBe(1);
    failover.health('primary').reset(); // health alone would steer away now; let the breaker decide
    expect(await codeOf(sign())).toBe('bad_signature');
    expect(failover.breaker('primary').state).toBe('open');
    await sign();
    await sign();
    expect(targets.map((t) => t.calls)).toEqual([2, 2]);
  });

  it('garbage that passes the envelope check is charged after the client rejects it', async () => {
    const garbage: Behaviour = (req) => ({ v: 2, id: req.id, ok: true, result: { signature: '%%%%', backendMs: 1 } });
    const { targets, failover, sign, m } = stack(() => garbage);
    expect(await codeOf(sign())).toBe('internal');
    expect(failover.health('primary').healthy).toBe(false);
    expect(m.errors.get({ target: 'primary', type: 'internal' })).toBe(1);
    await sign(); // steered to the secondary by health
    expect(targets.map((t) => t.calls)).toEqual([1, 1]);
  });

  it('the half-open probe of a wrong-key service is judged by the verified outcome, not by the envelope', async () => {
    let bad = true;
    const { clock, failover, sign } = stack(() => (bad ? impostor : real));
    for (let i = 0; i < 2; i++) {
      await sign().catch(() => undefined);
      failover.health('primary').reset();
    }
    expect(failover.breaker('primary').state).toBe('open');
    clock.t += 1000;
    expect(await codeOf(sign())).toBe('bad_signature'); // the probe
    expect(failover.breaker('primary').state).toBe('open');
    bad = false;
    clock.t += 1000;
    await sign();
    expect(failover.breaker('primary').state).toBe('closed');
  });

  it('an operation failing with a typed internal answer does not also blame the good answers it used', async () => {
    const mixed: Behaviour = (req) => (req.op === 'public_key' ? real(req) : typed('internal')(req));
    const { targets, failover, m } = stack(() => mixed);
    const c = new KeyServiceClient({ target: failover, timeoutMs: 2000 }); // fetches the public key too
    const k = failover.trackOperations(c);
    expect(await codeOf(k.signTls13CertificateVerify('web', 'ecdsa_secp256r1_sha256', crypto.randomBytes(32)))).toBe(
      'internal',
    );
    expect(targets[0].calls).toBe(2);
    expect(m.requests.get({ target: 'primary', outcome: 'ok' })).toBe(1); // public_key
    expect(m.requests.get({ target: 'primary', outcome: 'internal' })).toBe(1); // the signature
    expect(m.errors.sum({ target: 'primary' })).toBe(1);
  });

  it('a typed unknown_key answer fails the operation without retry and without blaming the key service', async () => {
    const { targets, keys, failover, m } = stack(() => real);
    const err = await keys
      .signTls13CertificateVerify('nope', 'ecdsa_secp256r1_sha256', crypto.randomBytes(32))
      .catch((e: unknown) => e);
    expect((err as KeyOperationError).code).toBe('bad_request'); // not registered: rejected before any request
    expect(targets.map((t) => t.calls)).toEqual([0, 0]);
    expect(m.operations.get({ op: 'tls13.certificate_verify', outcome: 'bad_request' })).toBe(1);
    const c2 = new KeyServiceClient({ target: failover, timeoutMs: 2000 });
    const k2 = failover.trackOperations(c2);
    expect(await codeOf(k2.signTls13CertificateVerify('nope', 'ecdsa_secp256r1_sha256', crypto.randomBytes(32)))).toBe(
      'unknown_key',
    );
    expect(failover.breaker('primary').consecutiveFailures).toBe(0);
    expect(targets[1].calls).toBe(0);
  });

  it('trackOperations decorates every key operation and nothing else', async () => {
    const { keys, client, failover, m } = stack(() => real);
    expect(Object.keys(keys).sort()).toEqual([
      'ping',
      'publicKey',
      'rsaMasterSecret',
      'signTls12ServerKeyExchange',
      'signTls13CertificateVerify',
      'ticketKeys',
    ]);
    expect(keys).not.toBeInstanceOf(KeyServiceClient);
    client.registerCertificateKey('web2', certKey); // the client keeps its own surface
    expect(m.operations.sum()).toBe(0);
    const pong = await keys.ping();
    expect(pong.keys.map((k) => k.name)).toEqual(['web']);
    expect(m.operations.get({ op: 'ping', outcome: 'ok' })).toBe(1);
    await keys.publicKey('web');
    expect(m.operations.get({ op: 'public_key', outcome: 'ok' })).toBe(1);
    expect(failover.breaker('primary').state).toBe('closed');
    client.close();
  });
});
