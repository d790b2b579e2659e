/**
 * Shared helpers of the infrastructure tests: synthesise the real app offline (no credentials, no
 * Docker), read templates back, run cdk-nag and cfn-lint, make test certificates.
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as x509 from '@peculiar/x509';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { resolveConfig, type KeylessConfig } from '../../lib/config';
import { createKeylessStacks, type KeylessStacks } from '../../lib/keyless-app';
import { repoRoot } from '../../lib/paths';

export const ROOT = repoRoot(__dirname);

/** The context of cdk.json (feature flags and the example `keyless` configuration). */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')).context;
}

export interface Synth {
  readonly app: App;
  readonly config: KeylessConfig;
  readonly stacks: KeylessStacks;
  readonly assembly: CloudAssembly;
  readonly outdir: string;
  template(stackName: string): Template;
  json(stackName: string): CfnTemplate;
  cleanup(): void;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  DependsOn?: string[] | string;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, unknown>;
}

/** Synthesise the app for a raw `keyless` configuration, exactly as bin/app.ts does (minus the nag plugin). */
export function synthesize(rawConfig: unknown): Synth {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-infra-'));
  const context = { ...cdkJsonContext(), keyless: rawConfig };
  const app = new App({ context, outdir });
  const config = resolveConfig(rawConfig, { baseDir: ROOT });
  const stacks = createKeylessStacks(app, config);
  const assembly = app.synth();
  const cache = new Map<string, CfnTemplate>();
  const json = (name: string): CfnTemplate => {
    let t = cache.get(name);
    if (!t) {
      t = JSON.parse(fs.readFileSync(assembly.getStackByName(name).templateFullPath, 'utf8')) as CfnTemplate;
      cache.set(name, t);
    }
    return t;
  };
  return {
    app,
    config,
    stacks,
    assembly,
    outdir,
    json,
    template: (name) => Template.fromJSON(json(name) as unknown as Record<string, unknown>),
    cleanup: () => fs.rmSync(outdir, { recursive: true, force: true }),
  };
}

/* ----------------------------------------------------------------------------------------------
 * Template reading
 * -------------------------------------------------------------------------------------------- */

export function resourcesOfType(t: CfnTemplate, type: string): Array<[string, CfnResource]> {
  return Object.entries(t.Resources).filter(([, r]) => r.Type === type);
}

export function onlyResource(t: CfnTemplate, type: string): [string, CfnResource] {
  const all = resourcesOfType(t, type);
  if (all.length !== 1) throw new Error(`expected exactly one ${type}, found ${all.length}`);
  return all[0];
}

export function asArray<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Statement = Record<string, any>;

/** All statements of a role: inline policies plus AWS::IAM::Policy resources attached to it. */
export function roleStatements(t: CfnTemplate, roleLogicalId: string): Statement[] {
  const role = t.Resources[roleLogicalId];
  const out: Statement[] = [];
  for (const p of asArray(role.Properties?.Policies)) out.push(...asArray(p.PolicyDocument.Statement));
  for (const [, pol] of resourcesOfType(t, 'AWS::IAM::Policy')) {
    if (asArray(pol.Properties?.Roles).some((r: { Ref?: string }) => r.Ref === roleLogicalId)) {
      out.push(...asArray(pol.Properties?.PolicyDocument.Statement));
    }
  }
  return out;
}

export function allowedActions(statements: Statement[]): string[] {
  return [...new Set(statements.filter((s) => s.Effect === 'Allow').flatMap((s) => asArray<string>(s.Action)))].sort();
}

/** Render an intrinsic string (Fn::Join / Ref / Fn::GetStackOutput) with placeholder values. */
export function render(v: unknown, subs: Record<string, string> = {}): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (o['Fn::Join']) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map((p) => render(p, subs)).join(sep);
    }
    if (typeof o.Ref === 'string') return subs[o.Ref] ?? `<${o.Ref}>`;
    if (o['Fn::GetAtt']) return `<${(o['Fn::GetAtt'] as string[]).join('.')}>`;
    if (o['Fn::GetStackOutput']) {
      const g = o['Fn::GetStackOutput'] as { StackName: string; OutputName: string; Region: unknown };
      return `<output ${g.StackName}/${g.OutputName}@${render(g.Region, subs)}>`;
    }
  }
  return JSON.stringify(v);
}

export const PSEUDO = {
  'AWS::Partition': 'aws',
  'AWS::Region': 'xx-test-1',
  'AWS::AccountId': '111111111111',
  'AWS::URLSuffix': 'amazonaws.com',
};

/** Environment variables of the edge container / key-service function, rendered. */
export function containerEnvironment(t: CfnTemplate): Record<string, unknown> {
  const [, td] = onlyResource(t, 'AWS::ECS::TaskDefinition');
  const env: Record<string, unknown> = {};
  for (const e of td.Properties!.ContainerDefinitions[0].Environment) env[e.Name] = e.Value;
  return env;
}

/* ----------------------------------------------------------------------------------------------
 * cdk-nag
 * -------------------------------------------------------------------------------------------- */

export interface NagFinding {
  readonly rule: string;
  readonly paths: string[];
  readonly description: string;
}

/** Unacknowledged AwsSolutions findings. */
export function nagFindings(scope: IConstruct): NagFinding[] {
  const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(scope);
  return report.violations.map((v) => ({
    rule: v.ruleName,
    paths: v.violatingResources.map(
      (r) => r.resourceLogicalId ?? (r as { constructPath?: string }).constructPath ?? '?',
    ),
    description: v.description,
  }));
}

export interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgement recorded in the construct tree. */
export function acknowledgements(scope: IConstruct): Acknowledgement[] {
  const out: Acknowledgement[] = [];
  for (const c of scope.node.findAll()) {
    for (const m of c.node.metadata) {
      if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY || !m.data) continue;
      for (const [id, reason] of Object.entries(m.data as Record<string, string>)) {
        out.push({ path: c.node.path, id: id.replace(/^annotation::/i, ''), reason });
      }
    }
  }
  return out;
}

/**
 * Acknowledgements that suppress at least one real finding: run the pack while recording which
 * (rule, acknowledging construct) pairs it consulted successfully.
 */
export function usedAcknowledgements(scope: IConstruct): Set<string> {
  const pack = new AwsSolutionsChecks();
  const used = new Set<string>();
  // isAcknowledged is private in the typings; wrap it to observe the suppressions that fire.
  const p = pack as unknown as { isAcknowledged(resource: IConstruct, ruleId: string): boolean };
  const original = p.isAcknowledged.bind(pack);
  p.isAcknowledged = (resource: IConstruct, ruleId: string): boolean => {
    const hit = original(resource, ruleId);
    if (hit) {
      for (let cur: IConstruct | undefined = resource; cur; cur = cur.node.scope) {
        const own = cur.node.metadata.some(
          (m) =>
            m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY &&
            Object.keys(m.data ?? {}).some((k) => k.replace(/^annotation::/i, '') === ruleId),
        );
        if (own) {
          used.add(`${cur.node.path}|${ruleId}`);
          break;
        }
      }
    }
    return hit;
  };
  pack.validateScope(scope);
  return used;
}

/* ----------------------------------------------------------------------------------------------
 * cfn-lint (Python; optional locally, installed in CI)
 * -------------------------------------------------------------------------------------------- */

export interface LintFinding {
  readonly rule: string;
  readonly level: string;
  readonly message: string;
  readonly file: string;
  readonly path: string;
}

export type LintResult = { skipped: string } | { findings: LintFinding[]; version: string };

/**
 * Findings that are artefacts of the tools, not of the templates:
 *  - E3002 "'Tags' was unexpected": CloudFormation added Tags to resources (NLB listeners, scalable
 *    targets, dashboards) after the schemas bundled with the pinned cfn-lint; aws-cdk-lib's newer
 *    schemas (and CloudFormation) accept them.
 *  - W3005: CDK adds explicit DependsOn next to GetAtt references (e.g. a Lambda on its role).
 */
export function isKnownToolArtefact(f: LintFinding): boolean {
  return (f.rule === 'E3002' && /'Tags' was unexpected/.test(f.message)) || f.rule === 'W3005';
}

export function runCfnLint(files: string[]): LintResult {
  const bin = process.env.CFN_LINT ?? 'cfn-lint';
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return {
      skipped: `cfn-lint is not installed (tried "${bin}"); install it with "pipx install cfn-lint" or set CFN_LINT`,
    };
  }
  const res = spawnSync(bin, ['--format', 'json', '--', ...files], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (res.error) throw res.error;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let raw: any[];
  try {
    raw = JSON.parse(res.stdout || '[]');
  } catch {
    throw new Error(`cfn-lint failed (exit ${res.status}): ${res.stderr || res.stdout}`);
  }
  return {
    version: probe.stdout.trim(),
    findings: raw.map((f) => ({
      rule: f.Rule?.Id ?? '?',
      level: f.Level ?? '?',
      message: f.Message ?? '',
      file: path.basename(f.Filename ?? ''),
      path: (f.Location?.Path ?? []).join('/'),
    })),
  };
}

/** The cfn-lint findings on these stacks' templates that are real (not tool artefacts, not informational), or why it was skipped. */
export function realCfnLintFindings(s: Synth, stacks: string[]): { skipped: string } | { findings: string[] } {
  const res = runCfnLint(stacks.map((n) => s.assembly.getStackByName(n).templateFullPath));
  if ('skipped' in res) return res;
  const real = res.findings.filter((f) => !isKnownToolArtefact(f) && f.level !== 'Informational');
  return { findings: real.map((f) => `${f.file} ${f.rule} ${f.path}: ${f.message}`) };
}

/** cdk-nag findings no acknowledgement covers, one line each (`rule @ paths`). */
export function unacknowledgedNagFindings(scope: IConstruct): string[] {
  return nagFindings(scope).map((f) => `${f.rule} @ ${f.paths.join(', ')}`);
}

/* ----------------------------------------------------------------------------------------------
 * Test certificates and keys
 * -------------------------------------------------------------------------------------------- */

type X509Crypto = Parameters<typeof x509.cryptoProvider.set>[0];
type KeyPair = x509.X509CertificateCreateSelfSignedParams['keys'];
x509.cryptoProvider.set(webcrypto as unknown as X509Crypto);

export type TestKeyType = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa-2048' | 'rsa-3072';

export interface TestCertificate {
  readonly pem: string;
  /** base64 DER SubjectPublicKeyInfo of the certificate's key. */
  readonly spki: string;
}

export async function makeCertificate(
  hostnames: string[],
  keyType: TestKeyType,
  opts: { notAfter?: Date; keys?: KeyPair } = {},
): Promise<TestCertificate> {
  const alg =
    keyType === 'ecdsa-p256'
      ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
      : keyType === 'ecdsa-p384'
        ? { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' }
        : {
            name: 'RSASSA-PKCS1-v1_5',
            modulusLength: Number(keyType.slice(4)),
            publicExponent: new Uint8Array([1, 0, 1]),
            hash: 'SHA-256',
          };
  const keys = opts.keys ?? ((await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as KeyPair);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: `CN=${hostnames[0]}`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: opts.notAfter ?? new Date(Date.now() + 365 * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [new x509.SubjectAlternativeNameExtension(hostnames.map((h) => ({ type: 'dns' as const, value: h })))],
  });
  const spki = Buffer.from(
    await webcrypto.subtle.exportKey('spki', keys.publicKey as unknown as webcrypto.CryptoKey),
  ).toString('base64');
  return { pem: cert.toString('pem'), spki };
}

/** An RSA key pair as a sealed key would be provisioned: public SPKI and a fake ciphertext blob. */
export function fakeSealedKey(bits = 2048): { sealedKey: string; publicKey: string; privatePkcs8: Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const privatePkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    // Stand-in for KMS's PrivateKeyCiphertextBlob: same order of size (DER private key + envelope).
    sealedKey: randomBytes(privatePkcs8.length + 180).toString('base64'),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    privatePkcs8,
  };
}

/** Import an RSA private key (PKCS#8 DER) for certificate signing with WebCrypto. */
export async function rsaKeysFromPkcs8(pkcs8: Buffer, spkiB64: string): Promise<KeyPair> {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, true, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', Buffer.from(spkiB64, 'base64'), alg, true, ['verify']);
  return { privateKey, publicKey } as unknown as KeyPair;
}
