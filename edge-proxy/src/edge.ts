/**
 * Assembles the edge: certificates (public data only) → TLS engine whose one private-key operation
 * goes to the key service over Lambda Invoke → HTTP frontend that proxies to the origin. Also an
 * admin listener (`/healthz`) on a separate, loopback-by-default port.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertNoPrivateKey, ConfigError, EdgeConfig } from './config';
import { LambdaKeyClient } from './keyless/lambda-key-client';
import type { Logger } from './log';
import type { KeyDescription } from '../../lambdas/key-service/protocol';
import { createHttpFrontend } from './proxy/http-proxy';
import type { SecureConnection } from './proxy/types';
import { CertificateStore, loadCertificate, ServerCertificate } from './tls/certificates';
import type { TlsServerConnection } from './tls/connection';
import { TlsServer } from './tls/server';

export interface RunningEdge {
  tlsPort: number;
  adminPort: number;
  keys: LambdaKeyClient;
  close(): Promise<void>;
}

export function loadCertificates(config: EdgeConfig): ServerCertificate[] {
  return config.certificates.map((c, i) => {
    let pem: string;
    try {
      pem = fs.readFileSync(c.chainFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`certificates[${i}].chainFile`, `cannot read ${c.chainFile} (${(e as NodeJS.ErrnoException).code})`, 'Check the path, or run `npm start` once to create the local dev certificate.');
    }
    assertNoPrivateKey(pem, `certificates[${i}].chainFile`);
    try {
      return loadCertificate(pem, c.keyName, c.hostnames);
    } catch (e) {
      throw new ConfigError(`certificates[${i}].chainFile`, (e as Error).message, 'Give a PEM chain with the leaf certificate first.');
    }
  });
}

/**
 * TLS 1.2 RSA key exchange is offered only for RSA keys the key service holds in `sealed` or `file`
 * custody (KMS cannot decrypt PKCS#1 v1.5); the service's `ping` says which custody each key has.
 */
export function applyCustody(certs: ServerCertificate[], keys: readonly KeyDescription[]): void {
  for (const c of certs) {
    const custody = keys.find((k) => k.name === c.keyName)?.custody;
    c.allowRsaKeyExchange = c.shape.keyType === 'rsa' && (custody === 'sealed' || custody === 'file');
  }
}

export async function startEdge(config: EdgeConfig, log: Logger): Promise<RunningEdge> {
  const certs = loadCertificates(config);
  // Failover across several key services arrives with the resilient client; today the first is used.
  const primary = config.keyServices[0];
  const keys = new LambdaKeyClient({
    functionName: primary.functionName,
    region: primary.region,
    timeoutMs: config.keyOperationTimeoutMs,
    maxInFlight: config.maxKeyOperationsInFlight,
    // Only keys of certificates we serve may be used, and every signature is verified against
    // that certificate's public key before it reaches the wire.
    fetchUnregisteredKeys: false,
  });
  for (const c of certs) keys.registerCertificateKey(c.keyName, c.publicKey);

  const frontend = createHttpFrontend({
    origin: config.origin,
    log: (level, msg, fields) => log.log(level, msg, { ...fields, component: 'proxy' }),
  });
  const server = new TlsServer({
    certificates: new CertificateStore(certs),
    keyOperations: keys,
    alpnProtocols: config.alpn,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
  });
  let nextId = 0;
  server.tcp.on('connection', () => nextId++);
  server.on('secureConnection', (conn: TlsServerConnection) => {
    const i = conn.handshakeInfo;
    log.log('info', 'handshake', {
      remote: conn.remoteAddress,
      protocol: i?.protocol,
      cipher: i?.cipher,
      group: i?.group,
      signatureScheme: i?.signatureScheme,
      keyExchange: i?.keyExchange,
      sni: i?.serverName,
      alpn: i?.alpn,
      helloRetry: i?.helloRetry,
      resumed: i?.resumed,
      keyName: i?.keyName,
      keyOperationMs: i?.keyOperationMs,
    });
    frontend.handle(conn as SecureConnection);
  });
  server.on('tlsClientError', (err, conn) => {
    log.log('warn', 'handshake failed', { remote: conn.remoteAddress, error: err.message, alertSent: err.sentAlert, alertReceived: err.receivedAlert });
  });
  const tlsAddr = await server.listen(config.listen.port, config.listen.host);

  let healthy = false;
  const checkHealth = async (): Promise<void> => {
    try {
      const ping = await keys.ping();
      healthy = true;
      applyCustody(certs, ping.keys);
    } catch {
      healthy = false;
    }
  };
  await checkHealth();
  const healthTimer = setInterval(() => void checkHealth(), 10_000).unref();
  const admin = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: healthy, keyService: healthy ? 'reachable' : 'unreachable', connections: server.activeConnections }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(config.admin.port, config.admin.host, () => resolve());
  });

  return {
    tlsPort: tlsAddr.port,
    adminPort: (admin.address() as AddressInfo).port,
    keys,
    async close() {
      clearInterval(healthTimer);
      await server.close();
      await frontend.close();
      await server.close(true);
      await new Promise<void>((r) => admin.close(() => r()));
    },
  };
}
