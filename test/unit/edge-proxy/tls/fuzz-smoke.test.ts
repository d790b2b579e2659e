/**
 * A short, seeded run of every fuzz target (test/fuzz, docs/fuzzing.md) inside `npm test`: the
 * seed corpus of real ClientHellos and a few hundred mutants each must end in a TLS alert or a
 * clean close — never an internal error, a hang or an escaped exception — and the coverage
 * feedback must find new blocks. Every input ever saved to test/fuzz/crashes/ is replayed as a
 * regression test. The long run is `npm run fuzz`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { replay, type FuzzReport } from '../../../fuzz/engine';
import { allTargets, corpusDir, FuzzTarget, loadCorpus, runConnection, serverFixture } from '../../../fuzz/targets';
import { KeyOperationError, KeyOperations } from '../../../../edge-proxy/src/tls/key-operations';
import { createTlsContext } from '../../../../edge-proxy/src/tls/context';

/** Fixed: the same mutation stream every run. */
const SEED = 20260914;
const EXECS: Record<string, number> = {
  record: 250,
  'handshake-parser': 250,
  'server-tls13': 200,
  'server-tls12': 200,
  'server-mtls': 200,
};

let targets: FuzzTarget[];
const crashDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-fuzz-smoke-'));

beforeAll(() => {
  targets = allTargets();
});

afterAll(() => {
  for (const t of targets) t.close?.();
  fs.rmSync(crashDir, { recursive: true, force: true });
});

describe('seed corpus', () => {
  it('holds real ClientHellos from OpenSSL, GnuTLS, Go, Chromium, curl and Node', () => {
    const names = fs.readdirSync(path.join(corpusDir(), 'client-hello'));
    for (const peer of ['openssl', 'gnutls', 'go', 'chromium', 'curl', 'node'])
      expect(names.filter((n) => n.startsWith(`${peer}-`)).length).toBeGreaterThan(0);
    for (const hello of loadCorpus('client-hello')) {
      expect(hello[0]).toBe(22); // a handshake record…
      expect(hello[5]).toBe(1); // …carrying a ClientHello
    }
  });
});

/** One seeded run in a new process (test/fuzz/smoke-child.ts says why), from the build `npm test` made. */
function fuzzInFreshProcess(name: string): Promise<FuzzReport> {
  const child = path.join(__dirname, '../../../../dist/test/fuzz/smoke-child.js');
  if (!fs.existsSync(child)) throw new Error(`${child} is missing: run \`npm run build\` (npm test does it first)`);
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [child, name, String(SEED), String(EXECS[name]), crashDir],
      { maxBuffer: 64 << 20, timeout: 170_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`fuzz run of ${name} failed: ${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout.trim().split('\n').pop()!) as FuzzReport);
      },
    );
  });
}

describe.each(Object.keys(EXECS))('fuzz target %s', (name) => {
  it('survives the seeds and a seeded mutation run, and coverage grows', async () => {
    const report = await fuzzInFreshProcess(name);
    const findings = report.findings.map(
      (f) => `${f.kind} ${f.label}: ${f.detail.split('\n').slice(0, 4).join(' | ')}`,
    );
    expect(findings).toEqual([]);
    expect(report.execs).toBe(EXECS[name]);
    expect(report.blocksAtEnd).toBeGreaterThan(report.blocksAfterSeeds);
    // Inputs end in protocol outcomes: alerts and clean closes, counted by kind.
    expect(Object.values(report.outcomes).reduce((a, b) => a + b, 0)).toBe(report.execs + report.seeds);
  }, 180_000);
});

describe('fuzz target server-mtls', () => {
  it('its seeds reach the client Certificate: a real chain is accepted, a corrupted one refused', async () => {
    const target = targets.find((t) => t.name === 'server-mtls')!;
    const helloAndChain = target.seeds[0];
    expect(await target.run(helloAndChain)).toEqual({ kind: 'ok', label: 'closed at EOF' }); // chain verified, waiting for ClientKeyExchange
    const corrupted = Buffer.from(helloAndChain);
    corrupted[corrupted.length - 40] ^= 0xff; // inside the intermediate's signature
    expect(await target.run(corrupted)).toMatchObject({
      kind: 'ok',
      label: expect.stringMatching(/^alert (bad_certificate|unknown_ca|decrypt_error)$/),
    });
  });
});

describe('regressions from test/fuzz/crashes', () => {
  it('every saved crashing or hanging input now ends in an alert or a clean close', async () => {
    const dir = path.join(path.dirname(corpusDir()), 'crashes');
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.bin')) : [];
    const failing: string[] = [];
    for (const t of targets) {
      const mine = files.filter((f) => f.startsWith(`${t.name}-`)).map((f) => path.join(dir, f));
      for (const r of await replay(t, mine))
        failing.push(`${path.basename(r.file)}: ${r.outcome.kind} ${r.outcome.label}`);
    }
    expect(failing).toEqual([]);
  }, 120_000);
});

/** The key operations with some methods replaced (the rest still reach the original object). */
function withOverride(ops: KeyOperations, override: Partial<KeyOperations>): KeyOperations {
  return Object.assign(Object.create(ops) as KeyOperations, override);
}

describe('the oracle itself', () => {
  it('reports an internal error (a TypeError inside the handshake) as a crash, not as an alert', async () => {
    const fixture = serverFixture();
    try {
      const broken = createTlsContext({
        certificates: fixture.ctx.certificates,
        keyOperations: withOverride(fixture.ctx.keyOperations, {
          signTls13CertificateVerify: () => Promise.reject(new TypeError('simulated bug')),
        }),
      });
      const outcome = await runConnection(
        broken,
        fs.readFileSync(path.join(corpusDir(), 'client-hello', 'openssl-default.bin')),
      );
      expect(outcome).toMatchObject({ kind: 'crash', label: 'internal error' });
      expect((outcome as { detail: string }).detail).toContain('simulated bug');
    } finally {
      fixture.pki.cleanup();
    }
  });

  it('accepts a key-service refusal as a protocol outcome', async () => {
    const fixture = serverFixture();
    try {
      const refusing = createTlsContext({
        certificates: fixture.ctx.certificates,
        keyOperations: withOverride(fixture.ctx.keyOperations, {
          signTls13CertificateVerify: () => Promise.reject(new KeyOperationError('throttled', 'test')),
        }),
      });
      const outcome = await runConnection(
        refusing,
        fs.readFileSync(path.join(corpusDir(), 'client-hello', 'openssl-default.bin')),
      );
      expect(outcome).toEqual({ kind: 'ok', label: 'key operation throttled' });
    } finally {
      fixture.pki.cleanup();
    }
  });
});
