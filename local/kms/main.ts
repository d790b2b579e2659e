/**
 * CLI: run the local KMS endpoint.
 *
 *   node dist/local/kms/main.js [--port N] [--host 127.0.0.1] [--data-dir DIR | --in-memory] [--region R] [--quiet]
 *
 * Prints `kms: listening on http://127.0.0.1:N (node/VERSION)` once ready; point the AWS SDK at it with
 * AWS_ENDPOINT_URL_KMS=<that url> and any dummy credentials. Stops on SIGINT/SIGTERM.
 */
import { startLocalKms } from './server';

interface CliOptions {
  port: number;
  host: string;
  dataDir?: string;
  region?: string;
  quiet: boolean;
}

const USAGE = 'usage: main.js [--port N] [--host 127.0.0.1|::1|localhost] [--data-dir DIR | --in-memory] [--region R] [--quiet]';

export function parseArgs(argv: string[]): CliOptions {
  const opts: CliOptions = { port: 0, host: '127.0.0.1', dataDir: '.keyless/dev/kms', quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    switch (arg) {
      case '--port': {
        const port = Number(value());
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port\n${USAGE}`);
        opts.port = port;
        break;
      }
      case '--host':
        opts.host = value();
        break;
      case '--data-dir':
        opts.dataDir = value();
        break;
      case '--in-memory':
        opts.dataDir = undefined;
        break;
      case '--region':
        opts.region = value();
        break;
      case '--quiet':
        opts.quiet = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  return opts;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const kms = await startLocalKms({
    port: opts.port,
    host: opts.host,
    dataDir: opts.dataDir,
    region: opts.region,
    log: opts.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`kms: listening on ${kms.url} (node/${process.versions.node})\n`);
  const stop = (): void => {
    kms.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`kms: ${err.message}\n`);
    process.exit(1);
  });
}
