/**
 * The product's promise, checked on the running local stack: the edge process holds no private key
 * (its configuration, environment and files contain none), every full handshake's signature comes
 * from the key service, and when the key service is stopped new handshakes fail with an alert
 * within the key-operation deadline instead of hanging — and recover when it is back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { isAlive, startStackProcess, StackProcess } from '../helpers/dev-stack-process';
import { runPeer, httpGet } from '../helpers/peers';

let stack: StackProcess;

beforeAll(async () => {
  // The production key-operation deadline (1 s): the fail-fast bounds below are asserted against it.
  stack = await startStackProcess({ KEYLESS_DEV_KEY_OPERATION_TIMEOUT_MS: '1000' });
}, 90_000);

afterAll(async () => {
  if (stack && isAlive(stack.state.pids.keyService)) process.kill(stack.state.pids.keyService, 'SIGCONT');
  await stack?.stop();
});

/** Base64 bodies of every private key the local KMS holds (the only place they exist). */
function kmsPrivateKeyBodies(): string[] {
  const kmsDir = path.join(stack.dir, 'kms');
  const bodies: string[] = [];
  for (const f of fs.readdirSync(kmsDir)) {
    const text = fs.readFileSync(path.join(kmsDir, f), 'utf8');
    for (const m of text.matchAll(/-----BEGIN [A-Z ]*PRIVATE KEY-----([\s\S]*?)-----END/g))
      bodies.push(m[1].replace(/\\n|\s/g, ''));
  }
  return bodies;
}

function handshake(timeoutMs = 5000): Promise<{ ok: boolean; error?: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: stack.state.edgePort, servername: 'localhost', ca: stack.caPem });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, error: 'client timeout', ms: Date.now() - started });
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ ok: true, ms: Date.now() - started });
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: e.message, ms: Date.now() - started });
    });
  });
}

describe('the edge holds no private key', () => {
  it('runs as its own process, separate from the key service', () => {
    const { edge, keyService, devStack } = stack.state.pids;
    expect(new Set([edge, keyService, devStack]).size).toBe(3);
    expect(isAlive(edge)).toBe(true);
  });

  it('has no private key in its environment, command line, configuration or certificate files', () => {
    const bodies = kmsPrivateKeyBodies();
    expect(bodies.length).toBeGreaterThanOrEqual(2); // the dev CA key and the localhost key
    const edgePid = stack.state.pids.edge;
    const environ = fs.readFileSync(`/proc/${edgePid}/environ`, 'latin1');
    const cmdline = fs.readFileSync(`/proc/${edgePid}/cmdline`, 'latin1');
    const configPath = environ
      .split('\0')
      .find((e) => e.startsWith('KEYLESS_EDGE_CONFIG='))!
      .slice('KEYLESS_EDGE_CONFIG='.length);
    const config = fs.readFileSync(configPath, 'utf8');
    const chain = fs.readFileSync(
      (JSON.parse(config) as { certificates: { chainFile: string }[] }).certificates[0].chainFile,
      'utf8',
    );
    for (const text of [environ, cmdline, config, chain]) {
      expect(text).not.toMatch(/PRIVATE KEY/);
      for (const b of bodies) expect(text).not.toContain(b.slice(0, 64));
    }
    expect(environ).not.toMatch(/AWS_ENDPOINT_URL_KMS|KEYLESS_KEYS=/); // the edge cannot even reach KMS
  });

  it('gets every CertificateVerify signature from the key service', async () => {
    const stats = async (): Promise<number> => {
      const r = await fetch(`${stack.state.keyServiceUrl}/_local/stats`);
      const j = (await r.json()) as Record<string, unknown>;
      return JSON.stringify(j).match(/"invocations":(\d+)/)
        ? Number(/"invocations":(\d+)/.exec(JSON.stringify(j))![1])
        : NaN;
    };
    const before = await stats();
    for (let i = 0; i < 3; i++) expect((await handshake()).ok).toBe(true);
    expect(await stats()).toBe(before + 3);
  });
});

describe('when the key service is unavailable', () => {
  it('fails new handshakes with an alert within the deadline while it hangs, and recovers', async () => {
    process.kill(stack.state.pids.keyService, 'SIGSTOP');
    try {
      const r = await runPeer(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${stack.state.edgePort}`,
          '-servername',
          'localhost',
          '-CAfile',
          stack.state.caPath,
          '-tls1_3',
        ],
        { input: httpGet('/'), timeoutMs: 10_000 },
      );
      expect(r.stderr + r.stdout).toMatch(/alert internal error|alert number 80/);
      expect(r.ms).toBeLessThan(4000); // key-operation deadline is 1 s
      const n = await handshake();
      expect(n.ok).toBe(false);
      expect(n.error).toMatch(/internal error/i);
      expect(n.ms).toBeLessThan(4000);
    } finally {
      process.kill(stack.state.pids.keyService, 'SIGCONT');
    }
    // Back: the next handshakes succeed again.
    await new Promise((r) => setTimeout(r, 300));
    expect((await handshake()).ok).toBe(true);
  });

  it('keeps established connections while the key service is gone, and fails new ones fast', async () => {
    const established = tls.connect({
      host: '127.0.0.1',
      port: stack.state.edgePort,
      servername: 'localhost',
      ca: stack.caPem,
      ALPNProtocols: ['http/1.1'],
    });
    await new Promise<void>((resolve, reject) => established.once('secureConnect', resolve).once('error', reject));
    process.kill(stack.state.pids.keyService, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const n = await handshake();
    expect(n.ok).toBe(false);
    expect(n.ms).toBeLessThan(4000);
    // The connection that was already up still carries requests.
    const response = await new Promise<string>((resolve) => {
      let b = '';
      established.on('data', (d: Buffer) => (b += d.toString()));
      established.on('end', () => resolve(b));
      established.write(httpGet('/api/tls'));
    });
    expect(response).toMatch(/^HTTP\/1.1 200/);
    expect(isAlive(stack.state.pids.edge)).toBe(true);
    const health = await fetch(`http://127.0.0.1:${stack.state.adminPort}/healthz`);
    expect([200, 503]).toContain(health.status); // health turns 503 at the next probe; the edge itself is alive
  });
});

describe('Ctrl-C', () => {
  it('stops every process of the stack', async () => {
    const { edge, devStack } = stack.state.pids;
    const code = await stack.stop();
    expect(code).toBe(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(isAlive(edge)).toBe(false);
    expect(isAlive(devStack)).toBe(false);
    expect(fs.existsSync(path.join(stack.dir, 'stack.json'))).toBe(false);
  });
});
