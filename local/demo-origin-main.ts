/**
 * Run the demo origin on its own:
 *   node dist/local/demo-origin-main.js [--port N] [--host H]     (or PORT / HOST in the environment)
 * Prints `origin: listening on http://HOST:PORT (node/VERSION)` once it accepts connections.
 */
import { startDemoOrigin } from './demo-origin';

function parseArgs(argv: readonly string[]): { port: number; host: string } {
  let port = Number(process.env.PORT ?? 0);
  let host = process.env.HOST ?? '127.0.0.1';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--port' || flag === '-p') port = Number(value());
    else if (flag === '--host') host = value();
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write('usage: demo-origin-main [--port N] [--host H]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${port}`);
  return { port, host };
}

async function main(): Promise<void> {
  const { port, host } = parseArgs(process.argv.slice(2));
  const origin = await startDemoOrigin({ port, host });
  process.stdout.write(`origin: listening on ${origin.url} (node/${process.versions.node})\n`);
  const stop = (): void => {
    void origin.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`origin: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
