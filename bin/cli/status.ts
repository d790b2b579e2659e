/**
 * `keyless status`: what is deployed, from the three sources of truth —
 *  - KMS: the keys under the deployment's alias prefix (name, key id, spec, state) and, for each
 *    slot, which key its live alias `<aliasPrefix><slot>` points at;
 *  - the certificate store: every certificate (slot, key, host names, validity, state) and whether
 *    its leaf's public key is its key's;
 *  - the key service: `ping` (version, the key names it serves) and `public_key` for each
 *    certificate's key, i.e. whether what the edges will ask it to sign with matches the certificate.
 * A source that cannot be read is reported as such; the other sources are still shown. `problems`
 * lists what an operator should act on (and `--check` turns them into exit code 2).
 */
import * as crypto from 'node:crypto';
import {
  DescribeKeyCommand,
  type KMSClient,
  ListAliasesCommand,
  ListResourceTagsCommand,
  type AliasListEntry,
} from '@aws-sdk/client-kms';
import type { StoredCertificate } from '../../contract/certificate-store-entry';
import type { CertificateStoreBackend } from '../../edge-proxy/src/cert-store';
import type { KeyDescription } from '../../contract/key-service-protocol';
import { awsError, CliError } from './errors';
import { dnsNames, firstPemCertificate, isCurrentlyValid, validityOf } from '../../contract/x509';
import { storeError } from './cert-import';
import type { KeyServiceProbe } from './key-service';
import { DEPLOYMENT_TAG, kmsPublicKey, spkiFingerprint } from './keys';
import { type Progress, silent, table } from './output';

const DAY_MS = 86_400_000;
/** Below this many days left, an expiring certificate is a problem to act on. */
export const EXPIRY_WARNING_DAYS = 14;

export interface KeyStatus {
  name: string;
  custody: string;
  keyId?: string;
  alias?: string;
  keySpec: string;
  /** KMS key state (Enabled, Disabled, PendingDeletion, ...), or `configured` for key-service-only keys. */
  state: string;
  enabled: boolean;
  /** Slots whose live alias points at this key. */
  liveFor: string[];
  /** Whether the key service lists this name (null: key service not asked or unreachable). */
  inKeyService: boolean | null;
  publicKeySha256?: string;
  /** With replica regions: the regions where the same key (same id) answers to the alias. */
  replicatedTo?: string[];
  /**
   * The key's `keyless:deployment` tag (kms keys; null: the key has none, undefined: not read). The
   * key-service role may use only keys that carry its deployment's tag (docs/cli.md, "Key tags").
   */
  deploymentTag?: string | null;
}

export interface CertificateStatus {
  id: string;
  slot: string | null;
  keyName: string;
  state: string;
  hostnames: string[];
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  daysLeft: number;
  /** Valid right now (notBefore ≤ now ≤ notAfter). */
  valid: boolean;
  publicKeySha256: string;
  /** Leaf public key equals KMS's public key of keyName (null: not a KMS key, or KMS not readable). */
  matchesKms: boolean | null;
  /** Leaf public key equals the key service's `public_key` of keyName (null: not asked or failed). */
  matchesKeyService: boolean | null;
}

export interface SlotStatus {
  slot: string;
  liveAlias: string;
  /** Key name the live alias points at (another alias of the same key), if any. */
  liveKeyName: string | null;
  liveKeyId: string | null;
  certificates: { id: string; state: string }[];
}

export interface KeyServiceStatus {
  target: string;
  reachable: boolean;
  version?: string;
  protocol?: number;
  keys?: KeyDescription[];
  /** The alias-prefix entry: names not configured resolve to `<aliasPrefix><name>` (null: none). */
  keyPattern?: { name: '*'; custody: 'kms'; aliasPrefix: string } | null;
  error?: string;
}

export interface StatusReport {
  generatedAt: string;
  aliasPrefix: string;
  store: string | null;
  keys: KeyStatus[];
  certificates: CertificateStatus[];
  slots: SlotStatus[];
  keyService: KeyServiceStatus | null;
  /** Sources that could not be read (kms, store, key service), with why. */
  errors: string[];
  /** Things to act on (expired or expiring certificates, mismatches, inconsistent slots). */
  problems: string[];
}

export interface StatusOptions {
  aliasPrefix: string;
  /** The deployment whose `keyless:deployment` tag every key under the prefix must carry (unchecked when absent). */
  deployment?: string;
  /** The deployment's other regions: every kms key must have a replica there under the same alias. */
  replicaRegions?: string[];
  now?: Date;
}

export interface StatusDeps {
  kms?: KMSClient;
  /** KMS in another region (with replicaRegions). */
  kmsIn?: (region: string) => KMSClient;
  store?: CertificateStoreBackend;
  keyService?: KeyServiceProbe;
  progress?: Progress;
}

const errorText = (e: unknown): string =>
  e instanceof CliError ? e.message : e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);

async function listAliases(kms: KMSClient, prefix: string): Promise<AliasListEntry[]> {
  const out: AliasListEntry[] = [];
  let marker: string | undefined;
  const seen = new Set<string>();
  do {
    let page;
    try {
      page = await kms.send(new ListAliasesCommand({ Limit: 100, Marker: marker }));
    } catch (e) {
      throw awsError(e, 'KMS ListAliases');
    }
    out.push(...(page.Aliases ?? []).filter((a) => a.AliasName?.startsWith(prefix) && a.TargetKeyId));
    marker = page.Truncated ? page.NextMarker : undefined;
    if (marker !== undefined) {
      if (seen.has(marker)) throw new Error('KMS ListAliases repeated a marker');
      seen.add(marker);
    }
  } while (marker !== undefined);
  return out;
}

/** A key's `keyless:deployment` tag (null: none); undefined, with an error recorded, when the tags cannot be read. */
async function readDeploymentTag(
  kms: KMSClient,
  keyId: string,
  report: StatusReport,
): Promise<string | null | undefined> {
  let marker: string | undefined;
  try {
    do {
      const page = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Marker: marker }));
      const tag = (page.Tags ?? []).find((t) => t.TagKey === DEPLOYMENT_TAG);
      if (tag) return tag.TagValue ?? '';
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker !== undefined);
    return null;
  } catch (e) {
    report.errors.push(`kms: ${errorText(awsError(e, `KMS ListResourceTags ${keyId}`))}`);
    return undefined;
  }
}

export async function collectStatus(opts: StatusOptions, deps: StatusDeps): Promise<StatusReport> {
  const progress = deps.progress ?? silent;
  const now = opts.now ?? new Date();
  const report: StatusReport = {
    generatedAt: now.toISOString(),
    aliasPrefix: opts.aliasPrefix,
    store: deps.store?.location ?? null,
    keys: [],
    certificates: [],
    slots: [],
    keyService: null,
    errors: [],
    problems: [],
  };

  // 1. The certificate store (it tells which alias names are slots).
  let entries: StoredCertificate[] = [];
  if (deps.store) {
    progress(`reading certificates from ${deps.store.location}`);
    try {
      entries = await deps.store.list();
    } catch (e) {
      report.errors.push(`certificate store: ${errorText(storeError(e, deps.store.location, 'read'))}`);
    }
  }
  const slotNames = new Set(entries.map((e) => e.slot).filter((s): s is string => s !== undefined));
  const certKeyNames = new Set(entries.map((e) => e.keyName));

  // 2. KMS keys under the prefix, grouped by key; alias names that are slots are live aliases.
  const kmsKeyIdByName = new Map<string, string>();
  const spkiByKeyId = new Map<string, Buffer>();
  if (deps.kms) {
    progress(`listing KMS keys under ${opts.aliasPrefix}`);
    try {
      const aliases = await listAliases(deps.kms, opts.aliasPrefix);
      const byKey = new Map<string, string[]>();
      for (const a of aliases)
        byKey.set(a.TargetKeyId!, [...(byKey.get(a.TargetKeyId!) ?? []), a.AliasName!.slice(opts.aliasPrefix.length)]);
      for (const [keyId, names] of byKey) {
        let meta;
        try {
          meta = (await deps.kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;
        } catch (e) {
          report.errors.push(`kms: ${errorText(awsError(e, `KMS DescribeKey ${keyId}`))}`);
          continue;
        }
        const keyNames = names.filter((n) => !slotNames.has(n) || certKeyNames.has(n));
        const liveFor = names.filter((n) => slotNames.has(n));
        if (meta?.KeyUsage === 'SIGN_VERIFY') {
          try {
            spkiByKeyId.set(keyId, (await kmsPublicKey(deps.kms, keyId)).spki);
          } catch (e) {
            report.errors.push(`kms: ${errorText(e)}`);
          }
        }
        for (const slot of liveFor) {
          report.slots.push({
            slot,
            liveAlias: `${opts.aliasPrefix}${slot}`,
            liveKeyName: keyNames[0] ?? null,
            liveKeyId: keyId,
            certificates: [],
          });
        }
        const deploymentTag =
          opts.deployment === undefined ? undefined : await readDeploymentTag(deps.kms, keyId, report);
        // A key known only by its slot alias (e.g. created before per-generation names) is still listed.
        for (const name of keyNames.length > 0 ? keyNames : liveFor.slice(0, 1)) {
          kmsKeyIdByName.set(name, keyId);
          const spki = spkiByKeyId.get(keyId);
          report.keys.push({
            name,
            custody: 'kms',
            keyId,
            alias: `${opts.aliasPrefix}${name}`,
            keySpec: String(meta?.KeySpec ?? 'unknown'),
            state: String(meta?.KeyState ?? 'unknown'),
            enabled: meta?.Enabled === true && meta.KeyState === 'Enabled',
            liveFor,
            inKeyService: null,
            ...(spki ? { publicKeySha256: spkiFingerprint(spki) } : {}),
            ...(deploymentTag !== undefined ? { deploymentTag } : {}),
          });
        }
        if (opts.deployment !== undefined && deploymentTag !== undefined && deploymentTag !== opts.deployment) {
          const which = [...keyNames, ...liveFor].join(', ');
          report.problems.push(
            `key ${which} (${keyId}) ${deploymentTag === null ? `has no ${DEPLOYMENT_TAG} tag` : `is tagged ${DEPLOYMENT_TAG}=${deploymentTag}`}: the key service of ${opts.deployment} may not use it (its policy requires ${DEPLOYMENT_TAG}=${opts.deployment}); a key administrator can add it: aws kms tag-resource --key-id ${keyId} --tags TagKey=${DEPLOYMENT_TAG},TagValue=${opts.deployment}`,
          );
        }
      }
    } catch (e) {
      report.errors.push(`kms: ${errorText(e)}`);
    }
  }
  for (const slot of slotNames) {
    if (!report.slots.some((s) => s.slot === slot))
      report.slots.push({
        slot,
        liveAlias: `${opts.aliasPrefix}${slot}`,
        liveKeyName: null,
        liveKeyId: null,
        certificates: [],
      });
  }

  // 2b. Multi-region: each region's key service signs with its own region's key behind the same alias.
  if (deps.kms && deps.kmsIn && (opts.replicaRegions ?? []).length > 0) {
    for (const region of opts.replicaRegions!) {
      progress(`checking replicas in ${region}`);
      for (const k of report.keys) {
        if (k.custody !== 'kms' || !k.keyId || !k.enabled) continue;
        let there: string | undefined;
        try {
          there = (await deps.kmsIn(region).send(new DescribeKeyCommand({ KeyId: `${opts.aliasPrefix}${k.name}` })))
            .KeyMetadata?.KeyId;
        } catch (e) {
          if ((e as Error).name !== 'NotFoundException') {
            report.errors.push(
              `kms ${region}: ${errorText(awsError(e, `KMS DescribeKey ${opts.aliasPrefix}${k.name} in ${region}`))}`,
            );
            continue;
          }
        }
        if (there === k.keyId) k.replicatedTo = [...(k.replicatedTo ?? []), region];
        else if (certKeyNames.has(k.name) || k.liveFor.length > 0) {
          report.problems.push(
            `key ${k.name} has ${there ? `another key (${there})` : 'no replica'} behind ${opts.aliasPrefix}${k.name} in ${region}: the key service there cannot sign for its certificate (failover fails); ${k.keyId.startsWith('mrk-') ? `finish it: keyless keys create --name ${k.name} --key-spec ${k.keySpec} --replica-region ${region} --if-exists reuse` : 'it is a single-Region key: rotate the slot to a new generation with --replica-region'}`,
          );
        }
      }
    }
  }

  // 3. The key service.
  const keyServiceSpki = new Map<string, Buffer | null>();
  if (deps.keyService) {
    progress(`asking ${deps.keyService.name} (ping)`);
    try {
      const ping = await deps.keyService.ping();
      report.keyService = {
        target: deps.keyService.name,
        reachable: true,
        version: ping.version,
        protocol: ping.protocol,
        keys: ping.keys,
        keyPattern: ping.keyPattern ?? null,
      };
      if (ping.keyPattern && ping.keyPattern.aliasPrefix !== opts.aliasPrefix) {
        report.problems.push(
          `the key service resolves key names under ${ping.keyPattern.aliasPrefix}, not ${opts.aliasPrefix}: check --deployment / --alias-prefix (or its KEYLESS_KEYS "*" entry)`,
        );
      }
      const served = new Set(ping.keys.map((k) => k.name));
      for (const k of report.keys) k.inKeyService = served.has(k.name);
      // Keys the service is configured with by name (sealed keys, kms keys with their own key id).
      for (const k of ping.keys) {
        if (!report.keys.some((r) => r.name === k.name)) {
          report.keys.push({
            name: k.name,
            custody: k.custody,
            keySpec: k.keySpec,
            state: 'configured',
            enabled: true,
            liveFor: [],
            inKeyService: true,
          });
        }
      }
      // Ask for every key we know of: a kms key the service resolves by alias prefix is served even
      // when `ping` does not list it, and the key it resolves must be the one KMS lists.
      for (const name of new Set([...report.keys.map((k) => k.name), ...certKeyNames])) {
        try {
          const pub = await deps.keyService.publicKey(name);
          keyServiceSpki.set(name, Buffer.from(pub.spki, 'base64'));
          // The service loads configured keys lazily: its ping may not know their spec yet.
          const configured = report.keys.find((k) => k.name === name && k.state === 'configured');
          if (configured) configured.keySpec = pub.keySpec;
        } catch (e) {
          keyServiceSpki.set(name, null);
          if (certKeyNames.has(name))
            report.problems.push(`key service cannot give the public key of ${name}: ${errorText(e)}`);
        }
      }
      for (const k of report.keys) {
        const ks = keyServiceSpki.get(k.name);
        if (ks === undefined) continue;
        k.inKeyService = ks !== null;
        const kmsSpki = k.keyId ? spkiByKeyId.get(k.keyId) : undefined;
        if (ks && kmsSpki && !ks.equals(kmsSpki))
          report.problems.push(
            `the key service signs for ${k.name} with another key than ${k.alias} (check its KEYLESS_KEYS entry for ${k.name})`,
          );
      }
    } catch (e) {
      report.keyService = { target: deps.keyService.name, reachable: false, error: errorText(e) };
      report.errors.push(`key service: ${errorText(e)}`);
    }
  }

  // 4. Certificates, checked against both.
  for (const entry of entries) {
    const first = firstPemCertificate(entry.chainPem);
    if (!first) continue;
    const leaf = new crypto.X509Certificate(first);
    const spki = leaf.publicKey.export({ type: 'spki', format: 'der' });
    const notBefore = new Date(leaf.validFrom);
    const notAfter = new Date(leaf.validTo);
    const kmsKeyId = kmsKeyIdByName.get(entry.keyName);
    const kmsSpki = kmsKeyId ? spkiByKeyId.get(kmsKeyId) : undefined;
    const ksSpki = keyServiceSpki.get(entry.keyName);
    const cert: CertificateStatus = {
      id: entry.id,
      slot: entry.slot ?? null,
      keyName: entry.keyName,
      state: entry.state,
      hostnames: entry.hostnames.length > 0 ? entry.hostnames : dnsNames(leaf),
      subject: leaf.subject.replace(/\n/g, ', '),
      issuer: leaf.issuer.replace(/\n/g, ', '),
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
      valid: isCurrentlyValid(validityOf(leaf), now),
      publicKeySha256: spkiFingerprint(spki),
      matchesKms: kmsSpki ? kmsSpki.equals(spki) : null,
      matchesKeyService: ksSpki ? ksSpki.equals(spki) : null,
    };
    report.certificates.push(cert);
    const slot = report.slots.find((s) => s.slot === entry.slot);
    slot?.certificates.push({ id: entry.id, state: entry.state });

    const serving = entry.state !== 'staged';
    if (!cert.valid)
      report.problems.push(
        `certificate ${entry.id} is ${now < notBefore ? 'not valid yet' : 'expired'} (${cert.notBefore} … ${cert.notAfter})${serving ? '; the edges do not serve it' : ''}`,
      );
    else if (serving && cert.daysLeft < EXPIRY_WARNING_DAYS)
      report.problems.push(
        `certificate ${entry.id} expires in ${cert.daysLeft} days (${cert.notAfter}): rotate or renew it`,
      );
    if (cert.matchesKms === false)
      report.problems.push(`certificate ${entry.id} does not match KMS key ${entry.keyName}`);
    if (cert.matchesKeyService === false)
      report.problems.push(
        `certificate ${entry.id} does not match what the key service signs with for ${entry.keyName}`,
      );
    if (
      deps.kms &&
      !kmsKeyId &&
      !report.errors.some((e) => e.startsWith('kms:')) &&
      !report.keys.some((k) => k.name === entry.keyName)
    ) {
      report.problems.push(
        `certificate ${entry.id} names key ${entry.keyName}, which is not under ${opts.aliasPrefix} in KMS${deps.keyService ? ' nor served by the key service' : ''}`,
      );
    }
    const key = report.keys.find((k) => k.name === entry.keyName);
    if (serving && key && !key.enabled)
      report.problems.push(`certificate ${entry.id} is ${entry.state} but its key ${entry.keyName} is ${key.state}`);
  }
  for (const s of report.slots) {
    const live = s.certificates.filter((c) => c.state === 'live');
    const liveEntries = report.certificates.filter((c) => c.slot === s.slot && c.state === 'live');
    if (live.length === 0 && s.certificates.length > 0) report.problems.push(`slot ${s.slot} has no live certificate`);
    if (s.liveKeyName && liveEntries.length > 0 && !liveEntries.some((c) => c.keyName === s.liveKeyName)) {
      report.problems.push(
        `slot ${s.slot}: the live alias points at ${s.liveKeyName}, but the live certificate is ${liveEntries.map((c) => c.keyName).join(', ')} (an unfinished promote? run keyless rotate ${s.slot})`,
      );
    }
  }
  report.keys.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  report.slots.sort((a, b) => (a.slot < b.slot ? -1 : a.slot > b.slot ? 1 : 0));
  return report;
}

const yesNo = (v: boolean | null): string => (v === null ? '-' : v ? 'yes' : 'NO');

/** The human rendering of a status report. */
export function formatStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push(
    `keys (KMS aliases under ${r.aliasPrefix}${r.keyService?.reachable ? ", and the key service's configured names" : ''}):`,
  );
  out.push(
    r.keys.length === 0
      ? '  (none)'
      : indent(
          table(
            ['NAME', 'CUSTODY', 'KEY ID', 'SPEC', 'STATE', 'LIVE FOR', 'KEY SERVICE'],
            r.keys.map((k) => [
              k.name,
              k.custody,
              k.keyId ?? '-',
              k.keySpec,
              k.state,
              k.liveFor.join(',') || '-',
              yesNo(k.inKeyService),
            ]),
          ),
        ),
  );
  out.push('', `certificates (${r.store ?? 'no store'}):`);
  out.push(
    r.certificates.length === 0
      ? '  (none)'
      : indent(
          table(
            ['ID', 'SLOT', 'KEY', 'STATE', 'HOSTNAMES', 'NOT AFTER', 'DAYS LEFT', 'KMS MATCH', 'KS MATCH'],
            r.certificates.map((c) => [
              c.id,
              c.slot ?? '-',
              c.keyName,
              c.state,
              c.hostnames.join(','),
              c.notAfter.slice(0, 10),
              c.valid ? String(c.daysLeft) : c.daysLeft < 0 ? 'expired' : 'not yet',
              yesNo(c.matchesKms),
              yesNo(c.matchesKeyService),
            ]),
          ),
        ),
  );
  if (r.slots.length > 0) {
    out.push('', 'slots:');
    out.push(
      indent(
        table(
          ['SLOT', 'LIVE ALIAS', 'POINTS AT', 'CERTIFICATES'],
          r.slots.map((s) => [
            s.slot,
            s.liveAlias,
            s.liveKeyName ?? s.liveKeyId ?? '(no alias)',
            s.certificates.map((c) => `${c.id}:${c.state}`).join(' ') || '-',
          ]),
        ),
      ),
    );
  }
  out.push('', 'key service:');
  if (!r.keyService) out.push('  (not asked: pass --key-service FUNCTION, or --local)');
  else if (!r.keyService.reachable) out.push(`  ${r.keyService.target}: unreachable (${r.keyService.error})`);
  else {
    const named = (r.keyService.keys ?? []).map((k) => `${k.name} (${k.custody})`).join(', ');
    const pattern = r.keyService.keyPattern ? `any name under ${r.keyService.keyPattern.aliasPrefix}` : '';
    out.push(
      `  ${r.keyService.target}: version ${r.keyService.version}, protocol ${r.keyService.protocol}, serves ${[named, pattern].filter(Boolean).join('; ') || 'nothing'}`,
    );
  }
  if (r.errors.length > 0) out.push('', 'could not read:', ...r.errors.map((e) => `  - ${e}`));
  out.push('', r.problems.length === 0 ? 'problems: none' : 'problems:', ...r.problems.map((p) => `  - ${p}`));
  return `${out.join('\n')}\n`;
}

const indent = (s: string): string =>
  s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
