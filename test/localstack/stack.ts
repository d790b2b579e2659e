/**
 * The keyless stack on LocalStack (docs/localstack.md): what `npm run test:localstack` deploys and drives.
 *
 *   LocalStack KMS   ← dev PKI: CA + `localhost` leaves (RSA 2048 and ECDSA P-256) signed through KMS
 *        ↑ AWS_ENDPOINT_URL, injected by LocalStack into every Lambda container
 *   LocalStack Lambda: the key service, bundled like the CDK stack bundles it, runtime nodejs24.x,
 *                      version published behind the alias `live`
 *        ↑ AWS_ENDPOINT_URL_LAMBDA
 *   edge (local process, dist/edge-proxy/src/main.js: certificates and key names only) → demo origin
 *
 * ECS and ELB are not in LocalStack's free tier, so the edge runs as a local process. Everything is
 * written under the work directory (default .keyless/localstack), including `state.json`, which the
 * scenario suite reads, and `edge.log`.
 */
import type { ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateKeyCommand, DescribeKeyCommand, CreateAliasCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateAliasCommand as CreateLambdaAliasCommand,
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  LambdaClient,
  PublishVersionCommand,
  waitUntilFunctionActiveV2,
} from '@aws-sdk/client-lambda';
import { LambdaKeyClient } from '../helpers/lambda-key-client';
import { DEFAULT_KEY_SERVICE } from '../../lib/config';
import { aliasNames, KEY_SERVICE_ALIAS, KEY_SERVICE_POWERTOOLS_SERVICE, METRICS } from '../../lib/naming';
import { ticketKeyAlias, ticketParameterPrefix } from '../../lib/ticket-key-store';
import { createKmsKey, ensureDevPki, issueLeaf } from '../../local/dev-pki';
import { startDemoOrigin } from '../../local/demo-origin';
import { edgeListening, inheritedEnv, startChild, stopChild } from '../../local/processes';
import { ARCHITECTURE, bundleKeyService, HANDLER, REPO_ROOT, RUNTIME } from './bundle';

export const DEPLOYMENT = 'localstack';
export const FUNCTION_NAME = 'keyless-key-service';
/** LocalStack's default account for the `test` access key. */
export const ACCOUNT_ID = '000000000000';
/** LocalStack accepts any credentials; `test` maps to its default account. */
export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
/** Key names at the key service (what the edge configuration refers to). */
export const KEY_NAMES = { rsa: 'localhost', ecdsa: 'localhost-ecdsa' } as const;
/**
 * Edge key-operation deadline for this suite. Production uses 1 s; LocalStack starts a new Lambda
 * container (seconds) whenever an invocation finds no idle one, which a handshake must survive here.
 */
export const EDGE_KEY_OPERATION_TIMEOUT_MS = 15_000;

export interface LocalStackState {
  endpoint: string;
  region: string;
  functionName: string;
  /** `keyless-key-service:live`: what the edge invokes, as in AWS. */
  invokedName: string;
  functionArn: string;
  runtime: string;
  edgePort: number;
  adminPort: number;
  caPath: string;
  chains: { rsa: string; ecdsa: string };
  keyAliases: { ca: string; rsa: string; ecdsa: string; ticketKeys: string };
  keyNames: typeof KEY_NAMES;
  edgeLog: string;
  originUrl: string;
  workDir: string;
}

export interface LocalStackStack {
  state: LocalStackState;
  stateFile: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  endpoint: string;
  region?: string;
  workDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Leave the function deployed after stop() (for poking at it by hand). */
  keepFunction?: boolean;
}

const DIST = path.join(REPO_ROOT, 'dist');

export async function startLocalStackStack(opts: StartOptions): Promise<LocalStackStack> {
  const region = opts.region ?? 'us-east-1';
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const workDir = path.resolve(opts.workDir ?? path.join(REPO_ROOT, '.keyless', 'localstack'));
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
  const edgeMain = path.join(DIST, 'edge-proxy/src/main.js');
  if (!fs.existsSync(edgeMain)) throw new Error(`${edgeMain} is missing: run \`npm run build\` first`);

  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  const kms = new KMSClient({ region, endpoint: opts.endpoint, credentials: CREDENTIALS, maxAttempts: 2 });
  const lambda = new LambdaClient({ region, endpoint: opts.endpoint, credentials: CREDENTIALS, maxAttempts: 2 });
  cleanups.push(async () => {
    kms.destroy();
    lambda.destroy();
  });

  try {
    // 1. Keys and certificates, through LocalStack's KMS. The private keys exist only there.
    const keyAliases = {
      ca: `alias/keyless/${DEPLOYMENT}/dev-ca`,
      rsa: aliasNames.signingKey(DEPLOYMENT, KEY_NAMES.rsa),
      ecdsa: aliasNames.signingKey(DEPLOYMENT, KEY_NAMES.ecdsa),
      ticketKeys: ticketKeyAlias(DEPLOYMENT),
    };
    const pki = await ensureDevPki({
      kms,
      dir: workDir,
      leafKeySpec: 'RSA_2048',
      caAlias: keyAliases.ca,
      leafAlias: keyAliases.rsa,
    });
    await createKmsKey(kms, {
      alias: keyAliases.ecdsa,
      keySpec: 'ECC_NIST_P256',
      description: 'keyless-tls LocalStack suite: localhost ECDSA',
    });
    const ecLeaf = await issueLeaf(kms, {
      caAlias: keyAliases.ca,
      caCertPem: pki.caPem,
      leafAlias: keyAliases.ecdsa,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    const ecChain = path.join(workDir, 'localhost-ecdsa.chain.pem');
    fs.writeFileSync(ecChain, ecLeaf + pki.caPem);
    await ensureTicketKey(kms, keyAliases.ticketKeys);
    log(
      `kms: CA ${keyAliases.ca}, leaves ${keyAliases.rsa} (RSA_2048) and ${keyAliases.ecdsa} (ECC_NIST_P256), ticket-key envelope ${keyAliases.ticketKeys}`,
    );

    // 2. The key service, bundled like CDK bundles it, deployed as a published version behind `live`.
    const bundle = await bundleKeyService(path.join(workDir, 'bundle'));
    for (const w of bundle.warnings) log(`esbuild: warning: ${w}`);
    log(`bundle: ${path.relative(REPO_ROOT, bundle.zipPath)} (${Math.round(bundle.zip.length / 1024)} KiB)`);
    const keysConfig = [
      { name: KEY_NAMES.rsa, custody: 'kms', keyId: keyAliases.rsa },
      { name: KEY_NAMES.ecdsa, custody: 'kms', keyId: keyAliases.ecdsa },
    ];
    const functionArn = await deployFunction(lambda, {
      zip: bundle.zip,
      environment: {
        KEYLESS_KEYS: JSON.stringify(keysConfig),
        // Ticket keys in LocalStack's SSM Parameter Store, encrypted under its KMS (as lib/ticket-key-store.ts wires it).
        KEYLESS_TICKET_KEY_ID: keyAliases.ticketKeys,
        KEYLESS_TICKET_PARAMETER_PREFIX: ticketParameterPrefix(DEPLOYMENT),
        KEYLESS_DEPLOYMENT: DEPLOYMENT,
        POWERTOOLS_SERVICE_NAME: KEY_SERVICE_POWERTOOLS_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRICS.keyServiceNamespace,
        NODE_OPTIONS: '--enable-source-maps',
        // Not AWS_ENDPOINT_URL: LocalStack injects it into the container, pointing at itself.
      },
      log,
    });
    if (!opts.keepFunction) {
      cleanups.push(async () => {
        await lambda.send(new DeleteFunctionCommand({ FunctionName: FUNCTION_NAME }));
      });
    }
    const invokedName = `${FUNCTION_NAME}:${KEY_SERVICE_ALIAS}`;

    // 3. Warm up through the edge's own client: the first invocation starts a container (and may
    //    still pull the runtime image). The function must reach LocalStack's KMS from inside it.
    await warmUp({ endpoint: opts.endpoint, region, invokedName, rsaCertPem: pki.leafPem, ecCertPem: ecLeaf, log });

    // 4. Origin and edge.
    const origin = await startDemoOrigin({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => origin.close());
    const edgeLog = path.join(workDir, 'edge.log');
    const edgeConfig = path.join(workDir, 'edge.json');
    fs.writeFileSync(
      edgeConfig,
      JSON.stringify(
        {
          listen: { host: '127.0.0.1', port: 0 },
          admin: { host: '127.0.0.1', port: 0 },
          certificates: [
            { chainFile: pki.paths.chain, keyName: KEY_NAMES.rsa, hostnames: ['localhost'] },
            { chainFile: ecChain, keyName: KEY_NAMES.ecdsa, hostnames: ['localhost'] },
          ],
          keyServices: [{ functionName: invokedName, region }],
          keyOperationTimeoutMs: EDGE_KEY_OPERATION_TIMEOUT_MS,
          origin: origin.url,
        },
        null,
        2,
      ),
    );
    const edge = await startEdge(edgeMain, edgeLog, {
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_LAMBDA: opts.endpoint,
      KEYLESS_EDGE_CONFIG: edgeConfig,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    cleanups.push(() => stopChild(edge.child));
    log(
      `edge: https://localhost:${edge.tlsPort}/ (admin ${edge.adminPort}) → Lambda ${invokedName} at ${opts.endpoint}; origin ${origin.url}`,
    );

    const state: LocalStackState = {
      endpoint: opts.endpoint,
      region,
      functionName: FUNCTION_NAME,
      invokedName,
      functionArn,
      runtime: RUNTIME,
      edgePort: edge.tlsPort,
      adminPort: edge.adminPort,
      caPath: pki.paths.ca,
      chains: { rsa: pki.paths.chain, ecdsa: ecChain },
      keyAliases,
      keyNames: KEY_NAMES,
      edgeLog,
      originUrl: origin.url,
      workDir,
    };
    const stateFile = path.join(workDir, 'state.json');
    fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
    return { state, stateFile, stop: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** The symmetric ticket-key envelope key the CDK stack gives the function (KEYLESS_TICKET_KEY_ID). */
async function ensureTicketKey(kms: KMSClient, alias: string): Promise<void> {
  const existing = await kms.send(new DescribeKeyCommand({ KeyId: alias })).catch((e: Error) => {
    if (e.name === 'NotFoundException') return undefined;
    throw e;
  });
  if (existing?.KeyMetadata?.KeyState === 'Enabled') return;
  const created = await kms.send(
    new CreateKeyCommand({
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      Description: 'keyless-tls LocalStack suite: ticket-key envelope',
    }),
  );
  await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: created.KeyMetadata?.KeyId }));
}

interface DeployOptions {
  zip: Buffer;
  environment: Record<string, string>;
  log: (line: string) => void;
}

/** (Re)create the function from the zip, publish a version, point `live` at it. Returns the function ARN. */
export async function deployFunction(lambda: LambdaClient, o: DeployOptions): Promise<string> {
  const exists = await lambda.send(new GetFunctionCommand({ FunctionName: FUNCTION_NAME })).then(
    () => true,
    (e: Error) => {
      if (e.name === 'ResourceNotFoundException') return false;
      throw e;
    },
  );
  if (exists) {
    o.log(`lambda: deleting the previous ${FUNCTION_NAME}`);
    await lambda.send(new DeleteFunctionCommand({ FunctionName: FUNCTION_NAME }));
  }
  const created = await lambda.send(
    new CreateFunctionCommand({
      FunctionName: FUNCTION_NAME,
      Description: 'keyless localstack: key service (KMS-backed private-key operations for the TLS edge)',
      Runtime: RUNTIME,
      Handler: HANDLER,
      Architectures: [ARCHITECTURE],
      // LocalStack (community) does not enforce IAM; the role only has to be a well-formed ARN.
      Role: `arn:aws:iam::${ACCOUNT_ID}:role/keyless-${DEPLOYMENT}-key-service`,
      Code: { ZipFile: o.zip },
      MemorySize: DEFAULT_KEY_SERVICE.memoryMiB,
      Timeout: DEFAULT_KEY_SERVICE.timeoutSeconds,
      Environment: { Variables: o.environment },
    }),
  );
  o.log(
    `lambda: created ${created.FunctionArn} (${RUNTIME}, ${ARCHITECTURE}); waiting until Active (the first run pulls the runtime image)`,
  );
  const started = Date.now();
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 600, minDelay: 1, maxDelay: 5 },
    { FunctionName: FUNCTION_NAME },
  );
  const version = await lambda.send(
    new PublishVersionCommand({
      FunctionName: FUNCTION_NAME,
      Description: `test:localstack ${new Date().toISOString()}`,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 600, minDelay: 1, maxDelay: 5 },
    { FunctionName: FUNCTION_NAME, Qualifier: version.Version },
  );
  await lambda.send(
    new CreateLambdaAliasCommand({
      FunctionName: FUNCTION_NAME,
      Name: KEY_SERVICE_ALIAS,
      FunctionVersion: version.Version,
    }),
  );
  o.log(
    `lambda: version ${version.Version} active behind alias ${KEY_SERVICE_ALIAS} after ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return created.FunctionArn as string;
}

interface WarmUpOptions {
  endpoint: string;
  region: string;
  invokedName: string;
  rsaCertPem: string;
  ecCertPem: string;
  log: (line: string) => void;
}

/**
 * First invocations through the edge's LambdaKeyClient: `ping` (the function starts and reads its
 * configuration), then `public_key` of both keys, which the function can only answer through
 * LocalStack's KMS — they must equal the certificates' keys.
 */
async function warmUp(o: WarmUpOptions): Promise<void> {
  const client = new LambdaKeyClient({
    functionName: o.invokedName,
    region: o.region,
    endpoint: o.endpoint,
    credentials: CREDENTIALS,
    timeoutMs: 120_000,
  });
  const started = Date.now();
  try {
    const ping = await client.ping();
    o.log(
      `lambda: ping answered after ${((Date.now() - started) / 1000).toFixed(1)} s: ${ping.service} ${ping.version}, keys ${ping.keys.map((k) => `${k.name}/${k.custody}`).join(', ')}`,
    );
    for (const [name, pem] of [
      [KEY_NAMES.rsa, o.rsaCertPem],
      [KEY_NAMES.ecdsa, o.ecCertPem],
    ] as const) {
      const { spki, keySpec } = await client.publicKey(name);
      const certSpki = new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
      if (!spki.equals(certSpki))
        throw new Error(`the key service's public key for ${name} does not match its certificate`);
      o.log(
        `lambda: public_key ${name} (${keySpec}) read from LocalStack KMS inside the function matches the certificate`,
      );
    }
  } catch (e) {
    const logs = await lambdaLogLines(o.endpoint, o.region, FUNCTION_NAME).catch(() => []);
    const tail = logs
      .slice(-15)
      .map((l) => `    ${l}`)
      .join('\n');
    throw new Error(
      `the key service in LocalStack did not answer: ${(e as Error).message}${tail ? `\n  function log (CloudWatch Logs):\n${tail}` : ''}`,
    );
  } finally {
    client.close();
  }
}

/**
 * The function's CloudWatch Logs lines (LocalStack forwards Lambda output to its Logs service).
 * A plain AWS JSON 1.1 call: no Logs SDK client in this project. LocalStack does not check
 * signatures; the Authorization header only names the service, region and (default) account.
 */
export async function lambdaLogLines(endpoint: string, region: string, functionName: string): Promise<string[]> {
  const lines: string[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < 20; page++) {
    const res = await fetch(`${endpoint}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'Logs_20140328.FilterLogEvents',
        authorization: `AWS4-HMAC-SHA256 Credential=${CREDENTIALS.accessKeyId}/20260101/${region}/logs/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify({ logGroupName: `/aws/lambda/${functionName}`, nextToken }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as {
      events?: { message?: string }[];
      nextToken?: string;
      __type?: string;
      message?: string;
    };
    if (!res.ok)
      throw new Error(`FilterLogEvents: HTTP ${res.status} ${body.__type ?? ''} ${body.message ?? ''}`.trim());
    for (const e of body.events ?? []) if (e.message) lines.push(e.message.trimEnd());
    if (!body.nextToken || body.nextToken === nextToken) break;
    nextToken = body.nextToken;
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The edge process

interface Edge {
  child: ChildProcess;
  tlsPort: number;
  adminPort: number;
}

async function startEdge(script: string, logFile: string, env: Record<string, string>): Promise<Edge> {
  const { child, value } = await startChild(
    'the edge',
    script,
    [],
    { ...inheritedEnv(), ...env },
    edgeListening,
    fs.createWriteStream(logFile),
    30_000,
  );
  return { child, ...value };
}
