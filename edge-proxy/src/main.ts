/**
 * Edge process entry: `node dist/edge-proxy/src/main.js [--config edge.json]`.
 * Prints one JSON log line `edge listening` with the ports when it accepts connections.
 */
import { ConfigError, loadEdgeConfig } from './config';
import { startEdge } from './edge';
import { createLogger } from './observability/log';
import {
  acceptMode,
  runPrimary,
  usableAcceptMode,
  serveWorker,
  workerCount,
  workerIdentity,
  workerShare,
} from './workers';

async function main(): Promise<void> {
  let log = createLogger('edge');
  const argIdx = process.argv.indexOf('--config');
  const file = argIdx > 0 ? process.argv[argIdx + 1] : process.env.KEYLESS_EDGE_CONFIG;
  let edge;
  // KEYLESS_WORKERS > 1: this process is the primary of one worker per vCPU (workers.ts).
  const worker = workerIdentity();
  try {
    let config = loadEdgeConfig(file);
    const workers = worker ? worker.count : workerCount();
    log = createLogger('edge', config.logging.level, worker ? { worker: worker.index } : {}); // logging.level / KEYLESS_LOG_LEVEL, validated
    const keyServices = config.keyServices.map((k) => k.functionName);
    if (workers > 1 && !worker) {
      await runPrimary(
        config,
        workers,
        log,
        keyServices,
        await usableAcceptMode(acceptMode(), config.listen.host, log),
      );
      return;
    }
    if (worker) config = workerShare(config, worker.count, worker.adminPort, worker.tlsPort);
    edge = await startEdge(config, log, { reusePort: worker?.accept === 'reuseport' });
    log.log('info', worker ? 'worker listening' : 'edge listening', {
      tlsPort: edge.tlsPort,
      adminPort: edge.adminPort,
      keyServices,
      runtime: `node/${process.versions.node}`,
      ...(worker ? { pid: process.pid } : {}),
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  let stopping = false;
  // SIGTERM (ECS, after the load balancer starts deregistering the task): stop accepting, let
  // in-flight handshakes and requests finish up to drainTimeoutMs, then exit. A second signal exits
  // at once.
  const stop = (signal: string): void => {
    if (stopping) {
      log.log('warn', 'stopping now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.log('info', 'stopping', { signal });
    const running = edge;
    running
      .drain()
      .then(() => running.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  // SIGHUP: reload certificates (from the configuration file and the certificate store) without
  // dropping a connection. Other settings need a restart.
  const reload = (): void => {
    if (stopping) return;
    let next;
    try {
      next = loadEdgeConfig(file);
    } catch (e) {
      log.log('error', 'configuration reload failed; still serving the previous certificates', {
        error: (e as Error).message,
      });
      return;
    }
    edge.reloadCertificates(next).catch(() => undefined); // logged by the edge
  };
  if (worker) return serveWorker(edge, { stop, reload }); // the primary relays signals
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', reload);
}

main().catch((e: unknown) => {
  process.stderr.write(`edge failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
