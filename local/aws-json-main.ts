/**
 * The command line shared by the local AWS JSON endpoints (local/kms/main.ts, local/ssm/main.ts):
 * their flags, the ready line on stdout, and a clean stop on SIGINT/SIGTERM.
 */

export interface EndpointCliOptions {
  port: number;
  host: string;
  dataDir?: string;
  region?: string;
  quiet: boolean;
}

export interface EndpointCli {
  /** Prefix of the ready and error lines, e.g. `kms`. */
  name: string;
  usage: string;
  /** The state directory when no flag names one; with it, `--in-memory` opts out of it. */
  defaultDataDir?: string;
}

export interface RunningEndpoint {
  readonly url: string;
  close(): Promise<void>;
}

export function parseEndpointArgs(cli: EndpointCli, argv: string[]): EndpointCliOptions {
  const opts: EndpointCliOptions = { port: 0, host: '127.0.0.1', quiet: false };
  if (cli.defaultDataDir !== undefined) opts.dataDir = cli.defaultDataDir;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${cli.usage}`);
      return v;
    };
    switch (arg) {
      case '--port': {
        const port = Number(value());
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port\n${cli.usage}`);
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
        if (cli.defaultDataDir === undefined) throw new Error(`unknown argument ${arg}\n${cli.usage}`);
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
        process.stdout.write(`${cli.usage}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}\n${cli.usage}`);
    }
  }
  return opts;
}

/**
 * Parses the process arguments, starts the endpoint and prints `<name>: listening on <url><readySuffix>`
 * once ready; exits 1 with `<name>: <message>` if it cannot start.
 */
export function runEndpointMain(
  cli: EndpointCli,
  start: (opts: EndpointCliOptions, log: ((line: string) => void) | undefined) => Promise<RunningEndpoint>,
  readySuffix = '',
): void {
  const main = async (): Promise<void> => {
    const opts = parseEndpointArgs(cli, process.argv.slice(2));
    const endpoint = await start(opts, opts.quiet ? undefined : (line) => process.stderr.write(`${line}\n`));
    process.stdout.write(`${cli.name}: listening on ${endpoint.url}${readySuffix}\n`);
    const stop = (): void => {
      endpoint.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  };
  main().catch((err: Error) => {
    process.stderr.write(`${cli.name}: ${err.message}\n`);
    process.exit(1);
  });
}
