/**
 * `npm run test:localstack` (after `npm run build`): the LocalStack integration suite.
 *
 *   1. preflight: `docker info` and LocalStack's /_localstack/health (KMS and Lambda up). When either
 *      is missing it prints what is missing and how to run the suite, and exits 2.
 *   2. deploys the stack (test/localstack/stack.ts): keys and certificates in LocalStack's KMS, the
 *      bundled key service as a Lambda in LocalStack, the edge as a local process;
 *   3. runs the interop scenarios (test/localstack/*.localstack.ts) with real TLS clients;
 *   4. runs the KMS fidelity suite against LocalStack's KMS and lists every deviation;
 *   5. tears the stack down: edge and origin stopped, function deleted (KEYLESS_LOCALSTACK_KEEP=1 keeps
 *      the function deployed). Keys, certificates, bundle, logs and reports stay in the work directory.
 *
 * Environment: AWS_ENDPOINT_URL (default http://localhost:4566), AWS_REGION (default us-east-1),
 * KEYLESS_LOCALSTACK_DIR (default .keyless/localstack), KEYLESS_LOCALSTACK_SKIP_DOCKER_CHECK=1 (for a
 * LocalStack whose Docker engine is on another machine). Exit: 0 all passed, 1 a failure, 2 cannot run.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from './bundle';
import { fidelityFailed, renderFidelityReport, runFidelitySuite } from './fidelity';
import { checkDocker, checkLocalStack, howToRun, localStackEndpoint } from './preflight';
import { startLocalStackStack } from './stack';

const say = (line: string): void => void process.stdout.write(`${line}\n`);

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const endpoint = localStackEndpoint(env);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';

  // 1. Preflight.
  if (env.KEYLESS_LOCALSTACK_SKIP_DOCKER_CHECK !== '1') {
    const docker = checkDocker(env);
    if (!docker.ok) {
      process.stderr.write(`${howToRun(docker.problem, endpoint)}\n`);
      return 2;
    }
    say(`preflight: ${docker.detail}`);
  }
  const ls = await checkLocalStack(endpoint);
  if (!ls.ok) {
    process.stderr.write(`${howToRun(ls.problem, endpoint)}\n`);
    return 2;
  }
  say(`preflight: ${ls.detail}`);

  // 2. Deploy.
  const workDir = path.resolve(env.KEYLESS_LOCALSTACK_DIR || path.join(REPO_ROOT, '.keyless', 'localstack'));
  let stack;
  try {
    stack = await startLocalStackStack({
      endpoint,
      region,
      workDir,
      keepFunction: env.KEYLESS_LOCALSTACK_KEEP === '1',
      log: (l) => say(`deploy: ${l}`),
    });
  } catch (e) {
    process.stderr.write(
      `test:localstack: deploying to LocalStack failed: ${e instanceof Error ? e.message : String(e)}\n`,
    );
    return 1;
  }

  let failed = false;
  try {
    // 3. Scenarios.
    say('\n== interop scenarios against the stack on LocalStack ==');
    const jest = require.resolve('jest/bin/jest', { paths: [REPO_ROOT] });
    const scenarios = await run(
      process.execPath,
      [jest, '--config', path.join(REPO_ROOT, 'test/localstack/jest.config.js'), '--runInBand'],
      {
        ...env,
        KEYLESS_LOCALSTACK_STATE: stack.stateFile,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    );
    if (scenarios !== 0) failed = true;

    // 4. KMS fidelity.
    say('\n== KMS fidelity suite against LocalStack KMS ==');
    const report = await runFidelitySuite(endpoint, region, workDir, env);
    say(renderFidelityReport(report, endpoint));
    if (fidelityFailed(report)) failed = true;
  } finally {
    // 5. Teardown.
    await stack.stop();
  }
  say(`\ntest:localstack: ${failed ? 'FAILED' : 'passed'} (files in ${path.relative(REPO_ROOT, workDir) || workDir})`);
  return failed ? 1 : 0;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: 'inherit' });
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`test:localstack: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
