/**
 * Edge process entry: `node dist/edge-proxy/src/main.js [--config edge.json]`.
 * Prints one JSON log line `edge listening` with the ports when it accepts connections.
 */
import { ConfigError, loadEdgeConfig } from './config';
import { startEdge } from './edge';
import { createLogger } from './log';

async function main(): Promise<void> {
  const log = createLogger('edge');
  const argIdx = process.argv.indexOf('--config');
  const file = argIdx > 0 ? process.argv[argIdx + 1] : process.env.KEYLESS_EDGE_CONFIG;
  let edge;
  try {
    const config = loadEdgeConfig(file);
    edge = await startEdge(config, log);
    log.log('info', 'edge listening', { tlsPort: edge.tlsPort, adminPort: edge.adminPort, keyServices: config.keyServices.map((k) => k.functionName) });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.log('info', 'stopping', { signal });
    edge.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((e: unknown) => {
  process.stderr.write(`edge failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
