/**
 * CLI: the key service behind a local Lambda-invoke endpoint (README, "Quick start").
 *
 *   node dist/local/lambda/main.js [--function-name keyless-key-service] [--port 3001] [--host 127.0.0.1]
 *
 * Environment: KEYLESS_KEYS (the key service's configuration); for `kms` keys also the AWS SDK's
 * standard variables — AWS_REGION, AWS_ENDPOINT_URL_KMS (e.g. the local KMS endpoint) and
 * credentials (any non-empty values against a local KMS).
 * Prints `lambda: listening on http://127.0.0.1:N (node/VERSION)` once ready; SIGINT/SIGTERM stop it.
 */
import type { KeyServiceLogger } from '../../lambdas/key-service/handler';
import { createLocalHandler, loadLocalKeysConfig } from './local-key-service';
import { ConfigError } from '../../contract/key-service-errors';
import { startLocalLambda, type LocalLambda } from './server';

export const DEFAULT_FUNCTION_NAME = 'keyless-key-service';
/** The port `sam local start-lambda` uses for the same API. */
export const DEFAULT_PORT = 3001;

export interface CliOptions {
  functionName: string;
  port: number;
  host: string;
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const opts: CliOptions = { functionName: DEFAULT_FUNCTION_NAME, port: DEFAULT_PORT, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new ConfigError(`${flag}: missing value`);
      return v;
    };
    switch (flag) {
      case '--function-name': {
        const v = value();
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(v))
          throw new ConfigError('--function-name: 1..64 characters of [A-Za-z0-9_-]');
        opts.functionName = v;
        break;
      }
      case '--port': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 0 || v > 65535) throw new ConfigError('--port: expected 0..65535');
        opts.port = v;
        break;
      }
      case '--host':
        opts.host = value();
        break;
      case '--help':
      case '-h':
        throw new ConfigError('usage: main [--function-name NAME] [--port N] [--host 127.0.0.1]');
      default:
        throw new ConfigError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return opts;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the ready line and warnings go (default: console.log / console.error). */
  out?: (line: string) => void;
  err?: (line: string) => void;
  logger?: KeyServiceLogger;
}

/** Start the endpoint with the key-service handler registered. Throws ConfigError on bad input. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<LocalLambda> {
  const env = options.env ?? process.env;
  const out = options.out ?? ((l: string) => console.log(l));
  const err = options.err ?? ((l: string) => console.error(l));
  const cli = parseArgs(argv);
  const keys = loadLocalKeysConfig(env);
  if (keys.some((k) => k.custody === 'kms') && !env.AWS_REGION && !env.AWS_DEFAULT_REGION) {
    err('lambda: warning: kms keys are configured but AWS_REGION is not set');
  }
  const handler = createLocalHandler({ keys, logger: options.logger });
  const server = await startLocalLambda({ port: cli.port, host: cli.host, functions: { [cli.functionName]: handler } });
  out(`lambda: listening on ${server.url} (node/${process.versions.node})`);
  return server;
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    (server) => {
      const stop = () => {
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    },
    (e: unknown) => {
      console.error(
        `lambda: ${e instanceof ConfigError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      );
      process.exit(2);
    },
  );
}
