/**
 * argv → command core → output, for `keys create`, `csr`, `cert issue`, `cert import` and `status`.
 * The cores (keys.ts, csr.ts, cert-issue.ts, cert-import.ts, status.ts) take plain options and
 * clients, so `keyless rotate` and tests call them directly; this file only parses, reads files,
 * resolves the shared context and prints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_CA_ALIAS } from '../../local/dev-pki';
import { type CommandSpec, opt, type OptionSpec, type ParsedArgs } from './args';
import { type CertificateAuthority, issueCertificate, PCA_SIGNING_ALGORITHMS } from './cert-issue';
import { importCertificate } from './cert-import';
import {
  type CliContext,
  type CliIo,
  GLOBAL_OPTIONS,
  KEY_SERVICE_OPTIONS,
  resolveContext,
  STORE_OPTIONS,
} from './context';
import { createCsr } from './csr';
import { EXIT, failed, usageError } from './errors';
import { createKey, CUSTODIES, type CliCustody, KMS_KEY_SPECS, parseTags } from './keys';
import { collectStatus, formatStatus } from './status';

export interface Command {
  spec: CommandSpec;
  /** Resolves to the exit code (0 unless the command reports a condition, e.g. `status --check`). */
  run(args: ParsedArgs, io: CliIo): Promise<number>;
}

/** Reads a file argument (`-` is stdin); a missing or unreadable file is a usage error. */
export function readInput(file: string, what: string, io: CliIo = {}): string {
  try {
    return file === '-'
      ? fs.readFileSync(0, 'utf8')
      : fs.readFileSync(path.resolve(io.cwd ?? process.cwd(), file), 'utf8');
  } catch (e) {
    throw usageError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      `Check the path given for the ${what}.`,
    );
  }
}

/** `--key-policy FILE`: a KMS key policy document, checked for shape before KMS sees it. */
export function keyPolicyOption(args: ParsedArgs, io: CliIo): string | undefined {
  const file = opt.str(args, 'key-policy');
  return file === undefined ? undefined : policyFile(file, '--key-policy', io);
}

/** A key policy file, checked for shape before KMS sees it. */
function policyFile(file: string, option: string, io: CliIo): string {
  const text = readInput(file, 'key policy', io);
  const fix =
    'Give a KMS key policy document: {"Version": "2012-10-17", "Statement": [...]} (aws kms get-key-policy on the slot\'s CDK-made key prints one).';
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw usageError(`${option} ${file} is not valid JSON (${(e as Error).message})`, fix);
  }
  const statements = (doc as { Statement?: unknown } | null)?.Statement;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    Array.isArray(doc) ||
    !(Array.isArray(statements) ? statements.length > 0 : typeof statements === 'object' && statements !== null)
  ) {
    throw usageError(`${option} ${file} has no Statement`, fix);
  }
  return text;
}

/** Writes an output file atomically (temp file + rename); public data, so mode 0644. */
export function writeOutput(file: string, content: string, io: CliIo = {}): string {
  const target = path.resolve(io.cwd ?? process.cwd(), file);
  const tmp = `${target}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(tmp, content, { mode: 0o644 });
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw failed(
      `cannot write ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      'Check the directory exists and is writable.',
    );
  }
  return target;
}

/** `--replica-region` / `--replica-key-policy`: where a new multi-Region key is replicated (keys create, rotate new-key). */
export const REPLICA_OPTIONS: OptionSpec[] = [
  {
    name: 'replica-region',
    type: 'list',
    value: 'REGION',
    description:
      "kms: the deployment's other regions; the key becomes multi-Region and is replicated there with its alias (default KEYLESS_REPLICA_REGIONS)",
  },
  {
    name: 'replica-key-policy',
    type: 'list',
    value: 'REGION=FILE',
    description: 'kms: key policy JSON of the replica in REGION (needed for each replica when --key-policy is given)',
  },
];

export function replicaOptions(
  args: ParsedArgs,
  ctx: CliContext,
  io: CliIo,
): { replicaRegions: string[]; replicaKeyPolicies: Record<string, string> } {
  const given = opt.list(args, 'replica-region');
  const fromEnv = (ctx.env.KEYLESS_REPLICA_REGIONS ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
  const replicaRegions = given.length > 0 ? given : fromEnv;
  const replicaKeyPolicies: Record<string, string> = {};
  for (const item of opt.list(args, 'replica-key-policy')) {
    const eq = item.indexOf('=');
    if (eq <= 0)
      throw usageError(
        `--replica-key-policy ${item} is not REGION=FILE`,
        'Write e.g. --replica-key-policy us-west-2=policy-us-west-2.json.',
      );
    replicaKeyPolicies[item.slice(0, eq)] = policyFile(
      item.slice(eq + 1),
      `--replica-key-policy ${item.slice(0, eq)}`,
      io,
    );
  }
  return { replicaRegions, replicaKeyPolicies };
}

async function withContext(args: ParsedArgs, io: CliIo, body: (ctx: CliContext) => Promise<number>): Promise<number> {
  const ctx = resolveContext(args, io);
  try {
    return await body(ctx);
  } finally {
    ctx.close();
  }
}

const required = (args: ParsedArgs, name: string, example: string): string => {
  const v = opt.str(args, name);
  if (v === undefined) throw usageError(`--${name} is required`, `Write e.g. --${name} ${example}.`);
  return v;
};

// ---------------------------------------------------------------------------------------------

export const keysCreateCommand: Command = {
  spec: {
    name: 'keys create',
    summary: 'Create a key generation: a KMS signing key with its alias, or a sealed RSA key pair.',
    description:
      'kms keys get the alias <alias-prefix><name>; the key service serves them by that prefix with no redeploy.\n' +
      'sealed keys are KMS-generated RSA pairs whose private half is KMS ciphertext; the command prints the\n' +
      'KEYLESS_KEYS entry to add to the key service (a redeploy). Names are immutable: one per key generation.',
    options: [
      { name: 'name', type: 'string', value: 'NAME', description: 'key name, e.g. site-2 (required)' },
      { name: 'custody', type: 'string', value: 'MODE', description: 'custody mode (default kms)', choices: CUSTODIES },
      {
        name: 'key-spec',
        type: 'string',
        value: 'SPEC',
        description: 'key spec (default RSA_2048; sealed: RSA only)',
        choices: KMS_KEY_SPECS,
      },
      { name: 'tag', type: 'list', value: 'KEY=VALUE', description: 'KMS tag on the key (kms custody)' },
      { name: 'description', type: 'string', value: 'TEXT', description: 'KMS key description' },
      {
        name: 'wrapping-key',
        type: 'string',
        value: 'KEY',
        description: 'sealed: the wrapping key (default alias/keyless/<deployment>/sealed-wrapping)',
      },
      {
        name: 'out',
        type: 'string',
        value: 'FILE',
        description: 'sealed: also write the KEYLESS_KEYS entry to FILE (mode 0600, never overwritten)',
      },
      {
        name: 'if-exists',
        type: 'string',
        value: 'WHAT',
        description: 'when the name exists: refuse (default, exit 2) or reuse a key of the same spec',
        choices: ['refuse', 'reuse'],
      },
      {
        name: 'key-policy',
        type: 'string',
        value: 'FILE',
        description:
          "kms: key policy JSON for the new key (e.g. the one the CDK gives the slot's key, pinning the key-service role and its VPC endpoint); default: KMS's default policy",
      },
      ...REPLICA_OPTIONS,
      ...GLOBAL_OPTIONS,
    ],
    examples: [
      'keyless keys create --local --name site-1 --key-spec ECC_NIST_P256',
      'keyless keys create --deployment prod --name site-2 --key-spec RSA_2048 --tag team=edge',
      'keyless keys create --deployment prod --custody sealed --name legacy-1 --out legacy-1.json',
      'keyless keys create --deployment prod --region us-east-1 --replica-region us-west-2 --name site-3 --key-spec ECC_NIST_P256',
    ],
  },
  run: (args, io) =>
    withContext(args, io, async (ctx) => {
      const custody = (opt.str(args, 'custody') ?? 'kms') as CliCustody;
      const created = await createKey(
        {
          name: required(args, 'name', 'site-1'),
          custody,
          keySpec: opt.str(args, 'key-spec') ?? 'RSA_2048',
          aliasPrefix: ctx.aliasPrefix,
          deployment: ctx.deployment,
          tags: parseTags(opt.list(args, 'tag')),
          description: opt.str(args, 'description'),
          wrappingKeyId: opt.str(args, 'wrapping-key'),
          outFile:
            opt.str(args, 'out') === undefined
              ? undefined
              : path.resolve(io.cwd ?? process.cwd(), opt.str(args, 'out')!),
          ifExists: opt.str(args, 'if-exists') as 'refuse' | 'reuse' | undefined,
          keyPolicy: keyPolicyOption(args, io),
          ...replicaOptions(args, ctx, io),
        },
        { kms: ctx.aws.kms, kmsIn: (r) => ctx.aws.kmsIn(r), progress: ctx.out.progress },
      );
      ctx.out.result(created, () => {
        const lines = [
          `${created.created ? 'created' : 'reused'} ${created.custody} key ${created.name} (${created.keySpec})`,
          ...(created.alias
            ? [`  alias:      ${created.alias}`, `  key id:     ${created.keyId}`, `  key arn:    ${created.keyArn}`]
            : []),
          ...(created.replicas ?? []).map(
            (r) => `  replica:    ${r.keyArn} (${r.region}, alias ${r.alias}${r.created ? '' : ', already there'})`,
          ),
          `  public key: sha256 ${created.publicKeySha256}`,
        ];
        if (created.custody === 'kms') {
          lines.push('', `next: keyless csr --key ${created.name} --dns <host name>${ctx.local ? ' --local' : ''}`);
        } else {
          lines.push(
            '',
            "add this entry to the key service's KEYLESS_KEYS and redeploy it:",
            JSON.stringify(created.keyServiceEntry),
          );
          if (created.outFile) lines.push(`(also written to ${created.outFile})`);
        }
        return lines.join('\n');
      });
      return EXIT.ok;
    }),
};

export const csrCommand: Command = {
  spec: {
    name: 'csr',
    summary: 'Create a PKCS#10 certificate request for DNS names, signed by the KMS key itself.',
    description:
      'The request is verified locally (signature and public key) before it is printed. Give it to your CA,\nor to `keyless cert issue`.',
    options: [
      { name: 'key', type: 'string', value: 'NAME', description: 'key name (required)' },
      {
        name: 'dns',
        type: 'list',
        value: 'NAME',
        description: 'DNS name for the subjectAltName (required; first one is also the CN)',
      },
      {
        name: 'subject',
        type: 'string',
        value: 'DN',
        description: 'subject distinguished name (default CN=<first DNS name>)',
      },
      { name: 'out', type: 'string', value: 'FILE', description: 'write the PEM request to FILE instead of stdout' },
      ...GLOBAL_OPTIONS,
    ],
    examples: [
      'keyless csr --local --key site-1 --dns localhost --out site-1.csr',
      'keyless csr --deployment prod --key site-2 --dns example.com --dns www.example.com > site-2.csr',
    ],
  },
  run: (args, io) =>
    withContext(args, io, async (ctx) => {
      const dns = opt.list(args, 'dns');
      if (dns.length === 0) throw usageError('--dns is required', 'Write e.g. --dns example.com (repeatable).');
      const csr = await createCsr(
        {
          keyName: required(args, 'key', 'site-1'),
          aliasPrefix: ctx.aliasPrefix,
          dnsNames: dns,
          subject: opt.str(args, 'subject'),
        },
        { kms: ctx.aws.kms, progress: ctx.out.progress },
      );
      const outFile = opt.str(args, 'out');
      const written = outFile ? writeOutput(outFile, csr.pem, io) : undefined;
      ctx.out.result({ ...csr, file: written ?? null }, () =>
        written
          ? `wrote ${written}: request for ${csr.dnsNames.join(', ')} signed by ${csr.keyName} (${csr.keySpec}), verified`
          : csr.pem,
      );
      return EXIT.ok;
    }),
};

export const certIssueCommand: Command = {
  spec: {
    name: 'cert issue',
    summary: 'Issue a certificate for a request: with the local dev CA or with AWS Private CA.',
    description:
      '--dev-ca signs with the development CA whose key lives only in the (local) KMS: for local use and tests.\n' +
      '--pca-arn calls AWS Private CA IssueCertificate and waits until the certificate is issued.\n' +
      'The output is the chain, leaf first, ready for `keyless cert import`.',
    options: [
      { name: 'csr', type: 'string', value: 'FILE', description: 'the PEM request (- for stdin; required)' },
      { name: 'dev-ca', type: 'boolean', description: 'issue with the local development CA' },
      { name: 'ca-cert', type: 'string', value: 'FILE', description: 'dev CA certificate (default <dev-dir>/ca.pem)' },
      {
        name: 'ca-alias',
        type: 'string',
        value: 'ALIAS',
        description: `dev CA key alias (default ${DEFAULT_CA_ALIAS})`,
      },
      { name: 'pca-arn', type: 'string', value: 'ARN', description: 'issue with this AWS Private CA' },
      {
        name: 'signing-algorithm',
        type: 'string',
        value: 'ALG',
        description: "Private CA signing algorithm (default: the CA's own)",
        choices: PCA_SIGNING_ALGORITHMS,
      },
      {
        name: 'template-arn',
        type: 'string',
        value: 'ARN',
        description: 'Private CA certificate template (default EndEntityCertificate/V1)',
      },
      { name: 'days', type: 'string', value: 'N', description: 'validity in days (default 90)' },
      {
        name: 'wait-seconds',
        type: 'string',
        value: 'N',
        description: 'how long to wait for Private CA to issue (default 300)',
      },
      { name: 'out', type: 'string', value: 'FILE', description: 'write the PEM chain to FILE instead of stdout' },
      ...GLOBAL_OPTIONS,
    ],
    examples: [
      'keyless cert issue --local --dev-ca --csr site-1.csr --out site-1.chain.pem',
      'keyless cert issue --pca-arn arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/... --csr site-2.csr --days 90 --out site-2.chain.pem',
    ],
  },
  run: (args, io) =>
    withContext(args, io, async (ctx) => {
      const csrPem = readInput(required(args, 'csr', 'site-1.csr'), 'certificate request', io);
      const pcaArn = opt.str(args, 'pca-arn');
      const devCa = opt.bool(args, 'dev-ca');
      if (devCa === (pcaArn !== undefined))
        throw usageError(
          'give exactly one CA: --dev-ca or --pca-arn ARN',
          'Use --dev-ca with the local stack, --pca-arn with AWS Private CA.',
        );
      let ca: CertificateAuthority;
      if (devCa) {
        const caFile = opt.str(args, 'ca-cert') ?? path.join(ctx.devDir, 'ca.pem');
        ca = {
          kind: 'dev',
          caAlias: opt.str(args, 'ca-alias') ?? DEFAULT_CA_ALIAS,
          caCertPem: readInput(caFile, 'dev CA certificate', io),
        };
      } else {
        if (!/^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority\/[A-Za-z0-9-]+$/.test(pcaArn!)) {
          throw usageError(
            `--pca-arn ${pcaArn} is not a private CA ARN`,
            'Write arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>.',
          );
        }
        ca = {
          kind: 'acm-pca',
          arn: pcaArn!,
          signingAlgorithm: opt.str(args, 'signing-algorithm'),
          templateArn: opt.str(args, 'template-arn'),
          maxWaitSeconds: opt.int(args, 'wait-seconds', 300, 1, 3600),
        };
      }
      const issued = await issueCertificate(
        { csrPem, ca, days: opt.int(args, 'days', 90, 1, 3650) },
        { kms: ctx.aws.kms, acmPca: ctx.aws.acmPca, progress: ctx.out.progress },
      );
      const outFile = opt.str(args, 'out');
      const written = outFile ? writeOutput(outFile, issued.chainPem, io) : undefined;
      ctx.out.result({ ...issued, file: written ?? null }, () =>
        written
          ? `wrote ${written}: certificate for ${issued.dnsNames.join(', ')} from ${issued.issuer.replace(/\n/g, ', ')}, valid until ${issued.notAfter}`
          : issued.chainPem,
      );
      return EXIT.ok;
    }),
};

export const certImportCommand: Command = {
  spec: {
    name: 'cert import',
    summary: 'Check a certificate chain against its key and store it for the edge fleet (state staged).',
    description:
      'Refuses a chain that is not for the key, is expired or not yet valid, does not chain (or not to --ca), or\n' +
      'carries a private key. Stored as `staged` (loaded and checked by the edges, not served) unless --live,\n' +
      'which is only allowed for a slot without a live certificate; promotion is `keyless rotate`.',
    options: [
      { name: 'key', type: 'string', value: 'NAME', description: 'the key the certificate belongs to (required)' },
      { name: 'slot', type: 'string', value: 'SLOT', description: 'the logical certificate, e.g. site (required)' },
      { name: 'chain', type: 'string', value: 'FILE', description: 'PEM chain, leaf first (- for stdin; required)' },
      {
        name: 'live',
        type: 'boolean',
        description: "store it live (first certificate of a slot, or renewing a live key's certificate)",
      },
      {
        name: 'hostname',
        type: 'list',
        value: 'NAME',
        description: 'host names to serve it for (default: its DNS subjectAltNames)',
      },
      {
        name: 'ca',
        type: 'string',
        value: 'FILE',
        description: 'also require the chain to lead to this CA certificate',
      },
      ...STORE_OPTIONS,
      ...KEY_SERVICE_OPTIONS,
      ...GLOBAL_OPTIONS,
    ],
    examples: [
      'keyless cert import --local --key site-1 --slot site --chain site-1.chain.pem --live',
      'keyless cert import --deployment prod --key site-2 --slot site --chain site-2.chain.pem --ca root.pem',
    ],
  },
  run: (args, io) =>
    withContext(args, io, async (ctx) => {
      const chainText = readInput(required(args, 'chain', 'site-1.chain.pem'), 'certificate chain', io);
      const caFile = opt.str(args, 'ca');
      const imported = await importCertificate(
        {
          keyName: required(args, 'key', 'site-1'),
          slot: required(args, 'slot', 'site'),
          chainText,
          state: opt.bool(args, 'live') ? 'live' : 'staged',
          hostnames: opt.list(args, 'hostname'),
          caPem: caFile ? readInput(caFile, 'CA certificate', io) : undefined,
          aliasPrefix: ctx.aliasPrefix,
        },
        { store: ctx.store(), kms: ctx.aws.kms, keyService: ctx.keyService(), progress: ctx.out.progress },
      );
      for (const w of imported.warnings) ctx.out.warn(w);
      ctx.out.result(imported, () =>
        [
          `${imported.replaced ? 'replaced' : 'stored'} ${imported.state} certificate ${imported.id} (slot ${imported.slot}) in ${imported.store}`,
          `  host names: ${imported.hostnames.join(', ')}`,
          `  valid:      ${imported.notBefore} … ${imported.notAfter}`,
          `  issuer:     ${imported.issuer}`,
          `  key check:  leaf public key = ${imported.keyName}'s (from ${imported.publicKeySource === 'kms' ? 'KMS' : 'the key service'})`,
          '',
          imported.state === 'staged'
            ? `next: edges load it within their refresh interval; promote it with keyless rotate ${imported.slot}`
            : 'edges serve it after their next refresh (or SIGHUP)',
        ].join('\n'),
      );
      return EXIT.ok;
    }),
};

export const statusCommand: Command = {
  spec: {
    name: 'status',
    summary:
      'Show keys, certificates (expiry, state), which key each live alias points at, and what the key service serves.',
    description: 'Exit code 0 when every source could be read; with --check, 2 when there are problems to act on.',
    options: [
      { name: 'check', type: 'boolean', description: 'exit with code 2 when problems are listed (for monitoring)' },
      {
        name: 'replica-region',
        type: 'list',
        value: 'REGION',
        description:
          "the deployment's other regions: each key with a certificate must have its replica there (default KEYLESS_REPLICA_REGIONS)",
      },
      ...STORE_OPTIONS,
      ...KEY_SERVICE_OPTIONS,
      ...GLOBAL_OPTIONS,
    ],
    examples: [
      'keyless status --local',
      'keyless status --deployment prod --key-service arn:aws:lambda:eu-west-1:111122223333:function:Keyless-Prod-KeyService-Fn:live --json',
    ],
  },
  run: (args, io) =>
    withContext(args, io, async (ctx) => {
      const report = await collectStatus(
        {
          aliasPrefix: ctx.aliasPrefix,
          deployment: ctx.deployment,
          replicaRegions: replicaOptions(args, ctx, io).replicaRegions,
        },
        {
          kms: ctx.aws.kms,
          kmsIn: (r) => ctx.aws.kmsIn(r),
          store: ctx.store(),
          keyService: ctx.keyService(),
          progress: ctx.out.progress,
        },
      );
      ctx.out.result(report, () => formatStatus(report));
      // Nothing could be read: the status is unknown, which is an outage, not a finding.
      if (report.errors.length > 0 && report.keys.length === 0 && report.certificates.length === 0) {
        return report.errors.every((x) => /unreachable|not running/.test(x)) ? EXIT.unavailable : EXIT.failed;
      }
      return opt.bool(args, 'check') && (report.problems.length > 0 || report.errors.length > 0)
        ? EXIT.refused
        : EXIT.ok;
    }),
};
