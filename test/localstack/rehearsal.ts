/**
 * `node dist/test/localstack/rehearsal.js`: the whole LocalStack suite (run.ts, unchanged) against the
 * fake LocalStack of fake-localstack.ts, for machines without Docker. It exercises the harness, not
 * LocalStack: a pass here says the suite is ready to meet the real LocalStack, nothing more.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startFakeLocalStack } from './fake-localstack';
import { main } from './run';

async function rehearse(): Promise<number> {
  const fake = await startFakeLocalStack();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-rehearsal-'));
  process.stdout.write(`rehearsal: fake LocalStack (not LocalStack) at ${fake.url}; files in ${dir}\n`);
  try {
    return await main({
      ...process.env,
      AWS_ENDPOINT_URL: fake.url,
      KEYLESS_LOCALSTACK_SKIP_DOCKER_CHECK: '1',
      KEYLESS_LOCALSTACK_DIR: dir,
    });
  } finally {
    process.stdout.write(
      `rehearsal: the function was invoked ${fake.invocations.get('keyless-key-service') ?? 0} times\n`,
    );
    await fake.close();
  }
}

if (require.main === module) {
  rehearse().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`rehearsal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
