/**
 * Fleet-wide resumption on real processes: the local stack's edge (A) and a second edge process (B)
 * against the same key service. A full handshake on A resumes on B with no key operation; with the
 * key service stopped, resumptions still succeed while full handshakes fail fast. The fleet's ticket
 * key lives in the local SSM Parameter Store only as KMS ciphertext, with an Expiration policy.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { REPO_ROOT, startStackProcess, StackProcess } from '../helpers/dev-stack-process';
import { havePeer, runPeer, httpGet } from '../helpers/peers';
import { DescribeParametersCommand, GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';

let stack: StackProcess;
let edgeB: ChildProcess;
let portB: number;

beforeAll(async () => {
  // The production key-operation deadline (1 s): full handshakes must fail fast while the key service is stopped.
  stack = await startStackProcess({ KEYLESS_DEV_KEY_OPERATION_TIMEOUT_MS: '1000' });
  const config = JSON.parse(fs.readFileSync(path.join(stack.dir, 'edge.json'), 'utf8')) as Record<string, unknown>;
  const fileB = path.join(stack.dir, 'edge-b.json');
  fs.writeFileSync(
    fileB,
    JSON.stringify({ ...config, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } }),
  );
  edgeB = spawn(process.execPath, [path.join(REPO_ROOT, 'dist/edge-proxy/src/main.js')], {
    env: {
      PATH: process.env.PATH,
      KEYLESS_EDGE_CONFIG: fileB,
      AWS_ENDPOINT_URL_LAMBDA: stack.state.keyServiceUrl,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  portB = await new Promise<number>((resolve, reject) => {
    let out = '';
    edgeB.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"msg":"edge listening","tlsPort":(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    edgeB.once('exit', (code) => reject(new Error(`edge B exited ${code}: ${out}`)));
  });
}, 90_000);

afterAll(async () => {
  if (stack) {
    try {
      process.kill(stack.state.pids.keyService, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  edgeB?.kill('SIGKILL');
  await stack?.stop();
});

/** Signatures made so far: the key service logs one line per operation. */
const signatures = (): number =>
  (stack.output().match(/"op":"tls1[23]\.(certificate_verify|server_key_exchange)"/g) ?? []).length;

function handshake(
  port: number,
  session?: Buffer,
  maxVersion: tls.SecureVersion = 'TLSv1.3',
): Promise<{ ok: boolean; reused?: boolean; session?: Buffer; error?: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let latest: Buffer | undefined;
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: stack.caPem,
      session,
      maxVersion,
      ALPNProtocols: ['http/1.1'],
    });
    s.on('session', (b: Buffer) => (latest = b));
    s.once('secureConnect', () => {
      const reused = s.isSessionReused();
      s.write(httpGet('/api/tls'));
      s.on('data', () => undefined);
      s.once('end', () => resolve({ ok: true, reused, session: latest, ms: Date.now() - started }));
    });
    s.once('error', (e) => resolve({ ok: false, error: e.message, ms: Date.now() - started }));
  });
}

describe('resumption across edges', () => {
  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    '%s: a full handshake on edge A resumes on edge B with no signature',
    async (v) => {
      const first = await handshake(stack.state.edgePort, undefined, v);
      expect(first).toMatchObject({ ok: true, reused: false });
      await new Promise((r) => setTimeout(r, 100));
      const before = signatures();
      const second = await handshake(portB, first.session, v);
      expect(second).toMatchObject({ ok: true, reused: true });
      await new Promise((r) => setTimeout(r, 100));
      expect(signatures()).toBe(before);
    },
  );

  const maybe = havePeer('openssl') ? it : it.skip;
  maybe('openssl -sess_out on edge A, -sess_in on edge B', async () => {
    const sess = path.join(stack.dir, 'openssl.sess');
    const args = (port: number) => [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      stack.state.caPath,
      '-tls1_3',
      '-ign_eof',
    ];
    const a = await runPeer('openssl', [...args(stack.state.edgePort), '-sess_out', sess], {
      input: httpGet('/api/tls'),
    });
    expect(a.stdout).toContain('New, TLSv1.3');
    const b = await runPeer('openssl', [...args(portB), '-sess_in', sess], { input: httpGet('/api/tls') });
    expect(b.stdout).toContain('Reused, TLSv1.3');
    expect(b.stdout).toMatch(/"resumed": ?true/);
  });
});

describe('the ticket-key store', () => {
  it('holds the current epoch as one Advanced-tier parameter of KMS ciphertext, with an Expiration policy', async () => {
    await handshake(stack.state.edgePort);
    const ssm = new SSMClient({
      endpoint: stack.state.ssmUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const epoch = Math.floor(Date.now() / 3_600_000);
      const listed = await ssm.send(new GetParametersByPathCommand({ Path: '/keyless/dev/ticket-keys/' }));
      const names = (listed.Parameters ?? []).map((p) => p.Name);
      expect(names).toContain(`/keyless/dev/ticket-keys/${epoch}`);
      expect(names.every((n) => Number(n!.split('/').pop()) >= epoch - 1)).toBe(true);
      const value = Buffer.from(
        listed.Parameters!.find((p) => p.Name === `/keyless/dev/ticket-keys/${epoch}`)!.Value!,
        'base64',
      );
      expect(value.length).toBeGreaterThan(32); // a KMS ciphertext blob, not the 32-byte key
      const described = await ssm.send(
        new DescribeParametersCommand({
          ParameterFilters: [{ Key: 'Name', Values: [`/keyless/dev/ticket-keys/${epoch}`] }],
        }),
      );
      expect(described.Parameters?.[0]).toMatchObject({
        Tier: 'Advanced',
        Policies: [expect.objectContaining({ PolicyType: 'Expiration' })],
      });
    } finally {
      ssm.destroy();
    }
  });
});

describe('with the key service stopped', () => {
  it('still resumes sessions, while full handshakes fail fast', async () => {
    const first = await handshake(stack.state.edgePort);
    expect(first.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    process.kill(stack.state.pids.keyService, 'SIGSTOP');
    try {
      const resumed = await handshake(portB, first.session);
      expect(resumed).toMatchObject({ ok: true, reused: true });
      const full = await handshake(portB);
      expect(full.ok).toBe(false);
      expect(full.ms).toBeLessThan(4000);
    } finally {
      process.kill(stack.state.pids.keyService, 'SIGCONT');
    }
  });
});
