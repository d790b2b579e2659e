/**
 * The origin of the proxy benchmarks (child process, so its CPU time is accounted on its own): a
 * plain Node HTTP/1.1 server with keep-alive that both the edge and nginx proxy to, and that the
 * load generator can also reach directly (the ceiling).
 *
 *   GET /small          "ok\n" (3 bytes), Content-Length — the keep-alive request benchmark
 *   GET /bulk/<bytes>   <bytes> bytes of a repeating pattern, streamed with backpressure from one
 *                       preallocated 256 KiB buffer (no per-request allocation), Content-Length set
 *
 * argv: none. Prints {"port":N} once listening on 127.0.0.1; exits on end of stdin or SIGTERM.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

const CHUNK = Buffer.alloc(256 * 1024, 'keyless-bench-');
/** Largest body served (4 GiB): a typo cannot make the origin stream forever. */
const MAX_BULK = 4 * 2 ** 30;

function streamBody(res: http.ServerResponse, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      const more = res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      if (!more && left > 0) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  req.resume();
  const url = req.url ?? '/';
  if (url === '/small') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3' });
    res.end('ok\n');
    return;
  }
  const m = /^\/bulk\/(\d+)$/.exec(url);
  if (m && Number(m[1]) <= MAX_BULK) {
    const total = Number(m[1]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    streamBody(res, total);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' });
  res.end('not found\n');
});
// Proxies keep their upstream connections open for many requests.
server.keepAliveTimeout = 60_000;
server.maxRequestsPerSocket = 0;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.stdin.on('end', stop);
process.stdin.resume();
process.once('SIGTERM', stop);
