/**
 * The fleet's KMS budget (docs/configuration.md, "Fleet KMS budget"): every edge task admits its share
 * of the regional budget (KEYLESS_KMS_BUDGET / KEYLESS_FLEET_MAX_TASKS), so several edges under more
 * load than the budget never send KMS more than the budget in any one-second window, however many of
 * them run (up to the maximum) and whenever they start. Past the budget, handshakes are refused by
 * admission control (reason `key_budget`), not sent on to be throttled.
 */
import * as tls from 'node:tls';
import { loadEdgeConfig, ConfigError, type EdgeConfig } from '../../../../edge-proxy/src/config';
import {
  AdmissionController,
  AdmissionRejectedError,
  fleetShare,
  SlidingWindow,
  type AdmissionReason,
} from '../../../../edge-proxy/src/keyless/admission';
import type { KeyOperations, SignResult } from '../../../../edge-proxy/src/tls/key-operations';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import type { HandshakeError } from '../../../../edge-proxy/src/tls/connection';
import { TlsServer } from '../../../../edge-proxy/src/tls/server';
import { makeTestPki } from '../../../helpers/certs';
import { countTls13Signatures, InProcessKeys } from '../../../helpers/in-process-keys';

/** The edge's configuration from the environment alone, as the CDK's task definition gives it. */
const TASK_ENV = {
  KEYLESS_CERT_SSM_PREFIX: '/keyless/prod/certs/',
  KEYLESS_KEY_SERVICES: 'keyless-prod-key-service',
  KEYLESS_ORIGIN: 'http://10.0.1.5:8080',
};
const loadFromEnv = (env: NodeJS.ProcessEnv): EdgeConfig => loadEdgeConfig(undefined, { ...TASK_ENV, ...env });

/** The key service as KMS sees it: the clock time of every key operation that reached it. */
function kmsRecorder(clock: { t: number }): KeyOperations & { at: number[] } {
  const at: number[] = [];
  const sign = (): Promise<SignResult> => {
    at.push(clock.t);
    return Promise.resolve({ signature: Buffer.alloc(64), latencyMs: 1 });
  };
  return {
    at,
    signTls13CertificateVerify: sign,
    signTls12ServerKeyExchange: sign,
    rsaMasterSecret: () => Promise.reject(new Error('not used')),
    ticketKeys: () => Promise.reject(new Error('not used')),
    publicKey: () => Promise.reject(new Error('not used')),
    ping: () => Promise.reject(new Error('not used')),
  };
}

/** The most operations in any window [t, t + 1000) ms, from millisecond timestamps. */
function maxPerSecond(times: number[], endMs: number): number {
  const perMs = new Array<number>(endMs + 1).fill(0);
  for (const t of times) perMs[t]++;
  let window = 0;
  let max = 0;
  for (let t = 0; t <= endMs; t++) {
    window += perMs[t];
    if (t >= 1000) window -= perMs[t - 1000];
    max = Math.max(max, window);
  }
  return max;
}

interface Edge {
  ops: ReturnType<AdmissionController['wrap']>;
  rejects: AdmissionReason[];
}

describe('fleetShare', () => {
  it('gives each task its share as a one-second window (and, for readers, as burst + one second of refill)', () => {
    expect(fleetShare(400, 1)).toEqual({ keyOperationsPerSecond: 360, keyOperationBurst: 40, keyOperationWindow: 400 });
    expect(fleetShare(300, 4)).toEqual({ keyOperationsPerSecond: 68, keyOperationBurst: 7, keyOperationWindow: 75 });
    expect(fleetShare(500, 20)).toEqual({ keyOperationsPerSecond: 23, keyOperationBurst: 2, keyOperationWindow: 25 });
    expect(fleetShare(10, 5)).toEqual({ keyOperationsPerSecond: 1, keyOperationBurst: 1, keyOperationWindow: 2 });
    expect(fleetShare(9, 5)).toBeUndefined(); // 1 per task: too little to admit a handshake and its retry
  });
});

describe('SlidingWindow', () => {
  it('admits at most its limit in any one-second window, and refuses only when the window is full', () => {
    const limit = 7;
    const w = new SlidingWindow(limit);
    const admitted: number[] = [];
    // Pseudo-random arrivals over 10 s, in bursts and lulls (deterministic: a linear congruential walk).
    let seed = 12345;
    for (let t = 0; t <= 10_000; t++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const offered = seed % 100 < 3 ? 1 + (seed % 5) : 0;
      for (let i = 0; i < offered; i++) {
        const inWindow = admitted.filter((a) => a > t - 1000).length;
        const ok = w.take(t);
        expect(ok).toBe(inWindow < limit); // refused exactly when `limit` admissions are in the window
        if (ok) admitted.push(t);
      }
    }
    expect(maxPerSecond(admitted, 10_000)).toBeLessThanOrEqual(limit);
    expect(admitted.length).toBeGreaterThan(limit * 5);
  });

  it('admits a whole burst up to the limit at one instant, then the next one a window later', () => {
    const w = new SlidingWindow(3);
    expect([w.take(0), w.take(0), w.take(0), w.take(0)]).toEqual([true, true, true, false]);
    expect(w.take(999)).toBe(false);
    expect(w.take(1000)).toBe(true);
  });
});

describe('fleet KMS budget configuration', () => {
  it("splits KEYLESS_KMS_BUDGET over KEYLESS_FLEET_MAX_TASKS, replacing the file's rate and burst", () => {
    const c = loadFromEnv({ KEYLESS_KMS_BUDGET: '300', KEYLESS_FLEET_MAX_TASKS: '4' });
    expect(c.admission).toMatchObject({ keyOperationsPerSecond: 68, keyOperationBurst: 7, keyOperationWindow: 75 });
    // A budget alone is a fleet of one.
    expect(loadFromEnv({ KEYLESS_KMS_BUDGET: '120' }).admission).toMatchObject({
      keyOperationsPerSecond: 108,
      keyOperationBurst: 12,
    });
  });

  it.each([
    [{ KEYLESS_KMS_BUDGET: 'lots' }, /KEYLESS_KMS_BUDGET: lots is not a whole number/],
    [{ KEYLESS_KMS_BUDGET: '0' }, /KEYLESS_KMS_BUDGET: 0 is not a whole number from 1/],
    [{ KEYLESS_KMS_BUDGET: '400', KEYLESS_FLEET_MAX_TASKS: '-2' }, /KEYLESS_FLEET_MAX_TASKS: -2 is not a whole number/],
    [{ KEYLESS_FLEET_MAX_TASKS: '20' }, /KEYLESS_FLEET_MAX_TASKS: is set without KEYLESS_KMS_BUDGET/],
    [
      { KEYLESS_KMS_BUDGET: '30', KEYLESS_FLEET_MAX_TASKS: '20' },
      /30\/s shared by 20 tasks leaves each less than 2 key operations per second.*lower the fleet's maximum task count/s,
    ],
  ])('refuses %j, naming the variable and the fix', (env, message) => {
    expect(() => loadFromEnv(env)).toThrow(ConfigError);
    expect(() => loadFromEnv(env)).toThrow(message);
  });

  it('takes the connection cap from KEYLESS_MAX_CONNECTIONS', () => {
    expect(loadFromEnv({}).limits.maxConnections).toBe(20_000);
    expect(loadFromEnv({ KEYLESS_MAX_CONNECTIONS: '5000' }).limits.maxConnections).toBe(5000);
    expect(() => loadFromEnv({ KEYLESS_MAX_CONNECTIONS: '5k' })).toThrow(
      /KEYLESS_MAX_CONNECTIONS: 5k is not a whole number/,
    );
    expect(() => loadFromEnv({ KEYLESS_MAX_CONNECTIONS: '0' })).toThrow(/limits\.maxConnections/);
  });
});

describe('several edges under more load than the regional budget', () => {
  const BUDGET = 300;
  const MAX_TASKS = 4;
  const RUN_MS = 10_000;

  /**
   * Runs `RUN_MS` of simulated time in 1 ms steps; every running edge is offered one full handshake
   * per millisecond (1,000/s each, far above its share). `startAt[i]` is when edge i starts.
   */
  async function runFleet(startAt: number[]): Promise<{ kms: number[]; edges: Edge[] }> {
    const clock = { t: 0 };
    const kms = kmsRecorder(clock);
    const edges: Array<Edge | undefined> = startAt.map(() => undefined);
    const config = loadFromEnv({ KEYLESS_KMS_BUDGET: String(BUDGET), KEYLESS_FLEET_MAX_TASKS: String(MAX_TASKS) });
    for (; clock.t <= RUN_MS; clock.t++) {
      const offered: Array<Promise<unknown>> = [];
      startAt.forEach((start, i) => {
        if (clock.t < start) return;
        if (!edges[i]) {
          const rejects: AdmissionReason[] = [];
          const admission = new AdmissionController(
            { ...config.admission, maxPendingFullHandshakes: 1_000_000 },
            { now: () => clock.t, onReject: (r) => rejects.push(r) },
          );
          edges[i] = { ops: admission.wrap(kms), rejects };
        }
        // Many clients (no address: the per-client buckets stay out of the way), one edge-wide budget.
        offered.push(
          edges[i].ops
            .signTls13CertificateVerify('k', 'ecdsa_secp256r1_sha256', Buffer.alloc(32))
            .catch((e: unknown) => {
              if (!(e instanceof AdmissionRejectedError)) throw e;
            }),
        );
      });
      await Promise.all(offered);
    }
    return { kms: kms.at, edges: edges.filter((e): e is Edge => e !== undefined) };
  }

  it('never sends KMS more than the budget in any second, with every task running from the start', async () => {
    const { kms, edges } = await runFleet([0, 0, 0, 0]);
    expect(maxPerSecond(kms, RUN_MS)).toBeLessThanOrEqual(BUDGET);
    // ... and it is the budget that limits, not something else: close to it on average, the rest refused as key_budget.
    expect(kms.length).toBeGreaterThanOrEqual(0.9 * BUDGET * (RUN_MS / 1000));
    for (const e of edges) {
      expect(e.rejects.length).toBeGreaterThan(0);
      expect(new Set(e.rejects)).toEqual(new Set(['key_budget']));
    }
  });

  it('stays within the budget while the fleet scales out to its maximum (new tasks start with a full burst)', async () => {
    const { kms, edges } = await runFleet([0, 0, 2_500, 6_000]);
    expect(edges).toHaveLength(MAX_TASKS);
    expect(maxPerSecond(kms, RUN_MS)).toBeLessThanOrEqual(BUDGET);
  });
});

describe('two edges on loopback past their share', () => {
  it('refuse the excess full handshakes with handshake_failure (reason key_budget), before any key operation', async () => {
    const pki = makeTestPki();
    const leaf = pki.leaf('ec', 'p256', ['localhost']);
    const keys = new InProcessKeys(new Map([['ec-key', leaf.key]]));
    const counting = countTls13Signatures(keys);
    // A regional budget of 20/s for at most 10 tasks: 2 in any one-second window each. The clock
    // stands still, so the window never moves while the test runs, however slow the machine.
    const config = loadFromEnv({ KEYLESS_KMS_BUDGET: '20', KEYLESS_FLEET_MAX_TASKS: '10' });
    expect(config.admission).toMatchObject({ keyOperationWindow: 2 });
    const rejects: AdmissionReason[] = [];
    const alerts: string[] = [];
    const edges = await Promise.all(
      [0, 1].map(async () => {
        const admission = new AdmissionController(
          { ...config.admission, perClientBurst: 100 },
          { now: () => 0, onReject: (r) => rejects.push(r) },
        );
        const server = new TlsServer({
          certificates: new CertificateStore([loadCertificate(leaf.chainPem, 'ec-key')]),
          keyOperations: admission.wrap(counting.keys),
          handshakeTimeoutMs: 10_000,
        });
        server.on('tlsClientError', (e: HandshakeError) => e.sentAlert && alerts.push(e.sentAlert));
        server.on('secureConnection', (c) => c.end());
        return { server, port: (await server.listen(0)).port };
      }),
    );
    const handshake = (port: number): Promise<string> =>
      new Promise((resolve) => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          ca: pki.caPem,
          minVersion: 'TLSv1.3',
        });
        s.once('secureConnect', () => {
          s.destroy();
          resolve('ok');
        });
        s.once('error', (e) => resolve(e.message));
      });
    try {
      for (const { port } of edges) {
        // Two at once fit the share (a bucket with a burst of 1 refused the second), the rest do not.
        expect(await Promise.all([handshake(port), handshake(port)])).toEqual(['ok', 'ok']);
        expect(await handshake(port)).toMatch(/alert handshake failure/i);
        expect(await handshake(port)).toMatch(/alert handshake failure/i);
      }
      expect(counting.signed).toBe(4); // two per edge: its share
      expect(rejects).toEqual(['key_budget', 'key_budget', 'key_budget', 'key_budget']);
      expect(alerts).toEqual(['handshake_failure', 'handshake_failure', 'handshake_failure', 'handshake_failure']);
    } finally {
      for (const { server } of edges) await server.close(true);
      pki.cleanup();
    }
  });
});
