/**
 * Shared set-up for the `keyless` CLI tests (test/unit/cli-*.test.ts): a local KMS in memory, a
 * temporary "dev dir" whose stack.json points `--local` at it (and at a local key service when one is
 * started), a dev CA whose key lives only in that KMS, and an in-process runner of the real `main`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { main } from '../../bin/keyless';
import { createHandler } from '../../lambdas/key-service/handler';
import type { KeysConfigEntry } from '../../lambdas/key-service/config';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { startLocalLambda, type LocalLambda } from '../../local/lambda';
import { createKmsKey, DEFAULT_CA_ALIAS, issueDevCa } from '../../local/dev-pki';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  json<T = Record<string, unknown>>(): T;
}

export interface CliEnv {
  kms: LocalKms;
  kmsClient: KMSClient;
  /** Temporary dev dir with stack.json; the working directory of every run. */
  dir: string;
  /** `--local` certificate store: `<dir>/certs`. */
  certDir: string;
  run(...argv: string[]): Promise<CliRun>;
  /** A dev CA (key in the local KMS); writes `<dir>/ca.pem` and returns its PEM. */
  devCa(alias?: string, file?: string): Promise<string>;
  /** Starts the real key-service handler behind a local Lambda endpoint and records it in stack.json. */
  startKeyService(keys: KeysConfigEntry[]): Promise<LocalLambda>;
  close(): Promise<void>;
}

export const REGION = 'us-east-1';

export async function startCliEnv(): Promise<CliEnv> {
  const kms = await startLocalKms({ region: REGION });
  // SDK retries as in production: a reused keep-alive socket the server just closed (a loaded machine)
  // must not turn into a spurious failure of the key-service handler that shares this client.
  const kmsClient = new KMSClient({
    endpoint: kms.url,
    region: REGION,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-cli-'));
  const state: Record<string, string> = { kmsUrl: kms.url };
  const writeState = (): void => fs.writeFileSync(path.join(dir, 'stack.json'), JSON.stringify(state));
  writeState();
  let lambda: LocalLambda | undefined;
  return {
    kms,
    kmsClient,
    dir,
    certDir: path.join(dir, 'certs'),
    async run(...argv) {
      let stdout = '';
      let stderr = '';
      const code = await main(argv, {
        cwd: dir,
        env: { KEYLESS_DEV_DIR: dir },
        streams: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } },
      });
      return {
        code,
        stdout,
        stderr,
        json<T>() {
          try {
            return JSON.parse(stdout) as T;
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
          }
        },
      };
    },
    async devCa(alias = DEFAULT_CA_ALIAS, file = 'ca.pem') {
      await createKmsKey(kmsClient, { alias, keySpec: 'ECC_NIST_P256' });
      const pem = await issueDevCa(kmsClient, alias, { subject: `CN=keyless test CA ${alias}` });
      fs.writeFileSync(path.join(dir, file), pem);
      return pem;
    },
    async startKeyService(keys) {
      await lambda?.close();
      const handler = createHandler({ keys, kmsClient, ticketKeys: null, logger: () => undefined });
      lambda = await startLocalLambda({ functions: { 'keyless-key-service': (event) => handler(event) } });
      state.keyServiceUrl = lambda.url;
      writeState();
      return lambda;
    },
    async close() {
      kmsClient.destroy();
      await lambda?.close();
      await kms.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether a command-line tool is installed (peers that are missing are skipped with a printed reason). */
export function haveTool(tool: string, args: string[] = ['version']): boolean {
  try {
    execFileSync(tool, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
