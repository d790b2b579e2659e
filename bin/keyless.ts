#!/usr/bin/env node
/**
 * The `keyless` command-line tool. Today: `keyless dev` (the local stack that `npm start` runs).
 * Key, certificate and rotation commands build on the same entry (see docs/).
 */
import * as path from 'node:path';
import { startDevStack } from '../local/dev-stack';

const USAGE = `usage: keyless <command>

commands:
  dev       run the whole stack locally (local KMS, key service, edge, demo origin); no AWS, no Docker
            environment: KEYLESS_EDGE_PORT (default 8443), KEYLESS_ADMIN_PORT (default 9090),
                         KEYLESS_DEV_DIR (default .keyless/dev),
                         KEYLESS_DEV_CUSTODY (kms, the default, or sealed: the RSA key becomes a sealed
                         key pair, which also serves TLS 1.2 RSA key exchange)
  help      show this text
`;

async function dev(): Promise<void> {
  const stack = await startDevStack();
  const ca = path.relative(process.cwd(), stack.caPath) || stack.caPath;
  process.stdout.write(`ready: ${stack.edgeUrl} (edge pid ${stack.edge.pid}, key service ${stack.keyService.url}, admin http://127.0.0.1:${stack.adminPort}/healthz)\n`);
  process.stdout.write(`try:   curl --cacert ${ca} ${stack.edgeUrl}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping...\n');
    stack.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Without an edge there is nothing to serve: stop the rest rather than half-running.
  stack.edge.once('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(`edge exited (${signal ?? code}); stopping the stack\n`);
    stop();
  });
  // Without a key service the edge keeps running (established connections stay up) and new full
  // handshakes fail fast with an alert: the failure mode operators should see, so leave it visible.
  stack.keyService.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`key service exited (${signal ?? code}); new full handshakes will fail until it is back\n`);
  });
}

async function main(argv: string[]): Promise<void> {
  const [command] = argv;
  switch (command) {
    case 'dev':
      return dev();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`keyless: unknown command "${command}"\n\n${USAGE}`);
      process.exit(64);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`keyless: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
