/**
 * Observability of the key service: CloudWatch EMF metrics through Powertools (the metric contract of
 * lib/naming.ts METRICS.keyService), structured logs through the Powertools Logger, and the handler
 * feeding both — without payloads, and without ever failing a request outside Lambda.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { createLocalHandler } from '../../../../local/lambda/local-key-service';
import {
  createPowertoolsLogger,
  createPowertoolsMetrics,
  type RequestMetrics,
} from '../../../../lambdas/key-service/observability';
import { METRICS } from '../../../../lib/naming';

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('EMF metrics', () => {
  test('per-operation latency, errors by code, KMS latency and throttles, with the deployment dimension', () => {
    const lines: string[] = [];
    const spy = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(String(args[0])));
    try {
      // POWERTOOLS_DEV routes output to the global console; METRICS_DISABLED=false keeps it on.
      // (Each single-metric record is a new Powertools instance that reads the environment.)
      withEnv({ POWERTOOLS_DEV: 'true', POWERTOOLS_METRICS_DISABLED: 'false' }, () => {
        const metrics = createPowertoolsMetrics({ namespace: METRICS.keyServiceNamespace, deployment: 'prod' });
        metrics.request({
          op: 'tls13.certificate_verify',
          outcome: 'throttled',
          latencyMs: 12.5,
          kms: [
            { operation: 'GetPublicKey', ms: 3 },
            { operation: 'Sign', ms: 7, error: 'ThrottlingException' },
          ],
        });
      });
    } finally {
      spy.mockRestore();
    }
    const records = lines.map(
      (l) =>
        JSON.parse(l) as Record<string, unknown> & {
          _aws: {
            CloudWatchMetrics: Array<{
              Namespace: string;
              Dimensions: string[][];
              Metrics: Array<{ Name: string; Unit: string }>;
            }>;
          };
        },
    );
    const byName = (name: string) => records.filter((r) => r._aws.CloudWatchMetrics[0].Metrics[0].Name === name);
    for (const r of records) {
      expect(r._aws.CloudWatchMetrics[0].Namespace).toBe('Keyless/KeyService');
      expect(r.Deployment).toBe('prod');
    }
    expect(byName(METRICS.keyService.operationLatency)).toEqual([
      expect.objectContaining({ Operation: 'tls13.certificate_verify', OperationLatency: 12.5 }),
    ]);
    expect(byName(METRICS.keyService.operationLatency)[0]._aws.CloudWatchMetrics[0].Dimensions[0]).toEqual(
      expect.arrayContaining(['Operation', 'Deployment']),
    );
    expect(byName(METRICS.keyService.errors)).toEqual([expect.objectContaining({ Code: 'throttled', Errors: 1 })]);
    expect(byName(METRICS.keyService.kmsLatency).map((r) => [r.Operation, r.KmsLatency])).toEqual([
      ['GetPublicKey', 3],
      ['Sign', 7],
    ]);
    expect(byName(METRICS.keyService.kmsThrottles)).toEqual([
      expect.objectContaining({ Operation: 'Sign', KmsThrottles: 1 }),
    ]);
  });

  test('outside Lambda, with no Powertools environment, recording never throws', () => {
    const quiet = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const metrics = withEnv({ POWERTOOLS_METRICS_NAMESPACE: undefined, POWERTOOLS_DEV: undefined }, () =>
        createPowertoolsMetrics(),
      );
      expect(() => metrics.request({ op: 'ping', outcome: 'ok', latencyMs: 0.1, kms: [] })).not.toThrow();
      expect(() =>
        metrics.request({ op: '', outcome: '', latencyMs: Number.NaN, kms: [{ operation: '', ms: -1 }] }),
      ).not.toThrow();
    } finally {
      quiet.mockRestore();
    }
  });
});

describe('structured logs', () => {
  test('the Powertools adapter writes JSON with level, message and the record fields', () => {
    const out: Array<[string, string]> = [];
    const logger = withEnv({ POWERTOOLS_DEV: 'true' }, () => new Logger({ serviceName: 'keyless-key-service' }));
    const spies = (['info', 'warn', 'error'] as const).map((level) =>
      jest.spyOn(console, level).mockImplementation((...args: unknown[]) => void out.push([level, String(args[0])])),
    );
    try {
      const log = createPowertoolsLogger(logger);
      log({ level: 'info', msg: 'key_service_request', id: 'a', op: 'ping', outcome: 'ok' });
      log({ level: 'warn', msg: 'key_service_request', id: 'b', outcome: 'bad_request' });
      log({ level: 'error', msg: 'key_service_config_error', reason: 'x' });
    } finally {
      spies.forEach((s) => s.mockRestore());
    }
    expect(out.map(([level]) => level)).toEqual(['info', 'warn', 'error']);
    expect(JSON.parse(out[0][1])).toMatchObject({
      level: 'INFO',
      message: 'key_service_request',
      service: 'keyless-key-service',
      id: 'a',
      op: 'ping',
      outcome: 'ok',
    });
    expect(JSON.parse(out[2][1])).toMatchObject({ level: 'ERROR', message: 'key_service_config_error', reason: 'x' });
  });
});

describe('the handler feeds the metrics sink', () => {
  test('one record per request, including rejected ones, with no payload', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-obs-'));
    try {
      const file = path.join(dir, 'k.pem');
      fs.writeFileSync(
        file,
        crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
        { mode: 0o600 },
      );
      const records: RequestMetrics[] = [];
      const h = createLocalHandler({
        keys: [{ name: 'k', custody: 'file', path: file }],
        ticketKeys: null,
        logger: () => undefined,
        metrics: { request: (m) => records.push(m) },
      });
      await h({ v: 2, id: 'a', op: 'ping' });
      await h({ v: 2, id: 'b', op: 'public_key', key: 'nope' });
      await h({ v: 2, id: 'c', op: 'no-such-op' });
      await h('not an object');
      await h({ v: 2, id: 'd', op: 'ticket_keys' });
      expect(records.map((r) => [r.op, r.outcome])).toEqual([
        ['ping', 'ok'],
        ['public_key', 'unknown_key'],
        ['invalid', 'unsupported'],
        ['invalid', 'bad_request'],
        ['ticket_keys', 'unavailable'],
      ]);
      for (const r of records) {
        expect(Object.keys(r).sort()).toEqual(['kms', 'latencyMs', 'op', 'outcome']);
        expect(r.latencyMs).toBeGreaterThanOrEqual(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sinks that fail', () => {
  test('a throwing logger or metrics sink never fails a request', async () => {
    const h = createLocalHandler({
      keys: [],
      backends: [],
      ticketKeys: null,
      logger: () => {
        throw new Error('log sink down');
      },
      metrics: {
        request: () => {
          throw new Error('metrics sink down');
        },
      },
    });
    await expect(h({ v: 2, id: 'a', op: 'ping' })).resolves.toMatchObject({ ok: true });
    await expect(h({ v: 2, id: 'b', op: 'nope' })).resolves.toMatchObject({
      ok: false,
      error: { code: 'unsupported' },
    });
  });
});
