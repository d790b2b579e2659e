/**
 * Deployment configuration of the keyless stacks: typed, defaulted and validated.
 *
 * Sources, later ones winning (objects merge key by key, arrays are replaced whole):
 *   1. the `keyless` object in `cdk.json` context (the repository ships a working example),
 *   2. a JSON file named by the context key `keyless:configFile` (relative to the repository root),
 *   3. single-value overrides: `-c keyless:deployment=prod`, `-c keyless:regions=eu-west-1,eu-central-1`,
 *      `-c keyless:origin=http://origin.internal:8080`, `-c keyless:alarmEmail=oncall@example.com`.
 *
 * Every problem is reported at once, each naming the field and what would fix it.
 */
import { createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Node } from 'constructs';
import { isObject } from '../contract/json';
import {
  KMS_SIGNING_ALGORITHMS_BY_KEY_SPEC,
  KMS_SIGNING_KEY_SPECS,
  type KmsSigningKeySpec,
} from '../contract/signature-schemes';
import { inspectCertificate } from './certificates';
import { groupByName, SUPPORTED_GROUPS } from '../edge-proxy/src/tls/groups';

/* ----------------------------------------------------------------------------------------------
 * Vocabulary
 * -------------------------------------------------------------------------------------------- */

/** KMS `SIGN_VERIFY` key specs the key service can use for TLS (contract/signature-schemes.ts). */
export const KMS_KEY_SPECS = KMS_SIGNING_KEY_SPECS;
export type KmsKeySpec = KmsSigningKeySpec;

/**
 * KMS signing algorithms each spec may use for TLS, from the signature-scheme table: PSS (TLS 1.3 and
 * 1.2) then PKCS#1 v1.5 (TLS 1.2) for RSA; ECC binds curve and hash. SHA-1 does not exist in KMS.
 */
export const SIGNING_ALGORITHMS: Record<KmsKeySpec, readonly string[]> = KMS_SIGNING_ALGORITHMS_BY_KEY_SPEC;

/** Fargate task sizes: CPU units → allowed memory (MiB). */
const FARGATE_SIZES: Record<number, number[]> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

/** CloudWatch Logs retention values (days). */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/* ----------------------------------------------------------------------------------------------
 * Resolved configuration (what the stacks consume)
 * -------------------------------------------------------------------------------------------- */

export interface KmsCustodyKey {
  readonly name: string;
  readonly custody: 'kms';
  readonly keySpec: KmsKeySpec;
  /** Signing algorithms the key policy allows (a non-empty subset of SIGNING_ALGORITHMS[keySpec]). */
  readonly signingAlgorithms: readonly string[];
}

export interface SealedCustodyKey {
  readonly name: string;
  readonly custody: 'sealed';
  /**
   * base64 `PrivateKeyCiphertextBlob` from KMS GenerateDataKeyPairWithoutPlaintext under the
   * deployment's wrapping key with encryption context `keyless:key-name=<name>`. Absent until the
   * key has been provisioned (the wrapping key must exist first); the key is then not served yet.
   */
  readonly sealedKey?: string;
  /** base64 DER SubjectPublicKeyInfo of the sealed key pair (required with sealedKey). */
  readonly publicKey?: string;
}

export type CustodyKey = KmsCustodyKey | SealedCustodyKey;

export interface CertificateEntry {
  /** Parameter name below the deployment's certificate prefix. */
  readonly name: string;
  readonly hostnames: readonly string[];
  readonly keyName: string;
  /** PEM chain, leaf first. */
  readonly chainPem: string;
}

export type ClientAddressMode = 'proxy-protocol-v2' | 'preserve-client-ip';

/** One route of the edge (docs/configuration.md, "Routing"): hostnames to an origin. */
export interface EdgeRoute {
  /** Exact names or `*.` wildcards, as the certificates name them. */
  readonly hosts: readonly string[];
  /** `http(s)://host[:port]` (proxy mode "http") or `tcp|tls://host:port` (proxy mode "tcp"). */
  readonly origin: string;
  /** Fixed origin addresses (`ipv4:port`); absent: the origin's name is resolved. */
  readonly addresses?: readonly string[];
  /** The origin's security group (same VPC or a peered one): egress goes to it instead of addresses. */
  readonly securityGroupId?: string;
  /** Retry idempotent requests without a body on another address. */
  readonly retryIdempotent?: boolean;
}

export interface EdgeConfig {
  /**
   * The default route's origin (`KEYLESS_ORIGIN`): `http://` or `https://host[:port]` in proxy mode
   * "http", `tcp://` or `tls://host:port` in proxy mode "tcp". TLS origins are verified against the
   * system CAs. Egress is opened only to the configured origins (see `originEgressTargets`).
   */
  readonly origin: string;
  /** The default origin's security group: egress to it instead of its address. */
  readonly originSecurityGroupId?: string;
  /** Per-hostname routes (`KEYLESS_ROUTES`); default none (everything to `origin`). */
  readonly routes?: readonly EdgeRoute[];
  /** "http": HTTP/1.1 + HTTP/2 reverse proxy; "tcp": raw TCP forwarding (`KEYLESS_PROXY_MODE`). */
  readonly proxyMode: 'http' | 'tcp';
  /** Send PROXY protocol v2 (client address, SNI, ALPN, TLS facts) to the origin (`KEYLESS_ORIGIN_PROXY_PROTOCOL`). */
  readonly originProxyProtocol: boolean;
  /** Share of connections whose info logs are kept, 0..1 (`KEYLESS_LOG_SAMPLE_RATE`); warnings and errors always are. */
  readonly logSampleRate: number;
  /** TLS key-exchange groups, most preferred first (`KEYLESS_GROUPS`; docs/tls-engine.md). */
  readonly groups: readonly string[];
  /** How the edge learns the client address: PROXY protocol v2 from the NLB, or NLB client-IP preservation. */
  readonly clientAddress: ClientAddressMode;
  /** IPv4 CIDRs allowed to reach the NLB listener (its security group). */
  readonly allowedClientCidrs: readonly string[];
  readonly internetFacing: boolean;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly cpuArchitecture: 'ARM64' | 'X86_64';
  readonly minTasks: number;
  readonly maxTasks: number;
  /** Target average CPU utilisation (%) for scaling. */
  readonly targetCpuUtilization: number;
  /** Target concurrent client connections per task for scaling (well under maxConnectionsPerTask). */
  readonly targetConnectionsPerTask: number;
  /** Open TCP connections one edge task accepts (`KEYLESS_MAX_CONNECTIONS`). */
  readonly maxConnectionsPerTask: number;
  /**
   * Key operations per second the whole fleet may ask of the region's key service (`KEYLESS_KMS_BUDGET`),
   * split by each task over maxTasks (`KEYLESS_FLEET_MAX_TASKS`); keep it under the account's KMS quota.
   */
  readonly kmsBudget: number;
  /**
   * A certificate exists in the store (imported with `keyless cert import`). Until then, and while no
   * certificate is configured here, the service is created with 0 tasks (docs/deploy.md, "First deploy").
   */
  readonly certificatesReady: boolean;
  /** NLB deregistration delay: how long a stopping task keeps serving its connections. */
  readonly deregistrationDelaySeconds: number;
  /** SIGTERM → SIGKILL grace for the edge process (Fargate allows at most 120 s). */
  readonly stopTimeoutSeconds: number;
  readonly vpcCidr: string;
  /** 0: no route out of the VPC (single region, origin inside the VPC, privateEndpoints on). */
  readonly natGateways: number;
  /** Put a Lambda interface endpoint in the edge VPC so same-region key operations stay private. */
  readonly privateLambdaEndpoint: boolean;
  /** Interface endpoints for SSM, ECR and CloudWatch Logs, and the S3 gateway endpoint. */
  readonly privateEndpoints: boolean;
  /**
   * NLB target health check: "http" sends GET /healthz to the admin port (the event loop answers:
   * 200, or 503 without a key service), binding the admin listener to all interfaces
   * (KEYLESS_ADMIN_HOST); "tcp" only connects to the TLS port (the kernel accepts even for a hung
   * process). docs/deploy.md, "Health checks".
   */
  readonly healthCheck: 'http' | 'tcp';
  readonly deletionProtection: boolean;
  readonly logRetentionDays: number;
}

export interface KeyServiceConfig {
  readonly vpcCidr: string;
  readonly memoryMiB: number;
  readonly timeoutSeconds: number;
  /** Absent: no reservation (the account's unreserved pool must keep 100 after any reservation). */
  readonly reservedConcurrency?: number;
  /** 0 disables provisioned concurrency. */
  readonly provisionedConcurrency: number;
  readonly logRetentionDays: number;
  /** KMS pending-deletion window for keys this deployment creates (7–30 days). */
  readonly keyDeletionWindowDays: number;
}

export interface AlarmConfig {
  /** Optional e-mail address subscribed to the alarm topics (confirm the subscription mail). */
  readonly email?: string;
  /** Alarm when KMS cryptographic requests reach this share of the account's request quota (%). */
  readonly kmsQuotaUtilizationPercent: number;
}

export interface KeylessConfig {
  /** Short deployment name: stack names, KMS aliases, SSM paths. */
  readonly deployment: string;
  /**
   * Key-service regions in failover order; the edge runs in the first. Absent: one region, and the
   * stacks are environment-agnostic (deployed to the CLI's default region).
   */
  readonly regions?: readonly string[];
  /** Optional explicit AZ names per region (otherwise two AZs are chosen at deploy time). */
  readonly availabilityZones: Readonly<Record<string, readonly string[]>>;
  readonly keys: readonly CustodyKey[];
  readonly certificates: readonly CertificateEntry[];
  readonly edge: EdgeConfig;
  readonly keyService: KeyServiceConfig;
  readonly alarms: AlarmConfig;
  readonly tags: Readonly<Record<string, string>>;
  /**
   * IAM principal ARNs (wildcards allowed) of the operators who sign CSRs with `kms` keys and
   * provision `sealed` keys (they also need an IAM policy allowing it). Absent: nobody can.
   */
  readonly operators?: readonly string[];
  /**
   * Dedicated AWS account for the key services, their KMS keys and VPCs; the edge runs in
   * `edgeAccount`. Only the edge task role (named in the function's resource policy) may invoke.
   */
  readonly keyServiceAccount?: string;
  readonly edgeAccount?: string;
}

export const DEFAULT_EDGE: Omit<EdgeConfig, 'origin'> = {
  proxyMode: 'http',
  originProxyProtocol: false,
  logSampleRate: 1,
  groups: SUPPORTED_GROUPS.map((g) => g.name),
  clientAddress: 'proxy-protocol-v2',
  allowedClientCidrs: ['0.0.0.0/0'],
  internetFacing: true,
  cpu: 1024,
  memoryMiB: 2048,
  cpuArchitecture: 'ARM64',
  minTasks: 2,
  maxTasks: 20,
  targetCpuUtilization: 60,
  targetConnectionsPerTask: 8000,
  maxConnectionsPerTask: 20000,
  kmsBudget: 240,
  certificatesReady: false,
  deregistrationDelaySeconds: 60,
  stopTimeoutSeconds: 120,
  vpcCidr: '10.80.0.0/16',
  natGateways: 2,
  privateLambdaEndpoint: true,
  privateEndpoints: true,
  healthCheck: 'http',
  deletionProtection: false,
  logRetentionDays: 30,
};

export const DEFAULT_KEY_SERVICE: KeyServiceConfig = {
  vpcCidr: '10.81.0.0/16',
  memoryMiB: 1024,
  timeoutSeconds: 5,
  provisionedConcurrency: 0,
  logRetentionDays: 90,
  keyDeletionWindowDays: 30,
};

/* ----------------------------------------------------------------------------------------------
 * Errors
 * -------------------------------------------------------------------------------------------- */

export class KeylessConfigError extends Error {
  constructor(public readonly problems: readonly string[]) {
    super(
      `invalid keyless configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'KeylessConfigError';
  }
}

class Problems {
  readonly list: string[] = [];
  add(where: string, message: string): void {
    this.list.push(`${where}: ${message}`);
  }
}

/* ----------------------------------------------------------------------------------------------
 * Loading from CDK context
 * -------------------------------------------------------------------------------------------- */

export const CONTEXT_KEY = 'keyless';
export const CONTEXT_CONFIG_FILE = 'keyless:configFile';
const CONTEXT_OVERRIDES = {
  deployment: 'keyless:deployment',
  regions: 'keyless:regions',
  origin: 'keyless:origin',
  alarmEmail: 'keyless:alarmEmail',
  operators: 'keyless:operators',
  keyServiceAccount: 'keyless:keyServiceAccount',
  edgeAccount: 'keyless:edgeAccount',
} as const;
/** `-c keyless:edge.maxTasks=40`, `-c keyless:keyService.reservedConcurrency=50`: one field of a section. */
const SECTION_OVERRIDES = ['edge', 'keyService'] as const;

/** Read, merge and validate the configuration from a construct node's context (usually the App's). */
export function loadConfigFromContext(node: Node, baseDir: string): KeylessConfig {
  const problems = new Problems();
  let merged: Record<string, unknown> = {};
  const inline = parseMaybeJson(node.tryGetContext(CONTEXT_KEY), `context "${CONTEXT_KEY}"`, problems);
  if (inline !== undefined) {
    if (!isObject(inline)) problems.add(`context "${CONTEXT_KEY}"`, 'expected a JSON object');
    else merged = deepMerge(merged, inline);
  }
  const file = node.tryGetContext(CONTEXT_CONFIG_FILE);
  if (file !== undefined) {
    if (typeof file !== 'string' || file.length === 0) {
      problems.add(`context "${CONTEXT_CONFIG_FILE}"`, 'expected a path to a JSON file');
    } else {
      const p = path.resolve(baseDir, file);
      try {
        const fromFile: unknown = JSON.parse(fs.readFileSync(p, 'utf8'));
        if (!isObject(fromFile)) problems.add(p, 'expected a JSON object');
        else merged = deepMerge(merged, fromFile);
      } catch (e) {
        problems.add(`context "${CONTEXT_CONFIG_FILE}"`, `cannot read ${p}: ${(e as Error).message}`);
      }
    }
  }
  const dep = node.tryGetContext(CONTEXT_OVERRIDES.deployment);
  if (dep !== undefined) merged.deployment = dep;
  const regions = node.tryGetContext(CONTEXT_OVERRIDES.regions);
  if (regions !== undefined) {
    merged.regions =
      typeof regions === 'string'
        ? regions
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean)
        : regions;
  }
  const origin = node.tryGetContext(CONTEXT_OVERRIDES.origin);
  if (origin !== undefined) merged.edge = { ...(isObject(merged.edge) ? merged.edge : {}), origin };
  const email = node.tryGetContext(CONTEXT_OVERRIDES.alarmEmail);
  if (email !== undefined) merged.alarms = { ...(isObject(merged.alarms) ? merged.alarms : {}), email };
  const operators = node.tryGetContext(CONTEXT_OVERRIDES.operators);
  if (operators !== undefined)
    merged.operators =
      typeof operators === 'string'
        ? operators
            .split(',')
            .map((o) => o.trim())
            .filter(Boolean)
        : operators;
  for (const key of ['keyServiceAccount', 'edgeAccount'] as const) {
    const v = node.tryGetContext(CONTEXT_OVERRIDES[key]);
    if (v !== undefined) merged[key] = String(v);
  }
  for (const section of SECTION_OVERRIDES) {
    const fields =
      section === 'edge'
        ? ['origin', ...Object.keys(DEFAULT_EDGE)]
        : [...Object.keys(DEFAULT_KEY_SERVICE), 'reservedConcurrency'];
    for (const field of fields) {
      const v = node.tryGetContext(`${CONTEXT_KEY}:${section}.${field}`);
      if (v === undefined) continue;
      merged[section] = { ...(isObject(merged[section]) ? merged[section] : {}), [field]: contextScalar(v) };
    }
  }
  if (problems.list.length > 0) throw new KeylessConfigError(problems.list);
  return resolveConfig(merged, { baseDir });
}

/** `-c key=value` values arrive as strings: read numbers, booleans and JSON lists as such. */
function contextScalar(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  if (v.startsWith('[')) {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  return v;
}

function parseMaybeJson(value: unknown, where: string, problems: Problems): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch (e) {
    problems.add(where, `not valid JSON (${(e as Error).message})`);
    return undefined;
  }
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/* ----------------------------------------------------------------------------------------------
 * Validation
 * -------------------------------------------------------------------------------------------- */

export interface ResolveOptions {
  /** Directory that relative `chainFile` paths are resolved against (the repository root). */
  readonly baseDir: string;
  /** Clock for certificate expiry checks (tests). */
  readonly now?: Date;
}

const DEPLOYMENT_RE = /^[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?$/;
/** Key names become part of KMS alias names, which allow only [A-Za-z0-9/_-]. */
const KEY_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const CERT_NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const REGION_RE = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const HOSTNAME_RE = /^(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const TAG_KEY_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
/** SSM advanced-tier parameters hold at most 8 KB. */
export const MAX_CERT_PARAMETER_BYTES = 8192;

const TOP_FIELDS = [
  'deployment',
  'regions',
  'availabilityZones',
  'keys',
  'certificates',
  'edge',
  'keyService',
  'alarms',
  'tags',
  'operators',
  'keyServiceAccount',
  'edgeAccount',
];
/** The sample configuration's operator placeholder: synth refuses it until it names a real principal. */
export const OPERATOR_PLACEHOLDER = 'REPLACE-ME';
const ACCOUNT_RE = /^\d{12}$/;
const PRINCIPAL_ARN_RE = /^arn:aws[a-z-]*:(iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/*:-]+$/;

/** Validate a raw configuration object and fill in defaults. Throws KeylessConfigError listing every problem. */
export function resolveConfig(raw: unknown, options: ResolveOptions): KeylessConfig {
  const p = new Problems();
  const root = 'keyless';
  if (!isObject(raw))
    throw new KeylessConfigError([`${root}: expected an object (context "${CONTEXT_KEY}" in cdk.json)`]);
  unknownFields(raw, TOP_FIELDS, root, p);

  const deployment = raw.deployment;
  if (typeof deployment !== 'string' || !DEPLOYMENT_RE.test(deployment)) {
    p.add(`${root}.deployment`, 'required: 1–24 characters of [a-z0-9-], starting with a letter (e.g. "prod")');
  }

  const regions = resolveRegions(raw.regions, `${root}.regions`, p);
  const availabilityZones = resolveAzs(raw.availabilityZones, regions, `${root}.availabilityZones`, p);
  const keys = resolveKeys(raw.keys, `${root}.keys`, p);
  const certificates = resolveCertificates(raw.certificates, keys, `${root}.certificates`, p, options);
  const edge = resolveEdge(raw.edge, `${root}.edge`, p);
  const keyService = resolveKeyService(raw.keyService, `${root}.keyService`, p);
  const alarms = resolveAlarms(raw.alarms, `${root}.alarms`, p);
  const tags = resolveTags(raw.tags, `${root}.tags`, p);
  let operators: string[] | undefined;
  if (raw.operators !== undefined) {
    const o = raw.operators;
    if (!Array.isArray(o) || o.length === 0 || o.some((a) => typeof a !== 'string' || !PRINCIPAL_ARN_RE.test(a))) {
      p.add(
        `${root}.operators`,
        'expected a non-empty list of IAM principal ARNs, e.g. ["arn:aws:iam::123456789012:role/KeylessOperator"]',
      );
    } else if (o.some((a: string) => a.includes(OPERATOR_PLACEHOLDER))) {
      p.add(
        `${root}.operators`,
        `still the sample placeholder: name the IAM role (or user) that runs the keyless CLI (keys, csr, rotate) in the key account, e.g. -c keyless:operators=arn:aws:iam::123456789012:role/KeylessOperator (without an operator nobody can have the keys sign a certificate request)`,
      );
    } else operators = o as string[];
  }
  const accounts = resolveAccounts(raw, regions, availabilityZones, operators, root, p);
  if (edge && edge.natGateways === 0) {
    if (!edge.privateEndpoints)
      p.add(
        `${root}.edge.natGateways`,
        '0 needs edge.privateEndpoints true (the tasks reach SSM, ECR and CloudWatch Logs through them)',
      );
    if (regions && regions.length > 1)
      p.add(
        `${root}.edge.natGateways`,
        '0 cannot reach the key services of other regions (interface endpoints are regional): keep at least 1 NAT gateway in a multi-region deployment',
      );
  }

  if (p.list.length > 0) throw new KeylessConfigError(p.list);
  return {
    deployment: deployment as string,
    regions,
    availabilityZones,
    keys,
    certificates,
    edge: edge!,
    keyService: keyService!,
    alarms: alarms!,
    tags,
    operators,
    ...accounts,
  };
}

/** keyServiceAccount / edgeAccount: both or neither, different, and with explicit regions. */
function resolveAccounts(
  raw: Record<string, unknown>,
  regions: readonly string[] | undefined,
  availabilityZones: Readonly<Record<string, readonly string[]>>,
  operators: readonly string[] | undefined,
  root: string,
  p: Problems,
): { keyServiceAccount?: string; edgeAccount?: string } {
  const { keyServiceAccount, edgeAccount } = raw;
  if (keyServiceAccount === undefined && edgeAccount === undefined) return {};
  const hint =
    'set both keyServiceAccount and edgeAccount (12-digit account ids) for a cross-account deployment, or neither';
  if (typeof keyServiceAccount !== 'string' || !ACCOUNT_RE.test(keyServiceAccount))
    p.add(`${root}.keyServiceAccount`, `expected a 12-digit AWS account id: ${hint}`);
  if (typeof edgeAccount !== 'string' || !ACCOUNT_RE.test(edgeAccount))
    p.add(`${root}.edgeAccount`, `expected a 12-digit AWS account id: ${hint}`);
  if (keyServiceAccount === edgeAccount)
    p.add(`${root}.keyServiceAccount`, 'must differ from edgeAccount (omit both for a single-account deployment)');
  if (!regions)
    p.add(
      `${root}.regions`,
      'required with keyServiceAccount: stacks in two accounts need explicit regions, e.g. ["eu-west-1"]',
    );
  for (const region of regions ?? []) {
    if (!availabilityZones[region]) {
      p.add(
        `${root}.availabilityZones.${region}`,
        `required with keyServiceAccount: stacks with an explicit account would look AZs up in AWS at synth; name at least two AZs of ${region}, e.g. ["${region}a","${region}b"] (aws ec2 describe-availability-zones in each account; names differ between accounts, so check both)`,
      );
    }
  }
  for (const o of operators ?? []) {
    if (typeof keyServiceAccount === 'string' && !o.includes(`::${keyServiceAccount}:`)) {
      p.add(
        `${root}.operators`,
        `${o} is not in the key-service account ${keyServiceAccount}: operators use the keys there (key policies trust that account only)`,
      );
    }
  }
  return { keyServiceAccount: keyServiceAccount as string, edgeAccount: edgeAccount as string };
}

function unknownFields(obj: Record<string, unknown>, allowed: readonly string[], where: string, p: Problems): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) p.add(`${where}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

function resolveRegions(v: unknown, where: string, p: Problems): readonly string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0) {
    p.add(where, 'expected a non-empty list of AWS regions in failover order, e.g. ["eu-west-1","eu-central-1"]');
    return undefined;
  }
  const seen = new Set<string>();
  v.forEach((r, i) => {
    if (typeof r !== 'string' || !REGION_RE.test(r))
      p.add(`${where}[${i}]`, `"${String(r)}" is not an AWS region name`);
    else if (seen.has(r)) p.add(`${where}[${i}]`, `region "${r}" is listed twice`);
    else seen.add(r);
  });
  if (v.length > 5) p.add(where, 'at most 5 key-service regions are supported');
  return v as string[];
}

function resolveAzs(
  v: unknown,
  regions: readonly string[] | undefined,
  where: string,
  p: Problems,
): Record<string, readonly string[]> {
  if (v === undefined) return {};
  if (!isObject(v)) {
    p.add(where, 'expected an object mapping region → list of AZ names');
    return {};
  }
  const out: Record<string, readonly string[]> = {};
  for (const [region, azs] of Object.entries(v)) {
    if (!regions?.includes(region)) {
      p.add(
        `${where}.${region}`,
        'AZ names can only be given for regions listed in "regions" (environment-agnostic stacks pick two AZs at deploy time)',
      );
      continue;
    }
    if (!Array.isArray(azs) || azs.length < 2 || azs.some((a) => typeof a !== 'string' || !a.startsWith(region))) {
      p.add(`${where}.${region}`, `expected at least two AZ names of ${region}, e.g. ["${region}a","${region}b"]`);
      continue;
    }
    out[region] = azs as string[];
  }
  return out;
}

function resolveKeys(v: unknown, where: string, p: Problems): CustodyKey[] {
  if (!Array.isArray(v) || v.length === 0) {
    p.add(where, 'required: at least one key, e.g. [{"name":"web","custody":"kms","keySpec":"ECC_NIST_P256"}]');
    return [];
  }
  const names = new Set<string>();
  const out: CustodyKey[] = [];
  v.forEach((k, i) => {
    const w = `${where}[${i}]`;
    if (!isObject(k)) {
      p.add(w, 'expected an object with name and custody');
      return;
    }
    const name = k.name;
    if (typeof name !== 'string' || !KEY_NAME_RE.test(name)) {
      p.add(`${w}.name`, 'required: 1–64 characters of [A-Za-z0-9_-] (it becomes part of a KMS alias name)');
      return;
    }
    if (names.has(name)) p.add(`${w}.name`, `duplicate key name "${name}"`);
    names.add(name);
    if (k.custody === 'kms') {
      unknownFields(k, ['name', 'custody', 'keySpec', 'signingAlgorithms'], w, p);
      const spec = k.keySpec;
      if (typeof spec !== 'string' || !(KMS_KEY_SPECS as readonly string[]).includes(spec)) {
        p.add(`${w}.keySpec`, `required: one of ${KMS_KEY_SPECS.join(', ')}`);
        return;
      }
      const allowed = SIGNING_ALGORITHMS[spec as KmsKeySpec];
      let algs = allowed;
      if (k.signingAlgorithms !== undefined) {
        const a = k.signingAlgorithms;
        if (!Array.isArray(a) || a.length === 0 || a.some((x) => typeof x !== 'string' || !allowed.includes(x))) {
          p.add(`${w}.signingAlgorithms`, `expected a non-empty subset of ${allowed.join(', ')} for ${spec}`);
          return;
        }
        algs = [...new Set(a as string[])];
      }
      out.push({ name, custody: 'kms', keySpec: spec as KmsKeySpec, signingAlgorithms: algs });
    } else if (k.custody === 'sealed') {
      unknownFields(k, ['name', 'custody', 'sealedKey', 'publicKey'], w, p);
      const { sealedKey, publicKey } = k;
      if ((sealedKey === undefined) !== (publicKey === undefined)) {
        p.add(w, 'sealedKey and publicKey go together: set both (after provisioning) or neither (before)');
        return;
      }
      if (sealedKey !== undefined) {
        if (typeof sealedKey !== 'string' || sealedKey.length < 64 || !BASE64_RE.test(sealedKey)) {
          p.add(
            `${w}.sealedKey`,
            'expected the base64 PrivateKeyCiphertextBlob from GenerateDataKeyPairWithoutPlaintext',
          );
          return;
        }
        if (typeof publicKey !== 'string' || !BASE64_RE.test(publicKey) || !isRsaSpki(publicKey)) {
          p.add(`${w}.publicKey`, 'expected the base64 DER SubjectPublicKeyInfo of an RSA 2048/3072/4096 key');
          return;
        }
        out.push({ name, custody: 'sealed', sealedKey, publicKey });
      } else {
        out.push({ name, custody: 'sealed' });
      }
    } else if (k.custody === 'file') {
      p.add(`${w}.custody`, '"file" custody is for local development only; use "kms" or "sealed" in AWS');
    } else {
      p.add(`${w}.custody`, 'required: "kms" or "sealed"');
    }
  });
  return out;
}

function isRsaSpki(b64: string): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'spki' });
    const bits = key.asymmetricKeyDetails?.modulusLength;
    return key.asymmetricKeyType === 'rsa' && (bits === 2048 || bits === 3072 || bits === 4096);
  } catch {
    return false;
  }
}

function resolveCertificates(
  v: unknown,
  keys: readonly CustodyKey[],
  where: string,
  p: Problems,
  options: ResolveOptions,
): CertificateEntry[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    p.add(where, 'expected a list of {name, hostnames, keyName, chainFile|chainPem}');
    return [];
  }
  const out: CertificateEntry[] = [];
  const names = new Set<string>();
  const hostOwners = new Map<string, string>();
  v.forEach((c, i) => {
    const w = `${where}[${i}]`;
    if (!isObject(c)) {
      p.add(w, 'expected an object');
      return;
    }
    unknownFields(c, ['name', 'hostnames', 'keyName', 'chainFile', 'chainPem'], w, p);
    const { name, hostnames, keyName } = c;
    if (typeof name !== 'string' || !CERT_NAME_RE.test(name)) {
      p.add(`${w}.name`, 'required: 1–128 characters of [A-Za-z0-9_.-] (the SSM parameter name under the prefix)');
      return;
    }
    if (names.has(name)) p.add(`${w}.name`, `duplicate certificate name "${name}"`);
    names.add(name);
    if (!Array.isArray(hostnames) || hostnames.length === 0) {
      p.add(`${w}.hostnames`, 'required: a non-empty list of DNS names (wildcards like *.example.com allowed)');
      return;
    }
    const hosts: string[] = [];
    hostnames.forEach((h, j) => {
      if (typeof h !== 'string' || !HOSTNAME_RE.test(h.toLowerCase()))
        p.add(`${w}.hostnames[${j}]`, `"${String(h)}" is not a DNS name`);
      else {
        const lower = h.toLowerCase();
        const owner = hostOwners.get(lower);
        if (owner !== undefined) p.add(`${w}.hostnames[${j}]`, `"${h}" is already served by certificate "${owner}"`);
        hostOwners.set(lower, name);
        hosts.push(lower);
      }
    });
    const key = keys.find((k) => k.name === keyName);
    if (typeof keyName !== 'string' || key === undefined) {
      p.add(`${w}.keyName`, `must name one of the configured keys (${keys.map((k) => k.name).join(', ') || 'none'})`);
      return;
    }
    let pem: string | undefined;
    if (typeof c.chainPem === 'string' && c.chainFile === undefined) pem = c.chainPem;
    else if (typeof c.chainFile === 'string' && c.chainPem === undefined) {
      const file = path.resolve(options.baseDir, c.chainFile);
      try {
        pem = fs.readFileSync(file, 'utf8');
      } catch (e) {
        p.add(`${w}.chainFile`, `cannot read ${file}: ${(e as Error).message}`);
        return;
      }
    } else {
      p.add(w, 'give exactly one of chainFile (path to a PEM chain, leaf first) or chainPem');
      return;
    }
    const problems = inspectCertificate(pem, hosts, key, options.now ?? new Date());
    for (const msg of problems) p.add(w, msg);
    if (problems.length > 0) return;
    const entry: CertificateEntry = { name, hostnames: hosts, keyName, chainPem: pem.trim() + '\n' };
    const size = Buffer.byteLength(certificateParameterValue(entry), 'utf8');
    if (size > MAX_CERT_PARAMETER_BYTES) {
      p.add(
        w,
        `the parameter value would be ${size} bytes; SSM advanced parameters hold at most ${MAX_CERT_PARAMETER_BYTES} (drop the root CA from the chain)`,
      );
      return;
    }
    out.push(entry);
  });
  return out;
}

/** The SSM parameter value the edge reads for a certificate (runtime contract). */
export function certificateParameterValue(c: CertificateEntry): string {
  return JSON.stringify({ hostnames: c.hostnames, keyName: c.keyName, chainPem: c.chainPem });
}

type Check<T> = (v: unknown) => v is T;
const isInt = (min: number, max: number): Check<number> =>
  ((v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) as Check<number>;
const isBool: Check<boolean> = ((v: unknown) => typeof v === 'boolean') as Check<boolean>;
const oneOf = <T extends string>(...vals: T[]): Check<T> =>
  ((v: unknown) => typeof v === 'string' && (vals as string[]).includes(v)) as Check<T>;
const isRetention: Check<number> = ((v: unknown) =>
  typeof v === 'number' && LOG_RETENTION_DAYS.includes(v)) as Check<number>;
const isGroupList: Check<readonly string[]> = ((v: unknown) => {
  if (!Array.isArray(v) || v.length === 0 || new Set(v).size !== v.length) return false;
  const groups = v.map((n) => (typeof n === 'string' ? groupByName(n) : undefined));
  return groups.every((g) => g !== undefined) && groups.some((g) => !g.hybrid);
}) as Check<readonly string[]>;
const IPV4_CIDR_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(\d|[12]\d|3[0-2])$/;
const isVpcCidr: Check<string> = ((v: unknown) => {
  if (typeof v !== 'string' || !IPV4_CIDR_RE.test(v)) return false;
  const prefix = Number(v.split('/')[1]);
  return prefix >= 16 && prefix <= 24;
}) as Check<string>;

function field<T>(
  obj: Record<string, unknown>,
  key: string,
  def: T,
  check: Check<T>,
  hint: string,
  where: string,
  p: Problems,
): T {
  const v = obj[key];
  if (v === undefined) return def;
  if (!check(v)) {
    p.add(`${where}.${key}`, `${JSON.stringify(v)} is invalid: ${hint}`);
    return def;
  }
  return v;
}

function resolveEdge(v: unknown, where: string, p: Problems): EdgeConfig | undefined {
  if (!isObject(v)) {
    p.add(where, 'required: an object with at least "origin" (the URL the edge forwards to)');
    return undefined;
  }
  unknownFields(v, ['origin', 'originSecurityGroupId', 'routes', ...Object.keys(DEFAULT_EDGE)], where, p);
  const d = DEFAULT_EDGE;
  const origin = v.origin;
  const proxyMode = field(
    v,
    'proxyMode',
    d.proxyMode,
    oneOf('http', 'tcp'),
    '"http" (reverse proxy) or "tcp" (raw TCP forwarding)',
    where,
    p,
  );
  // The schemes the edge accepts at startup (edge-proxy/src/routing-config.ts), refused here at synth.
  if (!originUrlOk(origin, proxyMode)) {
    p.add(
      `${where}.origin`,
      proxyMode === 'tcp'
        ? 'required in proxyMode "tcp": tcp://host:port or tls://host:port, e.g. "tls://origin.internal.example.com:9000"'
        : 'required: an http:// or https:// URL without credentials or path, e.g. "https://origin.internal.example.com:8443" (for raw TCP set proxyMode "tcp")',
    );
  }
  if (v.originSecurityGroupId !== undefined && !isSecurityGroupId(v.originSecurityGroupId))
    p.add(`${where}.originSecurityGroupId`, 'a security group id, e.g. "sg-0123456789abcdef0"');
  const routes = resolveRoutes(v.routes, proxyMode, `${where}.routes`, p);
  const e: EdgeConfig = {
    origin: origin as string,
    ...(typeof v.originSecurityGroupId === 'string' ? { originSecurityGroupId: v.originSecurityGroupId } : {}),
    ...(routes ? { routes } : {}),
    proxyMode,
    originProxyProtocol: field(
      v,
      'originProxyProtocol',
      d.originProxyProtocol,
      isBool,
      'true or false (the origin must then expect PROXY protocol v2)',
      where,
      p,
    ),
    logSampleRate: field(
      v,
      'logSampleRate',
      d.logSampleRate,
      ((x: unknown) => typeof x === 'number' && x >= 0 && x <= 1) as Check<number>,
      'a fraction 0..1 (1 = every connection)',
      where,
      p,
    ),
    groups: field(
      v,
      'groups',
      d.groups,
      isGroupList,
      `a non-empty list of ${SUPPORTED_GROUPS.map((g) => g.name).join(', ')}, most preferred first, with at least one classic group (TLS 1.2 needs one)`,
      where,
      p,
    ),
    clientAddress: field(
      v,
      'clientAddress',
      d.clientAddress,
      oneOf('proxy-protocol-v2', 'preserve-client-ip'),
      'one of "proxy-protocol-v2", "preserve-client-ip"',
      where,
      p,
    ),
    allowedClientCidrs: field(
      v,
      'allowedClientCidrs',
      d.allowedClientCidrs,
      ((x: unknown) =>
        Array.isArray(x) && x.length > 0 && x.every((c) => typeof c === 'string' && IPV4_CIDR_RE.test(c))) as Check<
        readonly string[]
      >,
      'a non-empty list of IPv4 CIDRs (the load balancer is IPv4)',
      where,
      p,
    ),
    internetFacing: field(v, 'internetFacing', d.internetFacing, isBool, 'true or false', where, p),
    cpu: field(
      v,
      'cpu',
      d.cpu,
      ((x: unknown) => typeof x === 'number' && x in FARGATE_SIZES) as Check<number>,
      `one of ${Object.keys(FARGATE_SIZES).join(', ')} (Fargate CPU units)`,
      where,
      p,
    ),
    memoryMiB: field(v, 'memoryMiB', d.memoryMiB, isInt(512, 122880), 'MiB, valid for the chosen cpu', where, p),
    cpuArchitecture: field(
      v,
      'cpuArchitecture',
      d.cpuArchitecture,
      oneOf('ARM64', 'X86_64'),
      '"ARM64" or "X86_64"',
      where,
      p,
    ),
    minTasks: field(v, 'minTasks', d.minTasks, isInt(1, 1000), 'an integer 1..1000', where, p),
    maxTasks: field(v, 'maxTasks', d.maxTasks, isInt(1, 1000), 'an integer 1..1000', where, p),
    targetCpuUtilization: field(
      v,
      'targetCpuUtilization',
      d.targetCpuUtilization,
      isInt(10, 90),
      'a percentage 10..90',
      where,
      p,
    ),
    targetConnectionsPerTask: field(
      v,
      'targetConnectionsPerTask',
      d.targetConnectionsPerTask,
      isInt(10, 1_000_000),
      'an integer 10..1000000',
      where,
      p,
    ),
    maxConnectionsPerTask: field(
      v,
      'maxConnectionsPerTask',
      d.maxConnectionsPerTask,
      isInt(100, 1_000_000),
      'an integer 100..1000000 (open connections per task)',
      where,
      p,
    ),
    kmsBudget: field(
      v,
      'kmsBudget',
      d.kmsBudget,
      isInt(1, 100_000),
      'key operations per second for the whole fleet, 1..100000 (under the KMS quota of the region)',
      where,
      p,
    ),
    certificatesReady: field(
      v,
      'certificatesReady',
      d.certificatesReady,
      isBool,
      'true once a certificate is in the store (keyless cert import), else false',
      where,
      p,
    ),
    deregistrationDelaySeconds: field(
      v,
      'deregistrationDelaySeconds',
      d.deregistrationDelaySeconds,
      isInt(0, 3600),
      'seconds 0..3600',
      where,
      p,
    ),
    stopTimeoutSeconds: field(
      v,
      'stopTimeoutSeconds',
      d.stopTimeoutSeconds,
      isInt(2, 120),
      'seconds 2..120 (Fargate maximum)',
      where,
      p,
    ),
    vpcCidr: field(v, 'vpcCidr', d.vpcCidr, isVpcCidr, 'an IPv4 CIDR with prefix /16../24', where, p),
    natGateways: field(
      v,
      'natGateways',
      d.natGateways,
      isInt(0, 6),
      'an integer 0..6 (NAT is needed for key services in other regions and origins outside the VPC)',
      where,
      p,
    ),
    privateLambdaEndpoint: field(
      v,
      'privateLambdaEndpoint',
      d.privateLambdaEndpoint,
      isBool,
      'true or false',
      where,
      p,
    ),
    privateEndpoints: field(v, 'privateEndpoints', d.privateEndpoints, isBool, 'true or false', where, p),
    healthCheck: field(
      v,
      'healthCheck',
      d.healthCheck,
      oneOf('http', 'tcp'),
      '"http" (GET /healthz on the admin port) or "tcp"',
      where,
      p,
    ),
    deletionProtection: field(v, 'deletionProtection', d.deletionProtection, isBool, 'true or false', where, p),
    logRetentionDays: field(
      v,
      'logRetentionDays',
      d.logRetentionDays,
      isRetention,
      `one of ${LOG_RETENTION_DAYS.join(', ')}`,
      where,
      p,
    ),
  };
  const mems = FARGATE_SIZES[e.cpu];
  if (mems && !mems.includes(e.memoryMiB)) {
    p.add(
      `${where}.memoryMiB`,
      `${e.memoryMiB} MiB is not valid with cpu ${e.cpu}; choose ${mems[0]}..${mems[mems.length - 1]} (${mems.length} sizes)`,
    );
  }
  if (e.minTasks > e.maxTasks) p.add(`${where}.minTasks`, `minTasks (${e.minTasks}) exceeds maxTasks (${e.maxTasks})`);
  if (e.targetConnectionsPerTask > 0.8 * e.maxConnectionsPerTask) {
    p.add(
      `${where}.targetConnectionsPerTask`,
      `(${e.targetConnectionsPerTask}) must stay under 80% of maxConnectionsPerTask (${e.maxConnectionsPerTask}), or tasks refuse connections before scale-out adds capacity; e.g. ${Math.floor(e.maxConnectionsPerTask * 0.4)}`,
    );
  }
  // The budget is split over maxTasks plus a rolling deploy's surplus (ECS maximumPercent 200), and
  // the edge refuses a share under 2/s at startup (edge-proxy/src/config.ts). Each task splits its
  // share over its workers again, and a worker needs at least 1 in any second.
  const admitting = e.maxTasks * 2;
  const workers = workersPerTask(e.cpu);
  const perTask = Math.max(2, workers);
  if (e.kmsBudget < perTask * admitting) {
    const need =
      workers > 2
        ? `${perTask} key operations per second (one for each of its ${workers} workers)`
        : '2 key operations per second';
    p.add(
      `${where}.kmsBudget`,
      `(${e.kmsBudget}/s) leaves each of up to ${admitting} tasks (maxTasks ${e.maxTasks}, doubled during a rolling deploy) under ${need}: raise it (and the KMS quota) to at least ${perTask * admitting}, or lower maxTasks${workers > 2 ? ' or cpu' : ''}`,
    );
  }
  return e;
}

const isSecurityGroupId = (v: unknown): v is string => typeof v === 'string' && /^sg-[0-9a-f]{8,17}$/.test(v);

/** An origin URL the edge accepts in this proxy mode (a port is required for tcp:// and tls://). */
function originUrlOk(origin: unknown, proxyMode: 'http' | 'tcp'): origin is string {
  if (typeof origin !== 'string') return false;
  try {
    const u = new URL(origin);
    const schemes = proxyMode === 'tcp' ? ['tcp:', 'tls:'] : ['http:', 'https:'];
    return (
      schemes.includes(u.protocol) &&
      u.hostname !== '' &&
      u.username === '' &&
      u.password === '' &&
      (u.pathname === '' || u.pathname === '/') &&
      !u.search &&
      (proxyMode === 'http' || u.port !== '')
    );
  } catch {
    return false;
  }
}

function resolveRoutes(v: unknown, proxyMode: 'http' | 'tcp', where: string, p: Problems): EdgeRoute[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0) {
    p.add(where, 'a non-empty list of {"hosts": ["www.example.com"], "origin": "https://origin.internal:8443"}');
    return undefined;
  }
  return v.map((r: unknown, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(r)) {
      p.add(at, 'an object with "hosts" and "origin"');
      return { hosts: [], origin: '' };
    }
    unknownFields(r, ['hosts', 'origin', 'addresses', 'securityGroupId', 'retryIdempotent'], at, p);
    // As the edge checks them (edge-proxy/src/routing-config.ts): no wildcard over a top-level domain (contract/x509.ts).
    const hostOk = (h: unknown): boolean =>
      typeof h === 'string' &&
      /^(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
        h,
      ) &&
      !(h.startsWith('*.') && !h.slice(2).includes('.'));
    if (!Array.isArray(r.hosts) || r.hosts.length === 0 || !r.hosts.every(hostOk))
      p.add(
        `${at}.hosts`,
        'a non-empty list of host names or one-label wildcards, e.g. ["www.example.com", "*.example.com"]',
      );
    if (!originUrlOk(r.origin, proxyMode))
      p.add(
        `${at}.origin`,
        proxyMode === 'tcp'
          ? 'tcp://host:port or tls://host:port'
          : 'an http:// or https:// URL without credentials or path',
      );
    if (
      r.addresses !== undefined &&
      !(
        Array.isArray(r.addresses) &&
        r.addresses.length > 0 &&
        r.addresses.every((a) => typeof a === 'string' && /^\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}$/.test(a))
      )
    ) {
      p.add(`${at}.addresses`, 'a non-empty list of "ipv4:port", e.g. ["10.0.2.10:8443"]');
    }
    if (r.securityGroupId !== undefined && !isSecurityGroupId(r.securityGroupId))
      p.add(`${at}.securityGroupId`, 'a security group id, e.g. "sg-0123456789abcdef0"');
    if (r.retryIdempotent !== undefined && typeof r.retryIdempotent !== 'boolean')
      p.add(`${at}.retryIdempotent`, 'true or false');
    return r as unknown as EdgeRoute;
  });
}

/** Where the edge's origin hop may go: one rule per origin address, name or security group. */
export interface OriginEgressTarget {
  /** An IPv4 CIDR (an address /32, or the VPC's CIDR for a name that resolves inside it)... */
  readonly cidr?: string;
  /** ... or the origin's security group. */
  readonly securityGroupId?: string;
  readonly port: number;
  readonly description: string;
}

/**
 * The egress the configured origins need (the default origin and every route's): the origin's
 * security group when given; else each fixed address, or the address in the URL, as /32; else (a
 * name) the VPC's CIDR, where it must resolve (a private hosted zone, an internal load balancer).
 */
export function originEgressTargets(
  e: Pick<EdgeConfig, 'origin' | 'originSecurityGroupId' | 'routes'>,
  vpcCidr: string,
): OriginEgressTarget[] {
  const origins = [
    {
      origin: e.origin,
      securityGroupId: e.originSecurityGroupId,
      addresses: undefined as readonly string[] | undefined,
    },
    ...(e.routes ?? []),
  ];
  const out = new Map<string, OriginEgressTarget>();
  const add = (t: OriginEgressTarget): void => {
    out.set(`${t.cidr ?? t.securityGroupId}:${t.port}`, t);
  };
  for (const o of origins) {
    if (!o.origin) continue;
    const url = new URL(o.origin);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    if (o.securityGroupId) {
      add({ securityGroupId: o.securityGroupId, port, description: `Origin ${url.host} (security group)` });
    } else if (o.addresses && o.addresses.length > 0) {
      for (const a of o.addresses) {
        const [ip, p] = a.split(':');
        add({ cidr: `${ip}/32`, port: Number(p), description: `Origin ${url.host} at ${a}` });
      }
    } else if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(url.hostname)) {
      add({ cidr: `${url.hostname}/32`, port, description: `Origin ${url.host}` });
    } else {
      add({ cidr: vpcCidr, port, description: `Origin ${url.host} (inside the VPC)` });
    }
  }
  return [...out.values()];
}

function resolveKeyService(v: unknown, where: string, p: Problems): KeyServiceConfig {
  if (v === undefined) return DEFAULT_KEY_SERVICE;
  if (!isObject(v)) {
    p.add(where, 'expected an object');
    return DEFAULT_KEY_SERVICE;
  }
  unknownFields(v, [...Object.keys(DEFAULT_KEY_SERVICE), 'reservedConcurrency'], where, p);
  const d = DEFAULT_KEY_SERVICE;
  const k: KeyServiceConfig = {
    vpcCidr: field(v, 'vpcCidr', d.vpcCidr, isVpcCidr, 'an IPv4 CIDR with prefix /16../24', where, p),
    memoryMiB: field(v, 'memoryMiB', d.memoryMiB, isInt(128, 10240), 'MiB 128..10240', where, p),
    timeoutSeconds: field(
      v,
      'timeoutSeconds',
      d.timeoutSeconds,
      isInt(1, 60),
      'seconds 1..60 (a key operation waits on one KMS call)',
      where,
      p,
    ),
    reservedConcurrency: field<number | undefined>(
      v,
      'reservedConcurrency',
      undefined,
      isInt(1, 10000),
      'an integer 1..10000, or absent for no reservation (the account must keep 100 unreserved: docs/deploy.md)',
      where,
      p,
    ),
    provisionedConcurrency: field(
      v,
      'provisionedConcurrency',
      d.provisionedConcurrency,
      isInt(0, 10000),
      'an integer 0..10000 (0 = none)',
      where,
      p,
    ),
    logRetentionDays: field(
      v,
      'logRetentionDays',
      d.logRetentionDays,
      isRetention,
      `one of ${LOG_RETENTION_DAYS.join(', ')}`,
      where,
      p,
    ),
    keyDeletionWindowDays: field(
      v,
      'keyDeletionWindowDays',
      d.keyDeletionWindowDays,
      isInt(7, 30),
      'days 7..30 (KMS pending-deletion window)',
      where,
      p,
    ),
  };
  if (k.reservedConcurrency !== undefined && k.provisionedConcurrency > k.reservedConcurrency) {
    p.add(
      `${where}.provisionedConcurrency`,
      `(${k.provisionedConcurrency}) cannot exceed reservedConcurrency (${k.reservedConcurrency})`,
    );
  }
  return k;
}

function resolveAlarms(v: unknown, where: string, p: Problems): AlarmConfig {
  const d: AlarmConfig = { kmsQuotaUtilizationPercent: 80 };
  if (v === undefined) return d;
  if (!isObject(v)) {
    p.add(where, 'expected an object');
    return d;
  }
  unknownFields(v, ['email', 'kmsQuotaUtilizationPercent'], where, p);
  const email = v.email;
  if (email !== undefined && (typeof email !== 'string' || !EMAIL_RE.test(email)))
    p.add(`${where}.email`, 'expected an e-mail address');
  return {
    email: typeof email === 'string' && email !== '' ? email : undefined,
    kmsQuotaUtilizationPercent: field(
      v,
      'kmsQuotaUtilizationPercent',
      d.kmsQuotaUtilizationPercent,
      isInt(10, 100),
      'a percentage 10..100',
      where,
      p,
    ),
  };
}

function resolveTags(v: unknown, where: string, p: Problems): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) {
    p.add(where, 'expected an object of tag key → value');
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!TAG_KEY_RE.test(k) || k.toLowerCase().startsWith('aws:')) p.add(`${where}.${k}`, 'invalid tag key');
    else if (typeof val !== 'string' || val.length > 256)
      p.add(`${where}.${k}`, 'tag values are strings of at most 256 characters');
    else out[k] = val;
  }
  return out;
}

/** Edge worker processes per task: one per whole vCPU (the task definition sets KEYLESS_WORKERS to it). */
export function workersPerTask(cpu: number): number {
  return Math.max(1, Math.floor(cpu / 1024));
}
