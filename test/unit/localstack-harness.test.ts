/**
 * The parts of the LocalStack suite (`npm run test:localstack`, test/localstack/) that run without
 * Docker: the preflight refuses clearly when Docker or LocalStack is missing, the key-service Lambda
 * bundle builds like the CDK stack's and its handler answers from the bundle, the deployment zip is
 * valid, and fidelity results are classified against the known LocalStack deviations.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { builtinModules } from 'node:module';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleKeyService, ARCHITECTURE, HANDLER, RUNTIME, TARGET, type KeyServiceBundle } from '../localstack/bundle';
import { startFakeLocalStack } from '../localstack/fake-localstack';
import { startLocalStackStack } from '../localstack/stack';
import {
  classifyFidelity,
  fidelityFailed,
  firstLine,
  loadKnownDeviations,
  renderFidelityReport,
} from '../localstack/fidelity';
import { createZip, readZip } from '../localstack/zip';
import { havePeer } from '../helpers/peers';
import { CreateAliasCommand, CreateKeyCommand, GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { startLocalKms } from '../../local/kms';

/** Run a script with node in a child process, awaited (this process's servers keep answering). */
function runNode(
  script: string,
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const REPO_ROOT = path.resolve(__dirname, '../..');
const RUNNER = path.join(REPO_ROOT, 'dist/test/localstack/run.js');
const BUILTINS = new Set(builtinModules);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runRunner(env: NodeJS.ProcessEnv): Promise<Run> {
  if (!fs.existsSync(RUNNER)) throw new Error(`${RUNNER} is missing: run \`npm run build\` (npm test does it first)`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUNNER], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A minimal environment: nothing from the caller's AWS/Docker setup leaks into the runner. */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { HOME: os.tmpdir(), PATH: process.env.PATH ?? '', ...extra };
}

function expectHowToRun(r: Run): void {
  expect(r.code).toBe(2);
  expect(r.stdout).not.toMatch(/deploy:/);
  expect(r.stderr).toContain('test:localstack: cannot run:');
  expect(r.stderr).toContain('docker compose up -d');
  expect(r.stderr).toContain('npm run test:localstack');
  expect(r.stderr).toContain('LOCALSTACK_AUTH_TOKEN');
  expect(r.stderr).toContain('localstack/localstack:4.14.0');
}

describe('test:localstack preflight', () => {
  it('without the docker command: says Docker is not installed, how to run the suite, and exits 2', async () => {
    const emptyBin = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-nodocker-'));
    try {
      const r = await runRunner(baseEnv({ PATH: emptyBin }));
      expectHowToRun(r);
      expect(r.stderr).toMatch(/Docker is not installed: the `docker` command is not on PATH/);
    } finally {
      fs.rmSync(emptyBin, { recursive: true, force: true });
    }
  });

  const withDockerClient = havePeer('docker', 'the dead-socket preflight case is skipped') ? it : it.skip;
  withDockerClient(
    'with DOCKER_HOST on a dead socket: says the Docker engine is not reachable, and exits 2',
    async () => {
      const sock = path.join(os.tmpdir(), `keyless-dead-${process.pid}.sock`);
      const r = await runRunner(baseEnv({ DOCKER_HOST: `unix://${sock}` }));
      expectHowToRun(r);
      expect(r.stderr).toMatch(/the Docker engine is not reachable \(`docker info`: .*keyless-dead-/);
    },
  );

  it('with LocalStack down: names the endpoint it tried, and exits 2', async () => {
    const srv = http.createServer();
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((res) => srv.close(() => res()));
    const r = await runRunner(
      baseEnv({ KEYLESS_LOCALSTACK_SKIP_DOCKER_CHECK: '1', AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` }),
    );
    expectHowToRun(r);
    expect(r.stderr).toContain(`LocalStack is not reachable at http://127.0.0.1:${port} (ECONNREFUSED)`);
  });

  it('with a LocalStack that lacks KMS and Lambda: names the missing services, and exits 2', async () => {
    const srv = http.createServer((req, res) => {
      res.writeHead(req.url === '/_localstack/health' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ services: { s3: 'running', kms: 'disabled' }, edition: 'community', version: '4.14.0' }),
      );
    });
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    try {
      const port = (srv.address() as AddressInfo).port;
      const r = await runRunner(
        baseEnv({ KEYLESS_LOCALSTACK_SKIP_DOCKER_CHECK: '1', AWS_ENDPOINT_URL: `http://127.0.0.1:${port}/` }),
      );
      expectHowToRun(r);
      expect(r.stderr).toContain('does not offer kms and lambda (kms: disabled, lambda: absent)');
    } finally {
      await new Promise<void>((res) => srv.close(() => res()));
    }
  });
});

describe('the key-service Lambda bundle', () => {
  let tmp: string;
  let bundle: KeyServiceBundle;

  beforeAll(async () => {
    // Outside the repository: the bundle must need no node_modules at all (the SDK is bundled).
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-bundle-'));
    bundle = await bundleKeyService(path.join(tmp, 'bundle'));
  }, 60_000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('matches the CDK stack: runtime, esbuild target and architecture', () => {
    const stack = fs.readFileSync(path.join(REPO_ROOT, 'lib/key-service-function.ts'), 'utf8');
    const runtime = /runtime:\s*lambda\.Runtime\.NODEJS_(\d+)_X/.exec(stack)?.[1];
    const target = /target:\s*'(node\d+)'/.exec(stack)?.[1];
    const arch = /architecture:\s*lambda\.Architecture\.(ARM_64|X86_64)/.exec(stack)?.[1];
    expect(`nodejs${runtime}.x`).toBe(RUNTIME);
    expect(target).toBe(TARGET);
    expect(arch === 'ARM_64' ? 'arm64' : 'x86_64').toBe(ARCHITECTURE);
    expect(stack).toMatch(/handler:\s*'handler'/);
    expect(HANDLER).toBe('index.handler');
  });

  it('is one self-contained CommonJS index.js with a source map, zipped', () => {
    const files = readZip(bundle.zip);
    expect([...files.keys()]).toEqual(['index.js', 'index.js.map']);
    expect(files.get('index.js')).toEqual(fs.readFileSync(bundle.entryFile));
    const map = JSON.parse(files.get('index.js.map')!.toString('utf8')) as {
      sourcesContent?: unknown;
      sources: string[];
    };
    expect(map.sourcesContent).toBeUndefined(); // sourcesContent: false, as in the stack
    expect(map.sources.some((s) => s.endsWith('lambdas/key-service/handler.ts'))).toBe(true);
    expect(bundle.warnings).toEqual([]);
    // No module is left for the runtime to resolve, except node's own — and the SDK's optional CRT
    // signer (SigV4a only), which it requires inside a try/catch; esbuild leaves such requires alone.
    const requires = [
      ...files
        .get('index.js')!
        .toString('utf8')
        .matchAll(/require\("([^"]+)"\)/g),
    ].map((m) => m[1]);
    const optional = new Set(['@aws-sdk/signature-v4-crt']);
    expect(requires.filter((m) => !m.startsWith('node:') && !BUILTINS.has(m) && !optional.has(m))).toEqual([]);
  });

  const zipTool = havePeer('unzip', 'the zip is only checked by the built-in reader') ? it : it.skip;
  zipTool('the deployment zip passes `unzip -t`', () => {
    const r = spawnSync('unzip', ['-t', bundle.zipPath], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/No errors detected/);
  });

  it('required from the bundle, its handler answers ping and signs with a kms key, and refuses file custody', async () => {
    // The bundle runs in a child process against the local KMS of this process, so the child is
    // awaited (spawn), never waited for synchronously: this process's KMS must keep answering.
    const kms = await startLocalKms({ port: 0 });
    const client = new KMSClient({
      endpoint: kms.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const created = await client.send(
        new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', Description: 'bundle test' }),
      );
      await client.send(
        new CreateAliasCommand({
          AliasName: 'alias/keyless/test/bundle-dev',
          TargetKeyId: created.KeyMetadata!.KeyId!,
        }),
      );
      const spki = (await client.send(new GetPublicKeyCommand({ KeyId: 'alias/keyless/test/bundle-dev' }))).PublicKey!;
      const hash = crypto.randomBytes(32);
      const script = `
        const { handler } = require(${JSON.stringify(bundle.entryFile)});
        (async () => {
          const ping = await handler({ v: 2, id: 'p-1', op: 'ping' }, { awsRequestId: 'r-1' });
          const sig = await handler({ v: 2, id: 's-1', op: 'tls13.certificate_verify', key: 'dev', scheme: 'ecdsa_secp256r1_sha256', transcriptHash: ${JSON.stringify(hash.toString('base64'))} });
          process.stdout.write('RESULT ' + JSON.stringify({ ping, sig }) + '\\n');
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const kmsEnv = {
        AWS_ENDPOINT_URL_KMS: kms.url,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      };
      const r = await runNode(script, {
        ...kmsEnv,
        KEYLESS_KEYS: JSON.stringify([{ name: 'dev', custody: 'kms', keyId: 'alias/keyless/test/bundle-dev' }]),
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
      const { ping, sig } = JSON.parse(line!.slice('RESULT '.length)) as {
        ping: { ok: boolean; id: string; result: { service: string; keys: unknown[] } };
        sig: { ok: boolean; result: { signature: string } };
      };
      expect(ping).toMatchObject({
        v: 2,
        id: 'p-1',
        ok: true,
        result: { service: 'keyless-key-service', protocol: 2 },
      });
      expect(ping.result.keys).toEqual([{ name: 'dev', custody: 'kms', keySpec: 'UNKNOWN' }]);
      expect(sig.ok).toBe(true);
      const content = Buffer.concat([
        Buffer.alloc(64, 0x20),
        Buffer.from('TLS 1.3, server CertificateVerify'),
        Buffer.from([0]),
        hash,
      ]);
      const publicKey = crypto.createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
      expect(crypto.verify('sha256', content, publicKey, Buffer.from(sig.result.signature, 'base64'))).toBe(true);

      // The production bundle has no file backend: such an entry is a configuration error naming the field.
      const keyFile = path.join(tmp, 'dev.key.pem');
      fs.writeFileSync(
        keyFile,
        crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
        { mode: 0o600 },
      );
      const refused = await runNode(script, {
        ...kmsEnv,
        KEYLESS_KEYS: JSON.stringify([{ name: 'dev', custody: 'file', path: keyFile }]),
      });
      expect(refused.status).toBe(0);
      const out = JSON.parse(
        refused.stdout
          .split('\n')
          .find((l) => l.startsWith('RESULT '))!
          .slice('RESULT '.length),
      ) as { ping: unknown; sig: unknown };
      expect(out.ping).toMatchObject({
        ok: false,
        error: { code: 'internal', message: 'key service is misconfigured (see its logs)' },
      });
      expect(out.sig).toMatchObject({ ok: false, error: { code: 'internal' } });
      expect(refused.stdout + refused.stderr).toMatch(
        /KEYLESS_KEYS\[0\]\.custody: \\?"file\\?" custody is for local development only/,
      );
    } finally {
      client.destroy();
      await kms.close();
    }
  });
});

describe('deployment against a stand-in for LocalStack (the harness, not LocalStack)', () => {
  it('creates the keys, deploys the zip behind `live`, warms it up through the injected endpoint, and the edge serves', async () => {
    const fake = await startFakeLocalStack();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-ls-deploy-'));
    const lines: string[] = [];
    try {
      const stack = await startLocalStackStack({ endpoint: fake.url, workDir: dir, log: (l) => lines.push(l) });
      try {
        expect(stack.state).toMatchObject({ invokedName: 'keyless-key-service:live', runtime: RUNTIME });
        expect(lines.join('\n')).toMatch(
          /public_key localhost-ecdsa \(ECC_NIST_P256\) read from LocalStack KMS inside the function matches the certificate/,
        );
        const body = await new Promise<string>((resolve, reject) => {
          https
            .get(
              {
                host: 'localhost',
                port: stack.state.edgePort,
                path: '/api/tls',
                ca: fs.readFileSync(stack.state.caPath),
              },
              (res) => {
                let b = '';
                res.on('data', (d: Buffer) => (b += d.toString()));
                res.on('end', () => resolve(b));
              },
            )
            .on('error', reject);
        });
        expect(JSON.parse(body)).toMatchObject({
          protocol: 'TLSv1.3',
          viaEdge: true,
          signatureScheme: 'rsa_pss_rsae_sha256',
        });
        expect(fake.invocations.get('keyless-key-service')).toBeGreaterThanOrEqual(4); // ping, 2 × public_key, the handshake
      } finally {
        await stack.stop();
      }
    } finally {
      await fake.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('zip writer', () => {
  it('round-trips stored and deflated entries, and refuses unsafe names', () => {
    const big = Buffer.from('keyless '.repeat(1000));
    const random = crypto.randomBytes(100);
    const zip = createZip([
      { name: 'a/index.js', data: big },
      { name: 'r.bin', data: random },
      { name: 'empty', data: Buffer.alloc(0) },
    ]);
    const back = readZip(zip);
    expect(back.get('a/index.js')).toEqual(big);
    expect(back.get('r.bin')).toEqual(random);
    expect(back.get('empty')).toEqual(Buffer.alloc(0));
    expect(zip.length).toBeLessThan(big.length); // deflated
    expect(createZip([{ name: 'x', data: big }])).toEqual(createZip([{ name: 'x', data: big }])); // deterministic
    for (const name of ['', '/abs', 'a/../b'])
      expect(() => createZip([{ name, data: big }])).toThrow(/invalid entry name/);
    expect(() =>
      createZip([
        { name: 'x', data: big },
        { name: 'x', data: big },
      ]),
    ).toThrow(/duplicate/);
  });
});

describe('KMS fidelity against LocalStack: deviations are reported, never hidden', () => {
  const known = [
    { test: 'A known one', why: 'LocalStack does X', evidence: 'observed' as const },
    { test: 'A fixed one', why: 'was wrong once', evidence: 'predicted' as const },
    { test: 'A renamed one', why: 'gone', evidence: 'observed' as const },
  ];
  const outcome = (fullName: string, status: string, msg = '') => ({
    fullName,
    status,
    failureMessages: msg ? [msg] : [],
  });

  it('separates known deviations, new deviations, fixed ones and stale entries', () => {
    const r = classifyFidelity(
      [
        outcome(
          'A known one',
          'failed',
          '\u001b[2mexpect(\u001b[22mreceived\u001b[2m).rejects\nExpected: "InvalidKeyUsageException"\n    at x (y.ts:1:1)',
        ),
        outcome('A fixed one', 'passed'),
        outcome('A new one', 'failed', 'Error: boom'),
        outcome('Fine', 'passed'),
        outcome('Local only', 'pending'),
      ],
      known,
    );
    expect(r).toMatchObject({ total: 4, passed: 2 });
    expect(r.known.map((k) => k.fullName)).toEqual(['A known one']);
    expect(r.unexpected.map((u) => u.fullName)).toEqual(['A new one']);
    expect(r.nowPassing.map((k) => k.test)).toEqual(['A fixed one']);
    expect(r.stale.map((k) => k.test)).toEqual(['A renamed one']);
    expect(fidelityFailed(r)).toBe(true);
    const text = renderFidelityReport(r, 'http://localhost:4566');
    expect(text).toContain('2/4 behaviours as in AWS KMS');
    expect(text).toContain('✗ A known one');
    expect(text).toContain('got: Expected: "InvalidKeyUsageException"');
    expect(text).toContain('NEW deviations (not in the known list; the run fails): 1');
    expect(text).toContain('✓ A fixed one');
  });

  it('known deviations alone do not fail the run; an empty or crashed run does', () => {
    expect(
      fidelityFailed(classifyFidelity([outcome('A known one', 'failed', 'x'), outcome('Fine', 'passed')], known)),
    ).toBe(false);
    expect(fidelityFailed(classifyFidelity([], known))).toBe(true);
    expect(fidelityFailed(classifyFidelity([outcome('Fine', 'passed')], known, 'beforeAll failed'))).toBe(true);
    expect(firstLine('Error: x\n    at y')).toBe('Error: x');
  });

  it('every listed deviation names a test of the fidelity suite', () => {
    const suite = fs.readFileSync(path.join(REPO_ROOT, 'test/unit/local/kms/kms.test.ts'), 'utf8');
    const list = loadKnownDeviations();
    expect(list.length).toBeGreaterThan(0);
    for (const d of list) {
      expect(['observed', 'predicted']).toContain(d.evidence);
      expect(d.why.length).toBeGreaterThan(10);
      // The test's own title (after its describe names) appears literally in the suite.
      const words = d.test.split(' ');
      const found = words.some((_, i) => words.length - i >= 3 && suite.includes(words.slice(i).join(' ')));
      expect({ test: d.test, found }).toEqual({ test: d.test, found: true });
    }
  });
});
