/**
 * What `npm run test:localstack` needs before it touches anything: a Docker engine (LocalStack runs
 * each Lambda invocation in a container it starts through the Docker socket) and a reachable
 * LocalStack whose KMS and Lambda are up. Each check returns a problem in words, never throws.
 */
import { spawnSync } from 'node:child_process';

export const DEFAULT_ENDPOINT = 'http://localhost:4566';
export const LOCALSTACK_IMAGE = 'localstack/localstack:4.14.0';
export const REQUIRED_SERVICES = ['kms', 'lambda'] as const;

export type Check = { ok: true; detail: string } | { ok: false; problem: string };

/** The LocalStack endpoint: AWS_ENDPOINT_URL (the SDKs' and awslocal's convention), else localhost:4566. */
export function localStackEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.AWS_ENDPOINT_URL || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** `docker info`: the client is installed and its engine answers (DOCKER_HOST / context honoured). */
export function checkDocker(env: NodeJS.ProcessEnv = process.env): Check {
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { env, encoding: 'utf8', timeout: 20_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      return { ok: false, problem: 'Docker is not installed: the `docker` command is not on PATH' };
    if (code === 'ETIMEDOUT')
      return { ok: false, problem: '`docker info` did not answer within 20 s: the Docker engine is not responding' };
    return { ok: false, problem: `\`docker info\` could not run (${code ?? r.error.message})` };
  }
  const version = r.stdout.trim();
  if (r.status !== 0 || !version) {
    const why = lastLine(r.stderr) || lastLine(r.stdout) || `exit status ${r.status}`;
    return { ok: false, problem: `the Docker engine is not reachable (\`docker info\`: ${why})` };
  }
  return { ok: true, detail: `Docker engine ${version}` };
}

interface Health {
  services?: Record<string, string>;
  edition?: string;
  version?: string;
}

/** GET /_localstack/health: LocalStack answers and the services this suite needs are available. */
export async function checkLocalStack(endpoint: string, timeoutMs = 5000): Promise<Check> {
  let res: Response;
  try {
    res = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
    return { ok: false, problem: `LocalStack is not reachable at ${endpoint} (${cause})` };
  }
  let health: Health;
  try {
    health = (await res.json()) as Health;
  } catch {
    return {
      ok: false,
      problem: `${endpoint}/_localstack/health answered HTTP ${res.status} without JSON: is it LocalStack?`,
    };
  }
  const services = health.services ?? {};
  const missing = REQUIRED_SERVICES.filter((s) => !['available', 'running'].includes(services[s] ?? ''));
  if (missing.length > 0) {
    const states = missing.map((s) => `${s}: ${services[s] ?? 'absent'}`).join(', ');
    return {
      ok: false,
      problem: `LocalStack at ${endpoint} does not offer ${missing.join(' and ')} (${states}); start it with SERVICES=kms,lambda,iam,logs,sts`,
    };
  }
  return {
    ok: true,
    detail: `LocalStack ${health.version ?? '?'} (${health.edition ?? '?'}) at ${endpoint}: ${REQUIRED_SERVICES.map((s) => `${s} ${services[s]}`).join(', ')}`,
  };
}

/** The message printed when a precondition is missing: what is missing, and how to run the suite. */
export function howToRun(problem: string, endpoint: string): string {
  return [
    `test:localstack: cannot run: ${problem}.`,
    '',
    `The LocalStack suite needs a Docker engine and LocalStack (${LOCALSTACK_IMAGE}: KMS, Lambda, IAM, Logs, STS) at ${endpoint}.`,
    'On a machine with Docker, from the repository root:',
    '',
    '  docker compose up -d          # LocalStack 4.14.0 — the last image that runs without an auth token',
    '  npm run test:localstack',
    '  docker compose down           # when done',
    '',
    'Later images need an auth token (the community repository was archived in March 2026): export LOCALSTACK_AUTH_TOKEN=<token>',
    '(and LOCALSTACK_IMAGE=localstack/localstack:<tag>) before `docker compose up -d`; compose passes it through.',
    `Another endpoint: AWS_ENDPOINT_URL=http://host:4566 (default ${DEFAULT_ENDPOINT}). Details: docs/localstack.md.`,
    'Without Docker, `npm test` runs the same scenarios against the embedded stack (test/interop, test/integration).',
  ].join('\n');
}

function lastLine(s: string | null | undefined): string {
  const lines = (s ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? '';
}
