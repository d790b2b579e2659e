/**
 * The rehearsal's stand-in for an AWS account: local KMS, SSM and Lambda endpoints that record who
 * calls them, CloudFormation's part of a deploy (the KMS keys, aliases and parameters the templates
 * declare, created through the same APIs), the key service run from its synthesized asset in each
 * region, and edge tasks started from the task definition behind a local NLB.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

import { CreateAliasCommand, CreateKeyCommand, KMSClient, ReplicateKeyCommand } from '@aws-sdk/client-kms';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';

import { CallLog, sigV4Credential, type RecordedCall } from '../../local/call-log';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { startLocalSsm, type LocalSsm } from '../../local/ssm';
import { StackResolver, type StackEnv, type Template } from './cfn';

export const ACCOUNT = '111122223333';
/** One access key id per process, so every recorded call names its principal. */
export const ACCESS_KEYS = {
  edge: 'AKIAREHEARSALEDGE',
  keyService: 'AKIAREHEARSALKEYSVC',
  operator: 'AKIAREHEARSALOPERATOR',
  cloudformation: 'AKIAREHEARSALCFN',
} as const;
export const PRINCIPALS: Record<string, string> = {
  [ACCESS_KEYS.edge]: 'edge-task-role',
  [ACCESS_KEYS.keyService]: 'key-service-role',
  [ACCESS_KEYS.operator]: 'operator',
  [ACCESS_KEYS.cloudformation]: 'cloudformation',
};
export const OPERATOR_ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/KeylessOperator`;

export interface DeployedStack {
  name: string;
  region: string;
  template: Template;
  resolver: StackResolver;
  outputs: Record<string, string>;
}

export interface World {
  kms: LocalKms;
  ssm: LocalSsm;
  lambdaUrl: string;
  log: CallLog;
  /** Lambda host of each region, by region. */
  lambdaHosts: Map<string, { url: string; child: ChildProcess }>;
  /** Regions whose Lambda service is unreachable (an outage the failover check simulates). */
  down: Set<string>;
  /** Everything any process printed on stdout, line by line (EMF lines among them). */
  stdout: { source: string; line: string }[];
  close(): Promise<void>;
}

export function credentials(accessKeyId: string): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId, secretAccessKey: 'rehearsal' };
}

export async function startWorld(primaryRegion: string): Promise<World> {
  const log = new CallLog({ principals: PRINCIPALS });
  const kms = await startLocalKms({ region: primaryRegion, accountId: ACCOUNT, callLog: log });
  const ssm = await startLocalSsm({ region: primaryRegion, accountId: ACCOUNT, callLog: log });
  const lambdaHosts = new Map<string, { url: string; child: ChildProcess }>();
  const down = new Set<string>();
  // One Lambda URL for every region (AWS_ENDPOINT_URL_LAMBDA is one variable): route by the
  // region of a function ARN, else by the region the request is signed for.
  const router = http.createServer((req, res) => {
    const fn = decodeURIComponent(/^\/2015-03-31\/functions\/([^/]+)\//.exec(req.url ?? '')?.[1] ?? '');
    const region =
      /^arn:aws[a-z-]*:lambda:([^:]+):/.exec(fn)?.[1] ??
      sigV4Credential(req.headers.authorization)?.region ??
      primaryRegion;
    const host = lambdaHosts.get(region);
    if (down.has(region)) {
      req.socket.destroy();
      return;
    }
    if (!host) {
      res
        .writeHead(404, { 'x-amzn-ErrorType': 'ResourceNotFoundException', 'content-type': 'application/json' })
        .end(
          JSON.stringify({ Type: 'User', Message: `Function not found: ${fn} (no key service deployed in ${region})` }),
        );
      return;
    }
    const up = http.request(`${host.url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(up);
  });
  router.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => router.listen(0, '127.0.0.1', resolve));
  const lambdaUrl = `http://127.0.0.1:${(router.address() as net.AddressInfo).port}`;
  const world: World = {
    kms,
    ssm,
    lambdaUrl,
    log,
    lambdaHosts,
    down,
    stdout: [],
    close: async () => {
      for (const h of lambdaHosts.values()) await stopProcess(h.child);
      router.closeAllConnections();
      await new Promise<void>((resolve) => router.close(() => resolve()));
      await kms.close();
      await ssm.close();
    },
  };
  return world;
}

/**
 * CloudFormation's part: creates what the template declares in the local services, in template
 * order (keys before aliases), and returns the stack's outputs. Resources without a local
 * counterpart (VPCs, roles, alarms, ...) are only resolved (their policies are checked later).
 */
/** Physical ids of the resources the last deployment of each stack created (key ids), by stack name. */
export const DEPLOYED_PHYSICAL_IDS = new Map<string, Map<string, string>>();

export async function deployStack(
  world: World,
  name: string,
  region: string,
  template: Template,
  stackOutputs: Map<string, Record<string, string>>,
  notes: string[],
): Promise<DeployedStack> {
  const env: StackEnv = { stackName: name, account: ACCOUNT, region, physical: new Map(), stackOutputs };
  DEPLOYED_PHYSICAL_IDS.set(name, env.physical);
  const resolver = new StackResolver(template, env);
  const kms = new KMSClient({
    region,
    endpoint: world.kms.url,
    credentials: credentials(ACCESS_KEYS.cloudformation),
    maxAttempts: 1,
  });
  const ssm = new SSMClient({
    region,
    endpoint: world.ssm.url,
    credentials: credentials(ACCESS_KEYS.cloudformation),
    maxAttempts: 1,
  });
  try {
    const byType = (type: string): [string, Record<string, unknown>][] =>
      Object.entries(template.Resources)
        .filter(([, r]) => r.Type === type && (r.Condition === undefined || resolver.condition(r.Condition)))
        .map(([id, r]) => [id, r.Properties ?? {}]);
    for (const [id, p] of byType('AWS::KMS::Key')) {
      const out = await kms.send(
        new CreateKeyCommand({
          KeySpec: p.KeySpec as never,
          KeyUsage: p.KeyUsage as never,
          MultiRegion: p.MultiRegion === true,
          Description: p.Description ? resolver.str(p.Description) : undefined,
          Policy: p.KeyPolicy ? JSON.stringify(resolver.resolve(p.KeyPolicy)) : undefined,
          Tags: tagsOf(resolver, p.Tags),
        }),
      );
      env.physical.set(id, out.KeyMetadata!.KeyId!);
    }
    for (const [id, p] of byType('AWS::KMS::ReplicaKey')) {
      const primary = resolver.str(p.PrimaryKeyArn);
      const primaryRegion = primary.split(':')[3];
      const inPrimary = new KMSClient({
        region: primaryRegion,
        endpoint: world.kms.url,
        credentials: credentials(ACCESS_KEYS.cloudformation),
        maxAttempts: 1,
      });
      try {
        const out = await inPrimary.send(
          new ReplicateKeyCommand({
            KeyId: primary,
            ReplicaRegion: region,
            Policy: p.KeyPolicy ? JSON.stringify(resolver.resolve(p.KeyPolicy)) : undefined,
            Description: p.Description ? resolver.str(p.Description) : undefined,
            Tags: tagsOf(resolver, p.Tags),
          }),
        );
        env.physical.set(id, out.ReplicaKeyMetadata!.KeyId!);
      } catch (e) {
        notes.push(
          `${name}: ${id} (AWS::KMS::ReplicaKey) could not be created locally: ${(e as Error).name}: ${(e as Error).message}`,
        );
        env.physical.set(id, primary.split('/').pop()!);
      } finally {
        inPrimary.destroy();
      }
    }
    for (const [, p] of byType('AWS::KMS::Alias')) {
      await kms.send(
        new CreateAliasCommand({ AliasName: resolver.str(p.AliasName), TargetKeyId: resolver.str(p.TargetKeyId) }),
      );
    }
    for (const [, p] of byType('AWS::SSM::Parameter')) {
      await ssm.send(
        new PutParameterCommand({
          Name: resolver.str(p.Name),
          Value: resolver.str(p.Value),
          Type: (p.Type as never) ?? 'String',
          Tier: p.Tier as never,
          Overwrite: true,
          Description: p.Description ? resolver.str(p.Description) : undefined,
        }),
      );
    }
  } finally {
    kms.destroy();
    ssm.destroy();
  }
  const outputs: Record<string, string> = {};
  for (const [k, o] of Object.entries(template.Outputs ?? {})) outputs[k] = String(resolver.resolve(o.Value));
  stackOutputs.set(name, outputs);
  return { name, region, template, resolver, outputs };
}

/** CloudFormation `Tags` ({Key, Value}) as KMS takes them ({TagKey, TagValue}). */
function tagsOf(resolver: StackResolver, tags: unknown): { TagKey: string; TagValue: string }[] | undefined {
  if (!Array.isArray(tags)) return undefined;
  return tags.map((t: { Key: unknown; Value: unknown }) => ({
    TagKey: resolver.str(t.Key),
    TagValue: resolver.str(t.Value),
  }));
}

/** Starts a region's key service from its asset behind a local Lambda endpoint (see key-service-host.ts). */
export async function startKeyService(
  world: World,
  opts: {
    region: string;
    assetDir: string;
    handler: string;
    functionName: string;
    env: Record<string, string>;
    timeoutMs: number;
    hostScript: string;
  },
): Promise<void> {
  const child = fork(opts.hostScript, [], {
    env: {
      PATH: process.env.PATH,
      ...opts.env,
      AWS_REGION: opts.region,
      AWS_DEFAULT_REGION: opts.region,
      AWS_ACCESS_KEY_ID: ACCESS_KEYS.keyService,
      AWS_SECRET_ACCESS_KEY: 'rehearsal',
      AWS_LAMBDA_FUNCTION_NAME: opts.functionName.split(':')[0],
      AWS_ENDPOINT_URL_KMS: world.kms.url,
      AWS_ENDPOINT_URL_SSM: world.ssm.url,
      REHEARSAL_ASSET_DIR: opts.assetDir,
      REHEARSAL_HANDLER: opts.handler,
      REHEARSAL_FUNCTION: opts.functionName,
      REHEARSAL_PRINCIPALS: JSON.stringify(PRINCIPALS),
      REHEARSAL_ACCOUNT: ACCOUNT,
      REHEARSAL_TIMEOUT_MS: String(opts.timeoutMs),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  collectLines(child, `key-service ${opts.region}`, world.stdout);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the key service in ${opts.region} did not start within 30 s`)),
      30_000,
    );
    child.on('message', (m: { ready?: string; call?: RecordedCall }) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve(m.ready);
      }
      if (m.call) world.log.calls.push(m.call);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the key service in ${opts.region} exited ${code} at start`));
    });
  });
  world.lambdaHosts.set(opts.region, { url, child });
}

export interface EdgeTask {
  child: ChildProcess;
  tlsPort: number;
  adminPort: number;
  exit: Promise<number | null>;
  stderr: string[];
}

/** Starts one edge task: the image's CMD in its root, with the task definition's environment. */
export function startEdgeTask(
  world: World,
  opts: { root: string; cmd: string[]; env: Record<string, string>; label: string },
): Promise<EdgeTask> {
  const [exe, ...args] = opts.cmd;
  if (exe !== 'node') throw new Error(`the image's CMD runs ${exe}; the rehearsal runs node entry points only`);
  const child = spawn(process.execPath, args, {
    cwd: opts.root,
    env: { PATH: process.env.PATH, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(...d.toString().split('\n').filter(Boolean)));
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${opts.label} did not listen within 30 s`)), 30_000);
    collectLines(child, opts.label, world.stdout, (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; tlsPort?: number; adminPort?: number };
        if (j.msg === 'edge listening') {
          clearTimeout(timer);
          resolve({ child, tlsPort: j.tlsPort!, adminPort: j.adminPort!, exit, stderr });
        }
      } catch {
        // not a JSON line
      }
    });
    void exit.then((code) => {
      clearTimeout(timer);
      reject(
        Object.assign(
          new Error(
            `${opts.label} exited ${code} before listening: ${[...stderr, ...world.stdout.filter((l) => l.source === opts.label).map((l) => l.line)].slice(-3).join(' | ')}`,
          ),
          { exitCode: code },
        ),
      );
    });
  });
}

function collectLines(
  child: ChildProcess,
  source: string,
  sink: World['stdout'],
  onLine?: (line: string) => void,
): void {
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      sink.push({ source, line });
      onLine?.(line);
    }
  });
  child.stderr!.on('data', () => undefined);
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export const hostScript = (repo: string): string => path.join(repo, 'dist', 'test', 'rehearsal', 'key-service-host.js');
