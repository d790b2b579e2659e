/**
 * Child process of the rehearsal: the key service exactly as Lambda would run it — the synthesized
 * asset's bundle, its `Handler` export, the template's environment (set by the parent) — behind the
 * local Lambda Invoke endpoint. Each Invoke is recorded with its caller and sent to the parent over
 * IPC; the function's own stdout (its EMF metric lines) goes to the parent's pipe.
 *
 *   env REHEARSAL_ASSET_DIR, REHEARSAL_HANDLER ("index.handler"), REHEARSAL_FUNCTION ("name:qualifier"),
 *       REHEARSAL_PRINCIPALS (JSON access key id → principal), REHEARSAL_ACCOUNT, AWS_REGION
 *
 * Sends `{ready: url}` once listening, then `{call: RecordedCall}` per Invoke.
 */
import * as path from 'node:path';

import { CallLog, type RecordedCall } from '../../local/call-log';
import { startLocalLambda, type LocalLambdaHandler } from '../../local/lambda';

async function main(): Promise<void> {
  const env = process.env;
  const [file, exportName] = splitHandler(env.REHEARSAL_HANDLER ?? '');
  // Lambda resolves "index.handler" to <task root>/index.js, export `handler`.
  const mod = (await import(path.join(env.REHEARSAL_ASSET_DIR ?? '.', file))) as Record<string, unknown>;
  const fn = mod[exportName];
  if (typeof fn !== 'function')
    throw new Error(`the asset has no export ${exportName} in ${file}.js (Handler ${env.REHEARSAL_HANDLER})`);
  const log = new CallLog({ principals: JSON.parse(env.REHEARSAL_PRINCIPALS ?? '{}') as Record<string, string> });
  const push = log.calls.push.bind(log.calls);
  log.calls.push = (...calls: RecordedCall[]): number => {
    for (const call of calls) process.send?.({ call });
    return push(...calls);
  };
  const lambda = await startLocalLambda({
    region: env.AWS_REGION,
    accountId: env.REHEARSAL_ACCOUNT,
    functions: { [env.REHEARSAL_FUNCTION ?? 'fn']: fn as LocalLambdaHandler },
    functionTimeoutMs: Number(env.REHEARSAL_TIMEOUT_MS ?? 3000),
    callLog: log,
  });
  process.send?.({ ready: lambda.url });
  process.once('SIGTERM', () => void lambda.close().then(() => process.exit(0)));
}

function splitHandler(handler: string): [string, string] {
  const i = handler.lastIndexOf('.');
  if (i <= 0) throw new Error(`Handler ${JSON.stringify(handler)} is not <file>.<export>`);
  return [handler.slice(0, i), handler.slice(i + 1)];
}

main().catch((e: Error) => {
  process.stderr.write(`key-service host: ${e.message}\n`);
  process.exit(2);
});
