/**
 * CLI: run the local KMS endpoint.
 *
 *   node dist/local/kms/main.js [--port N] [--host 127.0.0.1] [--data-dir DIR | --in-memory] [--region R] [--quiet]
 *
 * Prints `kms: listening on http://127.0.0.1:N (node/VERSION)` once ready; point the AWS SDK at it with
 * AWS_ENDPOINT_URL_KMS=<that url> and any dummy credentials. Stops on SIGINT/SIGTERM.
 */
import { parseEndpointArgs, runEndpointMain, type EndpointCli, type EndpointCliOptions } from '../aws-json-main';
import { startLocalKms } from './server';

const CLI: EndpointCli = {
  name: 'kms',
  usage:
    'usage: main.js [--port N] [--host 127.0.0.1|::1|localhost] [--data-dir DIR | --in-memory] [--region R] [--quiet]',
  defaultDataDir: '.keyless/dev/kms',
};

export function parseArgs(argv: string[]): EndpointCliOptions {
  return parseEndpointArgs(CLI, argv);
}

if (require.main === module) {
  runEndpointMain(
    CLI,
    (opts, log) => startLocalKms({ port: opts.port, host: opts.host, dataDir: opts.dataDir, region: opts.region, log }),
    ` (node/${process.versions.node})`,
  );
}
