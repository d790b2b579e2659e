/**
 * The admin listener (loopback by default, a port of its own): `/healthz` for the load balancer and
 * Prometheus `/metrics`.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EdgeConfig } from '../config';
import type { EdgeMetrics } from '../observability/edge-metrics';
import type { EdgeHealth } from './health';

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

export async function startAdminServer(
  config: EdgeConfig['admin'],
  health: () => EdgeHealth,
  metrics: EdgeMetrics,
): Promise<AdminServer> {
  const admin = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      const report = health();
      // Draining answers 503 too, so the load balancer stops sending before the listener closes.
      res.writeHead(report.ok && !report.draining ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify(report));
      return;
    }
    if (req.url === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = metrics.renderPrometheus();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(config.port, config.host, () => resolve());
  });
  return {
    port: (admin.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => admin.close(() => r())),
  };
}
