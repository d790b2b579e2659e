/**
 * edge-proxy/Dockerfile and its ignore file (Docker is not available here; `cdk deploy` builds the
 * image): the stages and what the runtime stage copies are read from the file, and the outcome — the
 * esbuild bundle the image holds, started alone — is run against the local stack. The staged build
 * context is checked in single-region.test.ts, from the synthesized asset.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as tls from 'node:tls';
import * as path from 'node:path';
import { readIgnoreFile } from '../../lib/edge-service';
import { ADMIN_PORT, EDGE_PORT, LIVENESS_CHECK_COMMAND } from '../../lib/naming';
import { ROOT } from './helpers';
import { startStackProcess, type StackProcess } from '../helpers/dev-stack-process';
import { httpGet } from '../helpers/peers';

/** The build stage's bundling step, exactly as the Dockerfile runs it. */
const BUNDLE_RUN = 'RUN node tools/bundle-edge.mjs /src/bundle && test -f /src/bundle/main.js';

const dockerfile = fs.readFileSync(path.join(ROOT, 'edge-proxy/Dockerfile'), 'utf8');
/** Instructions with line continuations joined and comments dropped. */
const instructions = dockerfile
  .replace(/\\\r?\n/g, ' ')
  .split(/\r?\n/)
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stages = (): string[][] => {
  const out: string[][] = [];
  for (const i of instructions) {
    if (/^FROM\s/i.test(i)) out.push([i]);
    else if (out.length > 0) out[out.length - 1].push(i);
  }
  return out;
};

describe('edge-proxy/Dockerfile', () => {
  test("two stages on the project's Node.js: build the bundle, then a runtime with only the bundle", () => {
    const [build, runtime, ...rest] = stages();
    expect(rest).toEqual([]);
    expect(build[0]).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS build$/);
    expect(runtime[0]).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS runtime$/);
    // The image runs the same Node.js as the project's tests and the Lambda (.nvmrc, nodejs24.x).
    const nvmrc = fs.readFileSync(path.join(ROOT, '.nvmrc'), 'utf8').trim();
    expect(instructions.find((i) => i.startsWith('ARG NODE_VERSION='))).toBe(`ARG NODE_VERSION=${nvmrc}`);
    expect(build.find((i) => /^RUN .*tools\/bundle-edge\.mjs/.test(i))).toBe(BUNDLE_RUN);
  });

  test('the runtime stage copies the bundle and nothing else: no node_modules, no dist, never the context', () => {
    const copies = stages()[1].filter((i) => /^COPY\s/i.test(i));
    expect(copies).toEqual(['COPY --from=build /src/bundle/ ./']);
    expect(dockerfile).not.toMatch(/COPY\s+\.\s+\./);
    expect(dockerfile).not.toMatch(/\.keyless|PRIVATE KEY|\.pem\b/);
  });

  test('runs the bundle as a non-root user, with the liveness check of the task definition', () => {
    const runtime = stages()[1];
    const user = runtime.filter((i) => /^USER\s/i.test(i));
    expect(user).toEqual(['USER node']); // uid 1000 in the official image; the task definition also pins 1000:1000
    const last = (re: RegExp) => runtime.filter((i) => re.test(i)).pop();
    // One health policy (docs/deploy.md): liveness = the admin listener answers, whatever the status,
    // so a key-service outage (503 from /healthz) never restarts the edge, in Docker or in ECS.
    const healthcheck = last(/^HEALTHCHECK\s/)!;
    const exec = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];
    expect(exec).toEqual([...LIVENESS_CHECK_COMMAND]);
    expect(exec[2]).toMatch(/127\.0\.0\.1.*KEYLESS_ADMIN_PORT\|\|9090.*\/healthz.*process\.exit\(0\)/);
    expect(exec[2]).not.toMatch(/statusCode/);
    expect(healthcheck).toMatch(/--interval=15s --timeout=5s --start-period=30s --retries=3/);
    expect(last(/^CMD\s/)).toBe('CMD ["node", "--enable-source-maps", "main.js"]');
    expect(last(/^EXPOSE\s/)).toBe(`EXPOSE ${EDGE_PORT} ${ADMIN_PORT}`);
    expect(runtime.indexOf(user[0])).toBeGreaterThan(
      Math.max(...runtime.map((i, n) => (/^(RUN|COPY)\s/.test(i) ? n : -1))),
    );
  });

  test('no placeholders', () => {
    expect(dockerfile).not.toMatch(/TODO|FIXME|placeholder|<[A-Z_]+>/i);
  });
});

/**
 * The image's outcome, without Docker: run the build stage's bundling step, put its output alone in a
 * folder outside the repository (what the runtime stage's WORKDIR holds), start it the way the image's
 * CMD does, with no node_modules anywhere above it, and check that it serves TLS in front of the local
 * stack.
 */
describe('the edge bundle, started alone', () => {
  let stack: StackProcess;
  let app: string;
  let edge: ChildProcess | undefined;

  beforeAll(async () => {
    app = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-edge-image-'));
    execFileSync(process.execPath, [path.join(ROOT, 'tools/bundle-edge.mjs'), path.join(app, 'bundle')], {
      cwd: ROOT,
      stdio: 'pipe',
    });
    stack = await startStackProcess();
  }, 120_000);

  afterAll(async () => {
    edge?.kill('SIGKILL');
    await stack?.stop();
    fs.rmSync(app, { recursive: true, force: true });
  });

  test('holds one script and its source map, about a megabyte, with no key-service backends or CDK code', () => {
    expect(fs.readdirSync(path.join(app, 'bundle')).sort()).toEqual(['main.js', 'main.js.map']);
    const js = fs.readFileSync(path.join(app, 'bundle/main.js'), 'utf8');
    expect(js.length).toBeLessThan(3_000_000);
    expect(js).not.toMatch(/aws-cdk-lib|GenerateDataKeyPairWithoutPlaintext|@peculiar\/x509|ACMPCAClient/);
  });

  test('serves TLS 1.3 and HTTP through the local stack from a folder with no node_modules', async () => {
    for (let dir = app; path.dirname(dir) !== dir; dir = path.dirname(dir))
      expect(fs.existsSync(path.join(dir, 'node_modules'))).toBe(false);
    const config = JSON.parse(fs.readFileSync(path.join(stack.dir, 'edge.json'), 'utf8')) as Record<string, unknown>;
    const file = path.join(app, 'edge.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ ...config, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } }),
    );
    edge = spawn(process.execPath, ['--enable-source-maps', 'main.js'], {
      cwd: path.join(app, 'bundle'),
      env: {
        KEYLESS_EDGE_CONFIG: file,
        AWS_ENDPOINT_URL_LAMBDA: stack.state.keyServiceUrl,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer): void => {
        out += d.toString();
        const m = /"msg":"edge listening","tlsPort":(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      };
      edge!.stdout!.on('data', onData);
      edge!.stderr!.on('data', onData);
      edge!.once('exit', (code) => reject(new Error(`the bundled edge exited ${code}: ${out}`)));
    });
    const answer = await new Promise<{ protocol: string | null; body: string }>((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: stack.caPem,
        ALPNProtocols: ['http/1.1'],
      });
      let body = '';
      s.once('secureConnect', () => s.write(httpGet('/api/tls')));
      s.on('data', (d: Buffer) => (body += d.toString()));
      s.once('end', () => resolve({ protocol: s.getProtocol(), body }));
      s.once('error', reject);
    });
    expect(answer.protocol).toBe('TLSv1.3');
    expect(answer.body).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer.body).toMatch(/"protocol":\s*"TLSv1\.3"/);
  }, 60_000);
});

describe('edge-proxy/Dockerfile.dockerignore', () => {
  const patterns = readIgnoreFile(path.join(ROOT, 'edge-proxy/Dockerfile.dockerignore'));

  test('an allow-list: everything excluded, then what the image is built from', () => {
    expect(patterns[0]).toBe('*');
    expect(patterns.filter((p) => p.startsWith('!')).sort()).toEqual(
      [
        '!contract',
        '!edge-proxy/Dockerfile',
        '!edge-proxy/src',
        '!lambdas',
        '!package-lock.json',
        '!package.json',
        '!tools/bundle-edge.mjs',
        '!tsconfig.json',
      ].sort(),
    );
    expect(patterns).toEqual(expect.arrayContaining(['**/*.test.ts', '**/node_modules', '**/.keyless']));
  });

  test('every path the Dockerfile copies is allowed in', () => {
    const copied = stages()[0]
      .filter((i) => /^COPY\s/.test(i) && !/--from=/.test(i))
      .flatMap((i) => i.split(/\s+/).slice(1, -1));
    const allowed = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
    for (const c of copied) expect([c, allowed.includes(c)]).toEqual([c, true]);
  });
});
