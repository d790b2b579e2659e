/**
 * CLI: run the local SSM Parameter Store endpoint.
 *
 *   node dist/local/ssm/main.js [--port N] [--host 127.0.0.1] [--data-dir DIR] [--region R] [--quiet]
 *
 * Prints `ssm: listening on http://127.0.0.1:N` once ready; point the AWS SDK at it with
 * AWS_ENDPOINT_URL_SSM=<that url> and any dummy credentials. Stops on SIGINT/SIGTERM.
 */
import { parseEndpointArgs, runEndpointMain, type EndpointCli, type EndpointCliOptions } from '../aws-json-main';
import { startLocalSsm } from './server';

const CLI: EndpointCli = {
  name: 'ssm',
  usage: 'usage: main.js [--port N] [--host 127.0.0.1|::1|localhost] [--data-dir DIR] [--region R] [--quiet]',
};

export function parseArgs(argv: string[]): EndpointCliOptions {
  return parseEndpointArgs(CLI, argv);
}

if (require.main === module) {
  runEndpointMain(CLI, (opts, log) =>
    startLocalSsm({ port: opts.port, host: opts.host, dataDir: opts.dataDir, region: opts.region, log }),
  );
}
