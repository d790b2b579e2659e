/**
 * A full key rotation on the local stack (`keyless dev` as a child process) while a
 * load generator keeps opening new TLS connections. Every step runs through the `keyless` binary
 * (`rotate ... --local`), as an operator would:
 *
 *   slot "site" gets its first generation (site-1), then rotates to site-2 under load:
 *   new-key → issue (dev CA, imported staged) → promote → SIGHUP → retire → SIGHUP.
 *
 * Asserted: zero failed handshakes across the whole rotation; every handshake that starts after the
 * edge reloaded the promoted store serves the new leaf, whose public key is the new KMS key's (and
 * the client verified the CertificateVerify made with it); after retire the old KMS key is disabled
 * and the edge holds no retiring certificate any more. Needs `npm run build` (npm test does it).
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { DescribeKeyCommand, GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { KEYLESS_BIN, REPO_ROOT, startStackProcess, type StackProcess } from '../helpers/dev-stack-process';

jest.setTimeout(240_000);

const HOST = 'site.localhost';
const CONCURRENCY = 3;

let stack: StackProcess;
let kms: KMSClient;

beforeAll(async () => {
  stack = await startStackProcess();
  kms = new KMSClient({
    endpoint: stack.state.kmsUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 2,
  });
});

afterAll(async () => {
  kms?.destroy();
  if (stack) {
    await stack.stop();
    fs.rmSync(stack.dir, { recursive: true, force: true });
  }
});

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

function keyless(...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [KEYLESS_BIN, ...args, '--local', '--dev-dir', stack.dir],
      {
        cwd: REPO_ROOT,
        timeout: 120_000,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function rotate(...args: string[]): Promise<CliRun> {
  const r = await keyless('rotate', 'site', ...args);
  if (r.code !== 0) throw new Error(`keyless rotate site ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${stack.state.adminPort}/metrics`)).text();
}

/** The edge has loaded the staged certificate of `keyName` and the key service confirmed its key. */
function stagedOk(keyName: string): Promise<true> {
  return waitFor(`the edge's staged check of ${keyName}`, async () =>
    (await metrics()).includes(`keyless_edge_staged_certificate_check{key_name="${keyName}",result="ok"} 1`)
      ? true
      : undefined,
  );
}

/** SIGHUP the edge and wait for its reload to finish; returns the reload's log line. */
async function sighup(): Promise<Record<string, unknown>> {
  const mark = stack.edgeLogs().length;
  process.kill(stack.state.pids.edge, 'SIGHUP');
  return waitFor('the SIGHUP reload', () =>
    stack
      .edgeLogs()
      .slice(mark)
      .find((l) => l.msg === 'certificates reloaded' && l.trigger === 'sighup'),
  );
}

async function kmsSpki(keyName: string): Promise<Buffer> {
  return Buffer.from(
    (await kms.send(new GetPublicKeyCommand({ KeyId: `alias/keyless/dev/keys/${keyName}` }))).PublicKey!,
  );
}

interface Handshake {
  startedAt: number;
  ok: boolean;
  error?: string;
  fingerprint?: string;
  spki?: Buffer;
  protocol?: string | null;
}

/** Opens new TLS connections continuously (CONCURRENCY at a time) until stopped. */
function startLoad(): { results: Handshake[]; stop(): Promise<void> } {
  const results: Handshake[] = [];
  let running = true;
  const once = (): Promise<Handshake> =>
    new Promise((resolve) => {
      const startedAt = performance.now();
      const s = tls.connect({
        host: '127.0.0.1',
        port: stack.state.edgePort,
        servername: HOST,
        ca: stack.caPem,
        ALPNProtocols: ['http/1.1'],
      });
      let settled = false;
      const done = (h: Omit<Handshake, 'startedAt'>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(backstop);
        s.destroy();
        resolve({ startedAt, ...h });
      };
      // Generous: a loaded 2-core machine runs the whole stack and this test.
      const backstop = setTimeout(() => done({ ok: false, error: 'client backstop (30 s)' }), 30_000);
      s.once('secureConnect', () => {
        const peer = s.getPeerX509Certificate();
        if (!s.authorized || !peer)
          return done({ ok: false, error: `not authorized: ${String(s.authorizationError)}` });
        done({
          ok: true,
          fingerprint: peer.fingerprint256,
          spki: peer.publicKey.export({ type: 'spki', format: 'der' }),
          protocol: s.getProtocol(),
        });
      });
      s.once('error', (e) => done({ ok: false, error: e.message }));
      s.once('close', () => done({ ok: false, error: 'closed before the handshake finished' }));
    });
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (running) results.push(await once());
  });
  return {
    results,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

function leafOfEntry(keyName: string): crypto.X509Certificate {
  const entry = JSON.parse(fs.readFileSync(path.join(stack.dir, 'certs', `${keyName}.json`), 'utf8')) as {
    chainPem: string;
  };
  return new crypto.X509Certificate(entry.chainPem.slice(0, entry.chainPem.indexOf('-----END CERTIFICATE-----') + 25));
}

it('rotates a slot under continuous load: no failed handshake, the new certificate only after promotion, the old key disabled after retire', async () => {
  // --- The slot's first generation (no load yet). ---
  await rotate('new-key');
  await rotate('issue', '--dev-ca', '--dns', HOST);
  await stagedOk('site-1');
  await rotate('promote');
  await sighup();
  const site1 = leafOfEntry('site-1');

  const load = startLoad();
  try {
    await waitFor('handshakes with site-1', () => (load.results.filter((r) => r.ok).length >= 10 ? true : undefined));
    expect(load.results.every((r) => r.fingerprint === site1.fingerprint256)).toBe(true);

    // --- Rotation to site-2 under load. ---
    const planned = await rotate('new-key', '--dry-run');
    expect(planned.stdout).toMatch(/would create KMS key site-2/);
    await rotate('new-key');
    await rotate('issue', '--dev-ca');
    // Staged: loaded and checked by the edge, never served.
    await stagedOk('site-2');
    const site2 = leafOfEntry('site-2');
    expect(load.results.some((r) => r.fingerprint === site2.fingerprint256)).toBe(false);
    // Refusals on the way: retire before promote.
    const early = await keyless('rotate', 'site', 'retire');
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/not promoted/);

    await rotate('promote');
    const reloaded = await sighup();
    const swappedAt = performance.now();
    expect(reloaded.certificates).toEqual(
      expect.arrayContaining([
        { keyName: 'site-2', hostnames: [HOST], state: 'live' },
        { keyName: 'site-1', hostnames: [HOST], state: 'retiring' },
      ]),
    );
    const afterPromote = load.results.length;
    await waitFor('handshakes after promotion', () =>
      load.results.slice(afterPromote).filter((r) => r.ok && r.startedAt > swappedAt).length >= 20 ? true : undefined,
    );
    const newSpki = await kmsSpki('site-2');
    const after = load.results.filter((r) => r.startedAt > swappedAt);
    expect(after.length).toBeGreaterThanOrEqual(20);
    for (const r of after) {
      expect(r).toMatchObject({ ok: true, fingerprint: site2.fingerprint256 });
      // The leaf carries the new KMS key; the client verified the CertificateVerify against it.
      expect(r.spki!.equals(newSpki)).toBe(true);
    }

    // Retire too early is refused; after the (short) drain it removes site-1 and disables its key.
    const tooEarly = await keyless('rotate', 'site', 'retire', '--drain-seconds', '3600');
    expect(tooEarly.code).toBe(2);
    expect(tooEarly.stderr).toMatch(/drain period is not over/);
    await sleep(2500);
    await rotate('retire', '--drain-seconds', '2');
    const afterRetire = await sighup();
    expect(afterRetire.certificates).toEqual([
      expect.objectContaining({ keyName: 'localhost-rsa' }),
      expect.objectContaining({ keyName: 'localhost-ecdsa' }),
      { keyName: 'site-2', hostnames: [HOST], state: 'live' },
    ]);
    expect(
      (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/keyless/dev/keys/site-1' }))).KeyMetadata?.KeyState,
    ).toBe('Disabled');
    expect(fs.existsSync(path.join(stack.dir, 'certs', 'site-1.json'))).toBe(false);
    expect(await metrics()).toMatch(/keyless_edge_certificates\{state="retiring"\} 0/);
    const afterRetireIndex = load.results.length;
    await waitFor('handshakes after retire', () =>
      load.results.slice(afterRetireIndex).filter((r) => r.ok).length >= 10 ? true : undefined,
    );
  } finally {
    await load.stop();
  }

  // The whole rotation: not one handshake failed.
  const failures = load.results.filter((r) => !r.ok);
  expect(failures).toEqual([]);
  expect(load.results.length).toBeGreaterThanOrEqual(50);
  process.stdout.write(`rotation under load: ${load.results.length} handshakes, 0 failed\n`);
  const plan = await rotate('--json');
  expect(JSON.parse(plan.stdout)).toMatchObject({
    state: { next: 'new-key', entries: [{ keyName: 'site-2', state: 'live' }], orphanKeys: [] },
  });
});
