/**
 * Engine-only target (child process): the edge's TLS engine (`TlsServer`) with the in-process
 * signer of the unit tests — no key service, no AWS SDK, no HTTP proxy — answering one small
 * HTTP/1.1 request per connection and closing. The RSA-2048 signature is computed synchronously
 * on this process's event loop, like a key held locally.
 *
 * argv: <chain.pem> <key.pem>. Prints {"port":N} once listening. stdin line "stats" → one JSON line
 * {"stats":{"signatures","handshakes","failures","groups"}} (groups: handshakes per key-exchange group);
 * stdin end → exit.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { TlsServer } from '../../edge-proxy/src/tls/server';
import { CertificateStore, loadCertificate } from '../../edge-proxy/src/tls/certificates';
import type { TlsServerConnection } from '../../edge-proxy/src/tls/connection';
import { InProcessKeys } from '../helpers/in-process-keys';

const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n',
);

async function main(): Promise<void> {
  const [chainPath, keyPath] = process.argv.slice(2);
  const keys = new InProcessKeys(new Map([['bench-key', crypto.createPrivateKey(fs.readFileSync(keyPath))]]));
  const server = new TlsServer({
    certificates: new CertificateStore([loadCertificate(fs.readFileSync(chainPath, 'utf8'), 'bench-key')]),
    keyOperations: keys,
    alpnProtocols: ['http/1.1'],
  });
  let handshakes = 0;
  let failures = 0;
  const groups: Record<string, number> = {};
  server.on('secureConnection', (conn: TlsServerConnection) => {
    handshakes++;
    const group = conn.handshakeInfo?.group ?? 'none';
    groups[group] = (groups[group] ?? 0) + 1;
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        conn.off('data', onData);
        conn.end(RESPONSE);
      }
    };
    conn.on('data', onData);
  });
  server.on('tlsClientError', () => failures++);
  const addr = await server.listen(0, '127.0.0.1');
  process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === 'stats')
      process.stdout.write(
        `${JSON.stringify({ stats: { signatures: keys.signatures, handshakes, failures, groups } })}\n`,
      );
  });
  const stop = (): void => void server.close(true).then(() => process.exit(0));
  rl.on('close', stop);
  process.once('SIGTERM', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`engine-server: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
