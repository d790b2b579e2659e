#!/usr/bin/env node
/**
 * The `keyless` command-line tool (docs/cli.md): key generations, certificate requests signed in KMS,
 * certificates from the dev CA or AWS Private CA, the certificate store, status, rotation, and
 * `keyless dev` (the local stack that `npm start` runs).
 *
 * Exit codes (bin/cli/errors.ts): 0 ok, 1 failed, 2 refused (a precondition does not hold),
 * 64 usage error, 69 service unavailable.
 */
import * as path from 'node:path';
import { formatHelp, parseArgs } from './cli/args';
import type { Command } from './cli/commands';
import { COMMANDS } from './cli/command-table';
import type { CliIo } from './cli/context';
import { CliError, EXIT } from './cli/errors';
import { ConfigError } from '../edge-proxy/src/config';

const USAGE = `usage: keyless <command> [options]    (keyless <command> --help for its options)

keys and certificates:
  keys create   create a key generation (KMS signing key + alias, or a sealed RSA key pair)
  csr           certificate request for DNS names, signed by the KMS key itself
  cert issue    certificate from a request: local dev CA or AWS Private CA
  cert import   check a chain against its key, store it for the edges (staged, or --live)
  status        keys, certificates and expiry, live aliases, what the key service serves
  rotate        guided zero-downtime rotation of a slot: new-key, csr/issue, import, promote, retire

edge fleet:
  fleet status  the fleet's task range, scaling policies, last activity and KMS budget
  fleet scale   change the task range (--min/--max) without a redeploy, within the KMS budget

local stack:
  dev           run the whole stack locally (local KMS, key service, edge, demo origin); no AWS, no Docker
                environment: KEYLESS_EDGE_PORT (default 8443), KEYLESS_ADMIN_PORT (default 9090),
                             KEYLESS_DEV_DIR (default .keyless/dev),
                             KEYLESS_DEV_CUSTODY (kms, the default, or sealed: the RSA key becomes a sealed
                             key pair, which also serves TLS 1.2 RSA key exchange)
  help          show this text (keyless help <command> shows a command's)

AWS: --profile/--region and the SDK's variables (AWS_ENDPOINT_URL_KMS, _SSM, _ACM_PCA, _LAMBDA,
_APPLICATION_AUTO_SCALING) pick the account and endpoints; --local uses the running local stack.
Exit codes: 0 ok, 1 failed, 2 refused (a precondition does not hold), 64 usage error, 69 service unavailable.
`;

const GROUPS = new Set(['keys', 'cert', 'fleet']);

async function dev(): Promise<number> {
  const { startDevStack } = await import('../local/dev-stack');
  const stack = await startDevStack();
  const ca = path.relative(process.cwd(), stack.caPath) || stack.caPath;
  process.stdout.write(
    `ready: ${stack.edgeUrl} (edge pid ${stack.edge.pid}, key service ${stack.keyService.url}, admin http://127.0.0.1:${stack.adminPort}/healthz; local KMS and demo origin on node/${process.versions.node})\n`,
  );
  process.stdout.write(`try:   curl --cacert ${ca} ${stack.edgeUrl}\n`);
  process.stdout.write(
    `       curl --cacert ${ca} --resolve api.localhost:${stack.edgePort}:127.0.0.1 https://api.localhost:${stack.edgePort}/   (routed to the TLS demo origin)\n`,
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping...\n');
    stack.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
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
    if (!stopping)
      process.stderr.write(`key service exited (${signal ?? code}); new full handshakes will fail until it is back\n`);
  });
  return new Promise<number>(() => undefined); // runs until a signal stops it
}

/** The command named by the first argv words, and the rest of argv. */
function lookup(argv: string[]): { name: string; command?: Command; rest: string[] } {
  const [first, second] = argv;
  if (GROUPS.has(first) && second !== undefined && !second.startsWith('-')) {
    const name = `${first} ${second}`;
    return { name, command: COMMANDS[name], rest: argv.slice(2) };
  }
  return { name: first, command: COMMANDS[first], rest: argv.slice(1) };
}

function groupHelp(group: string): string {
  const names = Object.keys(COMMANDS).filter((n) => n.startsWith(`${group} `));
  return `usage: keyless ${group} <${names.map((n) => n.slice(group.length + 1)).join('|')}> [options]\n\n${names.map((n) => `  ${n.padEnd(14)}${COMMANDS[n].spec.summary}`).join('\n')}\n`;
}

/** Runs one command line; resolves to the exit code. Never calls process.exit (tests run it in-process). */
export async function main(argv: string[], io: CliIo = {}): Promise<number> {
  const stdout = io.streams?.stdout ?? process.stdout;
  const stderr = io.streams?.stderr ?? process.stderr;
  const [first] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const target = first === 'help' && argv.length > 1 ? lookup(argv.slice(1)) : undefined;
    if (target?.command) stdout.write(formatHelp(target.command.spec));
    else if (target && GROUPS.has(target.name)) stdout.write(groupHelp(target.name));
    else if (target) {
      stderr.write(`keyless: unknown command "${argv.slice(1).join(' ')}"\n\n${USAGE}`);
      return EXIT.usage;
    } else stdout.write(USAGE);
    return EXIT.ok;
  }
  if (first === 'dev') return dev();
  const { name, command, rest } = lookup(argv);
  if (!command) {
    if (GROUPS.has(first)) {
      const sub = argv[1];
      if (sub === undefined || sub === '--help' || sub === '-h') {
        (sub === undefined ? stderr : stdout).write(groupHelp(first));
        return sub === undefined ? EXIT.usage : EXIT.ok;
      }
      stderr.write(`keyless: unknown command "${first} ${sub}"\n\n${groupHelp(first)}`);
      return EXIT.usage;
    }
    stderr.write(`keyless: unknown command "${name}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  try {
    const args = parseArgs(rest, command.spec);
    if (args.help) {
      stdout.write(formatHelp(command.spec));
      return EXIT.ok;
    }
    return await command.run(args, io);
  } catch (e) {
    return report(e, name, stderr);
  }
}

function report(e: unknown, name: string, stderr: { write(s: string): unknown }): number {
  if (e instanceof CliError) {
    stderr.write(`keyless ${name}: ${e.message}\n${e.hint ? `  ${e.hint}\n` : ''}`);
    return e.exitCode;
  }
  if (e instanceof ConfigError) {
    stderr.write(`keyless ${name}: ${e.message.replace(/^invalid edge configuration: /, '')}\n`);
    return EXIT.usage;
  }
  // A bug or an unexpected failure: say so, with the message (never key material: we hold none).
  stderr.write(
    `keyless ${name}: unexpected error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n  Please report it with the command line you ran.\n`,
  );
  return EXIT.failed;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      // Only `keyless dev` gets here (a stack that failed to start): exit even if a handle lingers.
      process.stderr.write(`keyless: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(EXIT.failed);
    },
  );
}
