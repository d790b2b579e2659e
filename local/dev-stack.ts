/**
 * The whole product on one machine, no AWS and no Docker (README, "Quick start") — what `npm start` runs:
 *
 *   local KMS (this process; its key store under .keyless/dev/kms is the local "HSM")
 *     ↑ AWS SDK KMS client (AWS_ENDPOINT_URL_KMS)
 *   local SSM Parameter Store (this process; .keyless/dev/ssm): the session-ticket keys, one
 *     parameter per epoch as KMS ciphertext, deleted by its Expiration policy
 *     ↑ AWS SDK SSM client (AWS_ENDPOINT_URL_SSM)
 *   key service = the real Lambda handler behind a local Lambda-invoke endpoint (child process)
 *     ↑ AWS SDK Lambda client (AWS_ENDPOINT_URL_LAMBDA)
 *   edge proxy (child process: holds certificates only, never a key) → demo origin (this process)
 *
 * On first run it creates a dev CA and a `localhost` leaf whose private keys exist only inside the
 * local KMS; later runs reuse them. Ports and process ids are written to .keyless/dev/stack.json.
 *
 * Key rotation (docs/rotation.md) works on this stack: the edge also serves the certificate store in
 * .keyless/dev/certs/ (re-read every few seconds and on SIGHUP), and the key service resolves any key
 * name N as the local KMS alias `alias/keyless/dev/keys/N`, so `keyless keys create` / `keyless rotate`
 * need no restart. The two `localhost` certificates stay fixed files, so the store starts empty.
 */
import type { ChildProcess } from 'node:child_process';
import { edgeListening, inheritedEnv, startChild, stopChild } from './processes';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  CreateKeyCommandInput,
  DescribeKeyCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { provisionSealedKey, SealedKeySpec } from '../contract/sealed-key-envelope';
import type { SealedKeyConfig } from '../contract/keyless-keys-entry';
import { keySpecOfKeyObject } from '../contract/key-service-protocol';
import { startLocalKms, LocalKms } from './kms';
import { startLocalSsm, type LocalSsm } from './ssm';
import { ensureDevPki, ensureOriginPki } from './dev-pki';

/** The names the local edge serves (both routed, see `routes` below). */
const DEV_HOSTNAMES = ['localhost', 'api.localhost'];
/** The TLS demo origin's name: in its certificate, verified by the edge. */
const API_ORIGIN_NAME = 'origin.localhost';
import { startDemoOrigin, DemoOrigin } from './demo-origin';

export interface DevStackOptions {
  /** Folder for the KMS store, PKI files and generated configuration. Default `.keyless/dev`. */
  dataDir?: string;
  /** Edge TLS port. Default KEYLESS_EDGE_PORT or 8443; 0 picks a free port. */
  edgePort?: number;
  /** Edge admin port. Default KEYLESS_ADMIN_PORT or 9090; 0 picks a free port. */
  adminPort?: number;
  /**
   * Custody of the RSA leaf key (default KEYLESS_DEV_CUSTODY or `kms`). `sealed` makes the RSA key a
   * KMS-generated key pair whose private half is KMS ciphertext, unsealed only in the key service —
   * the mode that serves TLS 1.2 RSA key exchange. The ECDSA leaf is always `kms`.
   */
  custody?: 'kms' | 'sealed';
  /** KMS key spec of the RSA leaf key (the ECDSA leaf is always P-256). Default RSA_2048. */
  leafKeySpec?: 'RSA_2048' | 'RSA_3072' | 'RSA_4096';
  /** Key-operation deadline at the edge. Default 1000 ms. */
  keyOperationTimeoutMs?: number;
  /** Child processes' output goes here (default: inherited stdout). */
  output?: NodeJS.WritableStream;
}

export interface DevStack {
  edgeUrl: string;
  edgePort: number;
  adminPort: number;
  caPath: string;
  kms: LocalKms;
  ssm: LocalSsm;
  origin: DemoOrigin;
  /** The demo origin behind `api.localhost`, reached over TLS (its own dev CA). */
  apiOrigin: DemoOrigin;
  keyService: ChildProcess & { url: string };
  edge: ChildProcess;
  stateFile: string;
  stop(): Promise<void>;
}

export const FUNCTION_NAME = 'keyless-key-service';
/** Alias prefix of the dev stack's key generations (the CDK scheme for deployment "dev", lib/naming.ts). */
export const DEV_ALIAS_PREFIX = 'alias/keyless/dev/keys/';
/** The certificate store folder inside the data folder. */
export const DEV_CERT_DIR = 'certs';
/** The dev edge re-reads its certificate store this often (a directory read is cheap). */
const DEV_CERT_REFRESH_SECONDS = 5;
const REGION = 'us-east-1';
/** Dummy credentials: the local endpoints accept any; the AWS SDK requires some. */
const LOCAL_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' };

function devKeyOperationTimeoutMs(): number {
  const v = process.env.KEYLESS_DEV_KEY_OPERATION_TIMEOUT_MS;
  if (v === undefined) return 5000;
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new Error(`KEYLESS_DEV_KEY_OPERATION_TIMEOUT_MS: ${v} is not a whole number of milliseconds (e.g. 1000)`);
  return Number(v);
}

function envPort(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${name}=${v} is not a TCP port; use a number from 0 to 65535`);
  return n;
}

/** Environment for children: ours minus anything AWS-related, plus what each child needs. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = inheritedEnv();
  return { ...env, AWS_REGION: REGION, ...LOCAL_CREDENTIALS, ...extra };
}

function devCustody(): 'kms' | 'sealed' {
  const v = process.env.KEYLESS_DEV_CUSTODY ?? 'kms';
  if (v !== 'kms' && v !== 'sealed')
    throw new Error(`KEYLESS_DEV_CUSTODY=${v} is not a custody mode; use kms (default) or sealed`);
  return v;
}

const WRAPPING_ALIAS = 'alias/keyless/dev/sealed-wrapping';
/** The ticket-key envelope key and store of deployment "dev" (the names lib/ticket-key-store.ts gives them). */
const TICKET_KEY_ALIAS = 'alias/keyless/dev/ticket-keys';
const TICKET_PARAMETER_PREFIX = '/keyless/dev/ticket-keys/';

/** A KMS key under `alias`, created once with these parameters if the alias does not exist yet. */
async function ensureAliasedKey(kms: KMSClient, alias: string, params: CreateKeyCommandInput): Promise<void> {
  try {
    await kms.send(new DescribeKeyCommand({ KeyId: alias }));
  } catch (e) {
    if ((e as Error).name !== 'NotFoundException') throw e;
    const created = await kms.send(new CreateKeyCommand(params));
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: created.KeyMetadata!.KeyId! }));
  }
}

/**
 * A `sealed` RSA key for the dev stack, created once and reused: KMS generates the pair under a
 * symmetric wrapping key; only the ciphertext and the public key are kept (in the data folder).
 */
async function ensureSealedKey(
  kms: KMSClient,
  dataDir: string,
  name: string,
  keySpec: SealedKeySpec,
): Promise<SealedKeyConfig> {
  await ensureAliasedKey(kms, WRAPPING_ALIAS, {
    KeySpec: 'SYMMETRIC_DEFAULT',
    KeyUsage: 'ENCRYPT_DECRYPT',
    Description: 'keyless-tls development sealed-key wrapping key',
  });
  const file = path.join(dataDir, `sealed-${name}.json`);
  if (fs.existsSync(file)) {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as SealedKeyConfig;
    const spec = keySpecOfKeyObject(
      crypto.createPublicKey({ key: Buffer.from(saved.publicKey, 'base64'), format: 'der', type: 'spki' }),
    );
    if (saved.name === name && spec === keySpec) return saved;
  }
  const config = await provisionSealedKey(kms, { name, wrappingKeyId: WRAPPING_ALIAS, keySpec });
  // Ciphertext and public key only: nothing here can be used without kms:Decrypt on the wrapping key.
  fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return config;
}

export async function startDevStack(opts: DevStackOptions = {}): Promise<DevStack> {
  const dataDir = path.resolve(opts.dataDir ?? process.env.KEYLESS_DEV_DIR ?? '.keyless/dev');
  const out = opts.output ?? process.stdout;
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const dist = path.resolve(__dirname, '..');
  const started: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const s of started.reverse()) await s().catch(() => undefined);
  };

  try {
    const kms = await startLocalKms({ port: 0, dataDir: path.join(dataDir, 'kms'), region: REGION });
    started.push(() => kms.close());
    const kmsClient = new KMSClient({
      region: REGION,
      endpoint: kms.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const ssm = await startLocalSsm({ port: 0, dataDir: path.join(dataDir, 'ssm'), region: REGION });
    started.push(() => ssm.close());
    // Two certificates for localhost, as production edges often serve: RSA (what most clients
    // pick) and ECDSA P-256 (for clients and suites that want it). Both keys live only in KMS.
    const rsaSpec = opts.leafKeySpec ?? 'RSA_2048';
    const custody = opts.custody ?? devCustody();
    let rsaKey: Record<string, unknown>;
    let pki;
    if (custody === 'sealed') {
      const sealed = await ensureSealedKey(kmsClient, dataDir, 'localhost-rsa', rsaSpec);
      rsaKey = { ...sealed };
      const spki = Buffer.from(sealed.publicKey, 'base64');
      pki = await ensureDevPki({
        kms: kmsClient,
        dir: dataDir,
        leafPublicKey: { spki, keySpec: rsaSpec },
        chainFileName: 'localhost-rsa-sealed.chain.pem',
        dnsNames: DEV_HOSTNAMES,
      });
    } else {
      pki = await ensureDevPki({
        kms: kmsClient,
        dir: dataDir,
        leafKeySpec: rsaSpec,
        chainFileName: 'localhost-rsa.chain.pem',
        dnsNames: DEV_HOSTNAMES,
      });
      rsaKey = { name: 'localhost-rsa', custody: 'kms', keyId: pki.keyAlias };
    }
    // Session-ticket keys: random per epoch, stored in the local SSM encrypted under this key.
    await ensureAliasedKey(kmsClient, TICKET_KEY_ALIAS, {
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      Description: 'keyless-tls development session-ticket key envelope',
    });
    const ecPki = await ensureDevPki({
      kms: kmsClient,
      dir: dataDir,
      leafKeySpec: 'ECC_NIST_P256',
      chainFileName: 'localhost-ecdsa.chain.pem',
      dnsNames: DEV_HOSTNAMES,
    });
    kmsClient.destroy();
    const keys = [
      rsaKey,
      { name: 'localhost-ecdsa', custody: 'kms', keyId: ecPki.keyAlias },
      // Any other key name N is the local KMS key behind alias/keyless/dev/keys/N (keyless keys create).
      { name: '*', custody: 'kms', aliasPrefix: DEV_ALIAS_PREFIX },
    ];
    const certDir = path.join(dataDir, DEV_CERT_DIR);
    fs.mkdirSync(certDir, { recursive: true });
    const certificates = [
      { chainFile: pki.paths.chain, keyName: 'localhost-rsa', hostnames: DEV_HOSTNAMES },
      { chainFile: ecPki.paths.chain, keyName: 'localhost-ecdsa', hostnames: DEV_HOSTNAMES },
    ];

    // Two routed hostnames: localhost → a plain-HTTP demo origin (also the default route), and
    // api.localhost → a demo origin over TLS whose certificate comes from its own dev CA.
    const origin = await startDemoOrigin({ port: 0, host: '127.0.0.1', name: 'web origin' });
    started.push(() => origin.close());
    const originPki = await ensureOriginPki(dataDir, API_ORIGIN_NAME);
    const apiOrigin = await startDemoOrigin({
      port: 0,
      host: '127.0.0.1',
      name: 'api origin',
      tls: { key: originPki.key, cert: originPki.cert },
    });
    started.push(() => apiOrigin.close());

    const keyServiceEnv = childEnv({
      AWS_ENDPOINT_URL_KMS: kms.url,
      AWS_ENDPOINT_URL_SSM: ssm.url,
      KEYLESS_KEYS: JSON.stringify(keys),
      KEYLESS_DEPLOYMENT: 'dev',
      KEYLESS_TICKET_KEY_ID: TICKET_KEY_ALIAS,
      KEYLESS_TICKET_PARAMETER_PREFIX: TICKET_PARAMETER_PREFIX,
    });
    const ks = await startChild(
      'key service',
      path.join(dist, 'local/lambda/main.js'),
      ['--port', '0', '--function-name', FUNCTION_NAME],
      keyServiceEnv,
      (line) => /^lambda: listening on (http:\/\/\S+)/.exec(line)?.[1],
      out,
    );
    const keyService = Object.assign(ks.child, { url: ks.value });
    started.push(() => stopChild(keyService));

    // The edge's whole configuration: a certificate chain, a key *name*, and where the key service is.
    const edgeConfigPath = path.join(dataDir, 'edge.json');
    const keyOpMs = opts.keyOperationTimeoutMs ?? devKeyOperationTimeoutMs();
    fs.writeFileSync(
      edgeConfigPath,
      JSON.stringify(
        {
          listen: { host: '127.0.0.1', port: opts.edgePort ?? envPort('KEYLESS_EDGE_PORT', 8443) },
          admin: { host: '127.0.0.1', port: opts.adminPort ?? envPort('KEYLESS_ADMIN_PORT', 9090) },
          certificates,
          // Certificates imported with `keyless cert import` / `keyless rotate` (public data only).
          certificateStore: { directory: certDir, refreshSeconds: DEV_CERT_REFRESH_SECONDS },
          keyServices: [{ functionName: FUNCTION_NAME, region: REGION }],
          // One machine runs the key service, the KMS, the edge and every client here, so under load
          // (a test suite, a benchmark) a key operation waits for CPU, not for a remote service. The
          // production deadline (1000 ms) would fail handshakes that are merely queued; the local stack
          // allows 5 s, well within the 10 s handshake deadline. KEYLESS_DEV_KEY_OPERATION_TIMEOUT_MS
          // sets it (tests of the fail-fast path use 1000). Connects get 30 % of it, as in production.
          keyOperationTimeoutMs: keyOpMs,
          keyServiceConnectTimeoutMs: Math.round(keyOpMs * 0.3),
          origin: origin.url,
          routes: [
            { hosts: ['localhost'], origin: origin.url },
            {
              hosts: ['api.localhost'],
              origin: {
                url: `https://${API_ORIGIN_NAME}:${apiOrigin.port}`,
                addresses: [`127.0.0.1:${apiOrigin.port}`],
                caFile: originPki.caPath,
                healthCheck: { path: '/healthz', intervalSeconds: 10 },
              },
            },
          ],
          // The local KMS has no quota, and every local client shares 127.0.0.1: admission control
          // is set far above what one machine can do, so benchmarks and test suites are not refused.
          admission: {
            keyOperationsPerSecond: 1_000_000,
            keyOperationBurst: 100_000,
            perClientRatePerSecond: 1_000_000,
            perClientBurst: 100_000,
            maxPendingFullHandshakes: 100_000,
          },
        },
        null,
        2,
      ),
    );
    const edgeEnv = childEnv({
      AWS_ENDPOINT_URL_LAMBDA: keyService.url,
      KEYLESS_EDGE_CONFIG: edgeConfigPath,
      // KEYLESS_TICKETS=0 turns resumption off (e.g. to benchmark full handshakes only).
      ...(process.env.KEYLESS_TICKETS ? { KEYLESS_TICKETS: process.env.KEYLESS_TICKETS } : {}),
      // KEYLESS_WORKERS=2 / auto: one edge worker per vCPU (edge-proxy/src/workers.ts); default 1.
      ...(process.env.KEYLESS_WORKERS ? { KEYLESS_WORKERS: process.env.KEYLESS_WORKERS } : {}),
      // KEYLESS_WORKER_ACCEPT=round-robin / reuseport: how connections reach the workers.
      ...(process.env.KEYLESS_WORKER_ACCEPT ? { KEYLESS_WORKER_ACCEPT: process.env.KEYLESS_WORKER_ACCEPT } : {}),
    });
    const edgeStart = await startChild(
      'edge',
      path.join(dist, 'edge-proxy/src/main.js'),
      [],
      edgeEnv,
      edgeListening,
      out,
    );
    const edge = edgeStart.child;
    started.push(() => stopChild(edge));

    const stateFile = path.join(dataDir, 'stack.json');
    const edgeUrl = `https://localhost:${edgeStart.value.tlsPort}/`;
    fs.writeFileSync(
      stateFile,
      JSON.stringify(
        {
          edgeUrl,
          edgePort: edgeStart.value.tlsPort,
          adminPort: edgeStart.value.adminPort,
          kmsUrl: kms.url,
          ssmUrl: ssm.url,
          keyServiceUrl: keyService.url,
          originUrl: origin.url,
          apiOriginUrl: apiOrigin.url,
          caPath: pki.paths.ca,
          certDir,
          aliasPrefix: DEV_ALIAS_PREFIX,
          pids: { devStack: process.pid, edge: edge.pid, keyService: keyService.pid },
        },
        null,
        2,
      ),
    );
    started.push(async () => fs.rmSync(stateFile, { force: true }));

    return {
      edgeUrl,
      edgePort: edgeStart.value.tlsPort,
      adminPort: edgeStart.value.adminPort,
      caPath: pki.paths.ca,
      kms,
      ssm,
      origin,
      apiOrigin,
      keyService,
      edge,
      stateFile,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
