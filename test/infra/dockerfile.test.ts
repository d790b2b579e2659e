/**
 * edge-proxy/Dockerfile and its ignore file, checked statically (Docker is not available in CI's
 * test job; `cdk deploy` builds the image). The staged build context is checked in
 * single-region.test.ts, from the synthesized asset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readIgnoreFile } from '../../lib/edge-service';
import { ADMIN_PORT, EDGE_PORT, LIVENESS_CHECK_COMMAND } from '../../lib/naming';
import { ROOT } from './helpers';

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
  test('multi-stage: build with npm ci and npm run build, prune to production dependencies', () => {
    const [build, runtime, ...rest] = stages();
    expect(rest).toEqual([]);
    expect(build[0]).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS build$/);
    expect(runtime[0]).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS runtime$/);
    expect(instructions.find((i) => i.startsWith('ARG NODE_VERSION='))).toMatch(/^ARG NODE_VERSION=24\.\d+\.\d+$/);
    const b = build.join('\n');
    expect(b).toMatch(/RUN .*npm ci\b/);
    expect(b).toMatch(/RUN npm run build/);
    expect(b).toMatch(/npm prune --omit=dev/);
    expect(b.indexOf('npm ci')).toBeLessThan(b.indexOf('npm run build'));
    expect(b.indexOf('npm run build')).toBeLessThan(b.indexOf('npm prune'));
  });

  test('the runtime stage takes only the build output and production node_modules', () => {
    const runtime = stages()[1];
    const copies = runtime.filter((i) => /^COPY\s/i.test(i));
    expect(copies.every((c) => /--from=build\s/.test(c))).toBe(true);
    expect(copies.map((c) => c.split(/\s+/).slice(-2).join(' '))).toEqual(['/src/package.json ./package.json', '/src/node_modules ./node_modules', '/src/dist ./dist']);
    expect(dockerfile).not.toMatch(/COPY\s+\.\s+\./); // never the whole context
    expect(dockerfile).not.toMatch(/\.keyless|PRIVATE KEY|\.pem\b/);
  });

  test('runs as a non-root user, with the liveness check of the task definition and the exact command', () => {
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
    expect(last(/^CMD\s/)).toBe('CMD ["node", "dist/edge-proxy/src/main.js"]');
    expect(last(/^EXPOSE\s/)).toBe(`EXPOSE ${EDGE_PORT} ${ADMIN_PORT}`);
    expect(runtime.indexOf(user[0])).toBeGreaterThan(Math.max(...runtime.map((i, n) => (/^(RUN|COPY)\s/.test(i) ? n : -1))));
  });

  test('no placeholders', () => {
    expect(dockerfile).not.toMatch(/TODO|FIXME|placeholder|<[A-Z_]+>/i);
  });
});

describe('edge-proxy/Dockerfile.dockerignore', () => {
  const patterns = readIgnoreFile(path.join(ROOT, 'edge-proxy/Dockerfile.dockerignore'));

  test('an allow-list: everything excluded, then what the image is built from', () => {
    expect(patterns[0]).toBe('*');
    expect(patterns.filter((p) => p.startsWith('!')).sort()).toEqual(
      ['!edge-proxy/Dockerfile', '!edge-proxy/src', '!lambdas', '!package-lock.json', '!package.json', '!tsconfig.build.json', '!tsconfig.json'].sort(),
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
