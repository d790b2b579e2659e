/**
 * Admission control: token buckets, the pending-handshake cap, per-client and global
 * limits, the bounded client map, configuration, and — through a real TlsServer — that a refused full
 * handshake gets a `handshake_failure` alert while nothing reaches the key service.
 */
import * as tls from 'node:tls';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadEdgeConfig, parseEdgeConfig, ConfigError } from '../../../../edge-proxy/src/config';
import {
  AdmissionController,
  AdmissionRejectedError,
  DEFAULT_ADMISSION,
  isConnectionScoped,
  TokenBucket,
  type AdmissionConfig,
  type AdmissionReason,
} from '../../../../edge-proxy/src/keyless/admission';
import type { KeyOperations, SignResult } from '../../../../edge-proxy/src/tls/key-operations';
import { KeyOperationError } from '../../../../edge-proxy/src/tls/key-operations';
import { CertificateStore, loadCertificate } from '../../../../edge-proxy/src/tls/certificates';
import type { HandshakeError } from '../../../../edge-proxy/src/tls/connection';
import { TlsServer } from '../../../../edge-proxy/src/tls/server';
import { makeTestPki } from '../../../helpers/certs';
import { countTls13Signatures, InProcessKeys } from '../../../helpers/in-process-keys';

const HASH = Buffer.alloc(32, 7);

/** Key operations whose signatures complete only when the test says so; counts calls. */
function fakeOps(): KeyOperations & { calls: number; resolveAll(): void; rejectNext?: boolean } {
  const waiting: Array<() => void> = [];
  const ops = {
    calls: 0,
    rejectNext: false,
    resolveAll() {
      for (const w of waiting.splice(0)) w();
    },
    signTls13CertificateVerify(): Promise<SignResult> {
      ops.calls++;
      if (ops.rejectNext) {
        ops.rejectNext = false;
        return Promise.reject(new KeyOperationError('unavailable', 'down'));
      }
      return new Promise<SignResult>((resolve) =>
        waiting.push(() => resolve({ signature: Buffer.alloc(64), latencyMs: 1 })),
      );
    },
    signTls12ServerKeyExchange(): Promise<SignResult> {
      ops.calls++;
      return Promise.resolve({ signature: Buffer.alloc(64), latencyMs: 1 });
    },
    rsaMasterSecret() {
      ops.calls++;
      return Promise.resolve({ masterSecret: Buffer.alloc(48), latencyMs: 1 });
    },
    ticketKeys: () =>
      Promise.resolve({
        epochSeconds: 3600,
        current: { epoch: 1, key: Buffer.alloc(32) },
        previous: { epoch: 0, key: Buffer.alloc(32) },
      }),
    publicKey: () => Promise.resolve({ spki: Buffer.alloc(1), keySpec: 'ECC_NIST_P256' }),
    ping: () => Promise.resolve({ v: 2, ok: true } as never),
  };
  return ops;
}

function controller(
  over: Partial<AdmissionConfig>,
  clock: { t: number },
  rejects: AdmissionReason[] = [],
): AdmissionController {
  return new AdmissionController(
    { ...DEFAULT_ADMISSION, ...over },
    { now: () => clock.t, onReject: (r) => rejects.push(r) },
  );
}

describe('TokenBucket', () => {
  it('allows a burst, then the steady rate', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true);
    expect(b.take(100)).toBe(false);
    expect(b.full(10_000)).toBe(true);
    expect(b.take(10_000) && b.take(10_000) && b.take(10_000)).toBe(true);
    expect(b.take(10_000)).toBe(false); // never more than the burst
  });
});

describe('AdmissionController', () => {
  it('caps full handshakes waiting for the key service and releases the slot when they settle', async () => {
    const clock = { t: 0 };
    const rejects: AdmissionReason[] = [];
    const inner = fakeOps();
    const ops = controller({ maxPendingFullHandshakes: 2 }, clock, rejects).wrap(inner);
    const a = ops.forConnection('10.0.0.1').signTls13CertificateVerify('k', 'ecdsa_secp256r1_sha256', HASH);
    const b = ops.forConnection('10.0.0.2').signTls13CertificateVerify('k', 'ecdsa_secp256r1_sha256', HASH);
    const c = ops.forConnection('10.0.0.3').signTls13CertificateVerify('k', 'ecdsa_secp256r1_sha256', HASH);
    await expect(c).rejects.toThrow(AdmissionRejectedError);
    await expect(c).rejects.toMatchObject({ code: 'refused', reason: 'pending_limit' });
    expect(inner.calls).toBe(2); // the refused one never reached the key service
    inner.resolveAll();
    await Promise.all([a, b]);
    await expect(
      ops.forConnection('10.0.0.3').signTls12ServerKeyExchange('k', 'ecdsa_secp256r1_sha256', HASH, HASH, HASH),
    ).resolves.toBeDefined();
    expect(rejects).toEqual(['pending_limit']);
  });

  it('releases the slot when the key operation fails', async () => {
    const clock = { t: 0 };
    const inner = fakeOps();
    const adm = controller({ maxPendingFullHandshakes: 1 }, clock);
    const ops = adm.wrap(inner);
    inner.rejectNext = true;
    await expect(ops.signTls13CertificateVerify('k', 'ecdsa_secp256r1_sha256', HASH)).rejects.toMatchObject({
      code: 'unavailable',
    });
    expect(adm.pending).toBe(0);
  });

  it('rate-limits full handshakes per client address without affecting other clients', async () => {
    const clock = { t: 0 };
    const rejects: AdmissionReason[] = [];
    const inner = fakeOps();
    const ops = controller({ perClientRatePerSecond: 2, perClientBurst: 2 }, clock, rejects).wrap(inner);
    const one = ops.forConnection('192.0.2.1');
    await one.rsaMasterSecret('k', {} as never);
    await one.rsaMasterSecret('k', {} as never);
    await expect(one.rsaMasterSecret('k', {} as never)).rejects.toMatchObject({ reason: 'client_rate' });
    await expect(ops.forConnection('192.0.2.2').rsaMasterSecret('k', {} as never)).resolves.toBeDefined();
    clock.t += 500; // one token back
    await expect(one.rsaMasterSecret('k', {} as never)).resolves.toBeDefined();
    await expect(one.rsaMasterSecret('k', {} as never)).rejects.toMatchObject({ reason: 'client_rate' });
    expect(rejects).toEqual(['client_rate', 'client_rate']);
    expect(inner.calls).toBe(4);
  });

  it('holds all clients together to the key-operation budget', async () => {
    const clock = { t: 0 };
    const rejects: AdmissionReason[] = [];
    const inner = fakeOps();
    const ops = controller({ keyOperationsPerSecond: 100, keyOperationBurst: 10 }, clock, rejects).wrap(inner);
    let admitted = 0;
    // 10 simulated seconds, 1000 distinct clients per second trying once each.
    for (let ms = 0; ms < 10_000; ms += 1) {
      clock.t = ms;
      try {
        await ops
          .forConnection(`198.51.100.${ms % 250}:${ms}`)
          .signTls12ServerKeyExchange('k', 'ecdsa_secp256r1_sha256', HASH, HASH, HASH);
        admitted++;
      } catch (e) {
        expect(e).toBeInstanceOf(AdmissionRejectedError);
      }
    }
    expect(admitted).toBeLessThanOrEqual(10 + 100 * 10);
    expect(admitted).toBeGreaterThanOrEqual(100 * 10);
    expect(inner.calls).toBe(admitted);
    expect(new Set(rejects)).toEqual(new Set(['key_budget']));
  });

  it('does not spend a client token when the global budget refuses', async () => {
    const clock = { t: 0 };
    const ops = controller(
      { keyOperationsPerSecond: 1, keyOperationBurst: 1, perClientRatePerSecond: 1, perClientBurst: 1 },
      clock,
    ).wrap(fakeOps());
    await ops.forConnection('a').rsaMasterSecret('k', {} as never);
    await expect(ops.forConnection('b').rsaMasterSecret('k', {} as never)).rejects.toMatchObject({
      reason: 'key_budget',
    });
    clock.t = 1000;
    await expect(ops.forConnection('b').rsaMasterSecret('k', {} as never)).resolves.toBeDefined();
  });

  it('keeps the per-client map bounded', async () => {
    const clock = { t: 0 };
    const adm = controller(
      { maxTrackedClients: 50, keyOperationsPerSecond: 1_000_000, keyOperationBurst: 1_000_000 },
      clock,
    );
    const ops = adm.wrap(fakeOps());
    for (let i = 0; i < 1000; i++) await ops.forConnection(`203.0.113.${i}`).rsaMasterSecret('k', {} as never);
    expect(adm.trackedClients).toBeLessThanOrEqual(50);
  });

  it('passes non-handshake operations through ungated, and is connection-scoped', async () => {
    const clock = { t: 0 };
    const ops = controller({ keyOperationsPerSecond: 1, keyOperationBurst: 1 }, clock).wrap(fakeOps());
    expect(isConnectionScoped(ops)).toBe(true);
    expect(isConnectionScoped(fakeOps())).toBe(false);
    await ops.rsaMasterSecret('k', {} as never);
    await expect(ops.rsaMasterSecret('k', {} as never)).rejects.toBeInstanceOf(AdmissionRejectedError);
    for (let i = 0; i < 5; i++) {
      await expect(ops.ticketKeys()).resolves.toBeDefined();
      await expect(ops.publicKey('k')).resolves.toBeDefined();
      await expect(ops.ping()).resolves.toBeDefined();
    }
  });
});

describe('admission configuration', () => {
  const base = {
    certificates: [{ chainFile: '/dev/null', keyName: 'k' }],
    keyServices: [{ functionName: 'ks' }],
    origin: 'http://127.0.0.1:1',
  };

  it('has defaults sized to a 400/s KMS budget, and a 30 s drain', () => {
    const c = parseEdgeConfig(base);
    expect(c.admission).toEqual(DEFAULT_ADMISSION);
    expect(c.admission.keyOperationsPerSecond).toBe(400);
    expect(c.drainTimeoutMs).toBe(30_000);
  });

  it('defaults the burst to a tenth of a configured budget', () => {
    expect(parseEdgeConfig({ ...base, admission: { keyOperationsPerSecond: 50 } }).admission.keyOperationBurst).toBe(5);
    expect(parseEdgeConfig({ ...base, admission: { keyOperationsPerSecond: 3 } }).admission.keyOperationBurst).toBe(1);
  });

  it('takes KEYLESS_KMS_BUDGET and KEYLESS_DRAIN_TIMEOUT_MS from the environment', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-adm-'));
    const file = path.join(dir, 'edge.json');
    fs.writeFileSync(file, JSON.stringify({ ...base, admission: { perClientBurst: 7 } }));
    try {
      const c = loadEdgeConfig(file, { KEYLESS_KMS_BUDGET: '120', KEYLESS_DRAIN_TIMEOUT_MS: '5000' });
      // A budget of 120/s for a fleet of one: burst + one second of refill = 120 (fleet-kms-budget.test.ts).
      expect(c.admission).toMatchObject({ keyOperationsPerSecond: 108, keyOperationBurst: 12, perClientBurst: 7 });
      expect(c.drainTimeoutMs).toBe(5000);
      expect(() => loadEdgeConfig(file, { KEYLESS_KMS_BUDGET: 'lots' })).toThrow(/KEYLESS_KMS_BUDGET/);
      expect(() => loadEdgeConfig(file, { KEYLESS_DRAIN_TIMEOUT_MS: '0' })).toThrow(/drainTimeoutMs/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [{ admission: { keyOperationsPerSecond: 0 } }, 'admission.keyOperationsPerSecond'],
    [{ admission: { perClientBurst: 1.5 } }, 'admission.perClientBurst'],
    [{ admission: { keyOperationsPerSecond: 10, keyOperationBurst: 11 } }, 'admission.keyOperationBurst'],
    [{ admission: { kmsBudget: 10 } }, 'admission.kmsBudget'],
    [{ admission: 5 }, 'admission'],
    [{ drainTimeoutMs: -1 }, 'drainTimeoutMs'],
  ])('refuses %j naming the field', (extra, field) => {
    try {
      parseEdgeConfig({ ...base, ...extra });
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).field).toBe(field);
    }
  });
});

describe('admission in the TLS engine', () => {
  it('answers a refused full handshake with handshake_failure at once, and counts it', async () => {
    const pki = makeTestPki();
    const leaf = pki.leaf('ec', 'p256', ['localhost']);
    const keys = new InProcessKeys(new Map([['ec-key', leaf.key]]));
    const counting = countTls13Signatures(keys);
    const rejects: AdmissionReason[] = [];
    const adm = new AdmissionController(
      { ...DEFAULT_ADMISSION, perClientRatePerSecond: 1, perClientBurst: 1 },
      { onReject: (r) => rejects.push(r) },
    );
    const server = new TlsServer({
      certificates: new CertificateStore([loadCertificate(leaf.chainPem, 'ec-key')]),
      keyOperations: adm.wrap(counting.keys),
      handshakeTimeoutMs: 3000,
    });
    const serverErrors: HandshakeError[] = [];
    server.on('tlsClientError', (e) => serverErrors.push(e));
    server.on('secureConnection', (c) => c.end());
    const { port } = await server.listen(0);
    const handshake = (): Promise<string> =>
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
      expect(await handshake()).toBe('ok');
      expect(await handshake()).toMatch(/alert handshake failure/i);
      expect(counting.signed).toBe(1);
      expect(rejects).toEqual(['client_rate']);
      expect(serverErrors.filter((e) => e.sentAlert).map((e) => e.sentAlert)).toEqual(['handshake_failure']);
    } finally {
      await server.close(true);
      pki.cleanup();
    }
  });
});
