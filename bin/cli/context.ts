/**
 * What every `keyless` command shares: the global options (AWS profile and region, deployment,
 * alias prefix, the local stack), where certificates are stored, and how to reach the key service.
 * Options win over environment variables, which win over defaults:
 *
 *   --deployment     KEYLESS_DEPLOYMENT          default `dev`
 *   --alias-prefix   KEYLESS_ALIAS_PREFIX        default alias/keyless/<deployment>/keys/ (lib/naming.ts)
 *   --cert-dir       KEYLESS_CERT_DIR            a directory store ...
 *   --ssm-prefix     KEYLESS_CERT_SSM_PREFIX     ... or SSM; default /keyless/<deployment>/certs/
 *   --key-service    KEYLESS_KEY_SERVICE         key-service function name or ARN (status, import)
 *   --local          the running local stack: its KMS, key service, alias prefix and certificate
 *                    directory from <dev-dir>/stack.json (certificates default to <dev-dir>/certs/)
 *   --dev-dir        KEYLESS_DEV_DIR             default .keyless/dev
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCertificateStore, type CertificateStoreBackend } from '../../edge-proxy/src/cert-store';
import { certificatePrefix } from '../../lib/naming';
import type { OptionSpec, ParsedArgs } from './args';
import { opt } from './args';
import { AwsClients, type LocalEndpoints } from './aws';
import { unavailable, usageError } from './errors';
import { lambdaKeyService, type KeyServiceProbe } from './key-service';
import { aliasPrefixFor, validateAliasPrefix } from './keys';
import { createOutput, type Output, type OutputStreams } from './output';

/** The local stack's key-service function name (local/dev-stack.ts FUNCTION_NAME). */
export const LOCAL_FUNCTION_NAME = 'keyless-key-service';
const LOCAL_REGION = 'us-east-1';

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'region', type: 'string', value: 'REGION', description: "AWS region (default: AWS_REGION or the profile's)" },
  { name: 'profile', type: 'string', value: 'NAME', description: 'AWS profile from ~/.aws/config' },
  {
    name: 'deployment',
    type: 'string',
    value: 'NAME',
    description: 'deployment name (default KEYLESS_DEPLOYMENT or dev)',
  },
  {
    name: 'alias-prefix',
    type: 'string',
    value: 'PREFIX',
    description: 'KMS alias prefix of key names (default alias/keyless/<deployment>/keys/)',
  },
  {
    name: 'local',
    type: 'boolean',
    description: 'use the running local stack (npm start): its KMS, key service and certificate directory',
  },
  {
    name: 'dev-dir',
    type: 'string',
    value: 'DIR',
    description: "the local stack's folder (default KEYLESS_DEV_DIR or .keyless/dev)",
  },
  { name: 'json', type: 'boolean', description: 'print the result as JSON (for scripts)' },
  { name: 'quiet', type: 'boolean', description: 'no progress output on stderr' },
];

export const STORE_OPTIONS: OptionSpec[] = [
  {
    name: 'cert-dir',
    type: 'string',
    value: 'DIR',
    description: 'certificate store in a directory (default KEYLESS_CERT_DIR; with --local <dev-dir>/certs)',
  },
  {
    name: 'ssm-prefix',
    type: 'string',
    value: 'PREFIX',
    description:
      'certificate store in SSM Parameter Store (default KEYLESS_CERT_SSM_PREFIX or /keyless/<deployment>/certs/)',
  },
];

export const KEY_SERVICE_OPTIONS: OptionSpec[] = [
  {
    name: 'key-service',
    type: 'string',
    value: 'FUNCTION',
    description: 'key-service Lambda function name or ARN (default KEYLESS_KEY_SERVICE; with --local the local one)',
  },
];

export interface CliIo {
  env?: NodeJS.ProcessEnv;
  streams?: OutputStreams;
  cwd?: string;
}

export interface CliContext {
  out: Output;
  aws: AwsClients;
  deployment: string;
  aliasPrefix: string;
  devDir: string;
  local: LocalEndpoints | undefined;
  env: NodeJS.ProcessEnv;
  /** The certificate store the options name (opened on first use). */
  store(): CertificateStoreBackend;
  /** The key service, when one is named (or --local). */
  keyService(): KeyServiceProbe | undefined;
  close(): void;
}

interface LocalStackState {
  kmsUrl?: unknown;
  keyServiceUrl?: unknown;
  aliasPrefix?: unknown;
  certDir?: unknown;
}

/** The running local stack's endpoints, from the state file `npm start` writes. */
export function readLocalStack(devDir: string): LocalEndpoints & { aliasPrefix?: string; certDir?: string } {
  const file = path.join(devDir, 'stack.json');
  let state: LocalStackState;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8')) as LocalStackState;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw unavailable(
      missing ? `the local stack is not running (no ${file})` : `cannot read ${file}: ${(e as Error).message}`,
      'Start it with `npm start` in another terminal (or pass --dev-dir where it runs).',
    );
  }
  if (typeof state.kmsUrl !== 'string')
    throw unavailable(`${file} names no local KMS`, 'Restart the local stack with `npm start`.');
  return {
    kmsUrl: state.kmsUrl,
    keyServiceUrl: typeof state.keyServiceUrl === 'string' ? state.keyServiceUrl : undefined,
    region: LOCAL_REGION,
    aliasPrefix: typeof state.aliasPrefix === 'string' ? state.aliasPrefix : undefined,
    certDir: typeof state.certDir === 'string' ? state.certDir : undefined,
  };
}

const DEPLOYMENT_RE = /^[a-z][a-z0-9-]{0,31}$/;

export function resolveContext(args: ParsedArgs, io: CliIo = {}): CliContext {
  const env = io.env ?? process.env;
  const cwd = io.cwd ?? process.cwd();
  const out = createOutput({ json: opt.bool(args, 'json'), quiet: opt.bool(args, 'quiet'), streams: io.streams });
  const deployment = opt.str(args, 'deployment') ?? env.KEYLESS_DEPLOYMENT ?? 'dev';
  if (!DEPLOYMENT_RE.test(deployment))
    throw usageError(
      `deployment ${JSON.stringify(deployment)} is not a deployment name`,
      'Use lower-case letters, digits and "-" (e.g. --deployment prod), as in the CDK config.',
    );
  const devDir = path.resolve(cwd, opt.str(args, 'dev-dir') ?? env.KEYLESS_DEV_DIR ?? path.join('.keyless', 'dev'));
  if (opt.bool(args, 'local') && (opt.str(args, 'profile') || opt.str(args, 'region'))) {
    throw usageError('--local talks to the local stack; --profile and --region are for AWS', 'Drop one of them.');
  }
  const localState = opt.bool(args, 'local') ? readLocalStack(devDir) : undefined;
  const aliasPrefix = validateAliasPrefix(
    opt.str(args, 'alias-prefix') ?? env.KEYLESS_ALIAS_PREFIX ?? localState?.aliasPrefix ?? aliasPrefixFor(deployment),
  );
  const aws = new AwsClients({ region: opt.str(args, 'region'), profile: opt.str(args, 'profile'), local: localState });

  let opened: { store: CertificateStoreBackend; close(): void } | undefined;
  const store = (): CertificateStoreBackend => {
    if (opened) return opened.store;
    const dir = opt.str(args, 'cert-dir') ?? env.KEYLESS_CERT_DIR;
    const ssmPrefix = opt.str(args, 'ssm-prefix') ?? env.KEYLESS_CERT_SSM_PREFIX;
    if (opt.str(args, 'cert-dir') && opt.str(args, 'ssm-prefix'))
      throw usageError('--cert-dir and --ssm-prefix both name a certificate store', 'Give one of them.');
    if (dir !== undefined && !opt.str(args, 'ssm-prefix'))
      opened = openCertificateStore({ directory: path.resolve(cwd, dir) });
    else if (ssmPrefix !== undefined) opened = openCertificateStore({ ssmPrefix }, aws.ssm);
    else if (localState) opened = openCertificateStore({ directory: localState.certDir ?? path.join(devDir, 'certs') });
    else opened = openCertificateStore({ ssmPrefix: certificatePrefix(deployment) }, aws.ssm);
    return opened.store;
  };
  const keyService = (): KeyServiceProbe | undefined => {
    const fn =
      opt.str(args, 'key-service') ??
      env.KEYLESS_KEY_SERVICE ??
      (localState?.keyServiceUrl ? LOCAL_FUNCTION_NAME : undefined);
    return fn ? lambdaKeyService(aws.lambda, fn) : undefined;
  };
  return {
    out,
    aws,
    deployment,
    aliasPrefix,
    devDir,
    local: localState,
    env,
    store,
    keyService,
    close: () => {
      opened?.close();
      aws.destroy();
    },
  };
}
