/**
 * `keyless rotate SLOT [STEP]`: guided, zero-downtime rotation of the certificate of one slot (a
 * logical certificate such as "site") to a new key generation (docs/rotation.md). KMS asymmetric keys
 * do not rotate by themselves: rotation is a new key and certificate served side by
 * side, then promotion and retirement of the old one.
 *
 *   new-key   create the next key generation (`<slot>-<n>`, alias `<aliasPrefix><slot>-<n>`)
 *   csr       a certificate request for the slot's names, signed by the new key in KMS
 *   issue     csr + certificate from the dev CA or AWS Private CA + import, in one step
 *   import    check the certificate against the new key and store it as `staged` (never served)
 *   promote   new entry → live, old live → retiring (served only as a fallback), live alias → new key
 *   retire    after the drain period: remove the retiring entry, then disable its KMS key
 *
 * Every step reads the current state from KMS and the certificate store, so it can be re-run after
 * a failure or from another machine (nothing is kept locally), does nothing when its work is already
 * done, and refuses (exit code 2, with what to do) when its precondition does not hold. `--dry-run`
 * prints what a step would do and changes nothing. Without a STEP the command prints the slot's
 * state and the next step.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ACMPCAClient } from '@aws-sdk/client-acm-pca';
import {
  CreateAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  type KMSClient,
  ListAliasesCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
  type AliasListEntry,
} from '@aws-sdk/client-kms';
import { SLOT_PATTERN, type StoredCertificate } from '../../contract/certificate-store-entry';
import {
  dnsNames as certificateDnsNames,
  firstPemCertificate,
  hasExpired,
  isNotYetValid,
  namesCover,
  validityOf,
} from '../../contract/x509';
import type { CertificateStoreBackend } from '../../edge-proxy/src/cert-store';
import { DEFAULT_CERT_REFRESH_SECONDS } from '../../edge-proxy/src/config';
import { DEFAULT_CA_ALIAS } from '../../local/dev-pki';
import { type CommandSpec, opt, type ParsedArgs } from './args';
import { type CertificateAuthority, issueCertificate } from './cert-issue';
import { importCertificate, storeError, type ImportedCertificate } from './cert-import';
import { type Command, keyPolicyOption, REPLICA_OPTIONS, replicaOptions } from './commands';
import {
  type CliContext,
  type CliIo,
  GLOBAL_OPTIONS,
  KEY_SERVICE_OPTIONS,
  resolveContext,
  STORE_OPTIONS,
} from './context';
import { createCsr } from './csr';
import { awsError, CliError, EXIT, failed, refused, usageError } from './errors';
import type { KeyServiceProbe } from './key-service';
import {
  createKey,
  describeKeyByName,
  type KeyInfo,
  kmsPublicKey,
  KMS_KEY_NAME_PATTERN,
  KMS_KEY_SPECS,
  keyAlias,
  spkiFingerprint,
} from './keys';
import { type Progress, silent } from './output';

export const ROTATE_STEPS = ['new-key', 'csr', 'issue', 'import', 'promote', 'retire'] as const;
export type RotateStep = (typeof ROTATE_STEPS)[number];

/** The edge's default handshake deadline (edge-proxy/src/config.ts): a handshake started before a change finishes within it. */
const HANDSHAKE_DEADLINE_SECONDS = 10;

/**
 * Default drain before `retire`: every edge has re-read the store twice since promotion (a refresh is
 * at most 1.2 × the interval late with jitter) and every handshake that started with the old
 * certificate has finished.
 */
export function defaultDrainSeconds(refreshSeconds = DEFAULT_CERT_REFRESH_SECONDS): number {
  return 2 * refreshSeconds + HANDSHAKE_DEADLINE_SECONDS;
}

export interface RotateOptions {
  slot: string;
  /** KMS alias prefix of key names (`alias/keyless/<deployment>/keys/`). */
  aliasPrefix: string;
  /** The new key generation's name (default: `<slot>-<n+1>`, or the one a previous run created). */
  newKey?: string;
  /** new-key: KMS key spec (default: the live certificate's key type, else ECC_NIST_P256). */
  keySpec?: string;
  /** new-key: key policy JSON for the new key (default: KMS's default policy). */
  keyPolicy?: string;
  /** new-key: recorded as the new key's `keyless:deployment` tag (the key service may use only keys with its deployment's). */
  deployment?: string;
  /**
   * The deployment's other regions: new-key makes a multi-Region key replicated there with its alias
   * (and `replicaKeyPolicies`), promote moves the live alias there too, retire disables the replicas.
   */
  replicaRegions?: string[];
  replicaKeyPolicies?: Record<string, string>;
  /** csr/issue: DNS names (default: the live certificate's hostnames). */
  dnsNames?: string[];
  /** import: the PEM chain (leaf first). */
  chainText?: string;
  /** import: the chain must lead to this CA. */
  caPem?: string;
  /** issue: the CA. */
  ca?: CertificateAuthority;
  days?: number;
  /** retire: seconds since promotion before the old certificate may go (default defaultDrainSeconds()). */
  drainSeconds?: number;
  /** retire before the drain period; import a certificate that drops names the live one serves. */
  force?: boolean;
  /** retire: also schedule the old key's deletion after this many days (7–30); default: disable only. */
  deleteKeyAfterDays?: number;
  /** promote: edges' admin URLs; each must report the staged certificate checked `ok`. */
  edgeAdminUrls?: string[];
  dryRun?: boolean;
  now?: Date;
}

export interface RotateDeps {
  kms: KMSClient;
  /** KMS in another region (with replicaRegions). */
  kmsIn?: (region: string) => KMSClient;
  store: CertificateStoreBackend;
  acmPca?: ACMPCAClient;
  keyService?: KeyServiceProbe;
  progress?: Progress;
  /** HTTP GET for edge metrics (tests); default global fetch with a 5 s timeout. */
  fetchText?: (url: string) => Promise<string>;
}

/** What rotation knows about a slot, read from KMS and the certificate store. */
export interface SlotState {
  slot: string;
  /** `<aliasPrefix><slot>`: the alias pointing at the live key generation. */
  liveAlias: string;
  liveAliasTarget?: string;
  /** When the live alias last moved (promotion time). */
  liveAliasUpdatedAt?: string;
  entries: Array<
    Pick<StoredCertificate, 'id' | 'keyName' | 'state' | 'hostnames'> & { notBefore: string; notAfter: string }
  >;
  /** A key generation created (new-key) but not yet imported. */
  pendingKey?: string;
  /** Older generations without an entry whose KMS key is still enabled (a retire that stopped half-way). */
  orphanKeys: string[];
  next: RotateStep | 'done';
  hint: string;
}

export interface StepResult {
  step: RotateStep | 'plan';
  slot: string;
  dryRun: boolean;
  /** What was done (or, with --dry-run, what would be done), in order. */
  actions: string[];
  /** Nothing to do: the step's work was already done. */
  alreadyDone: boolean;
  state: SlotState;
  csrPem?: string;
  chainPem?: string;
  imported?: ImportedCertificate;
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// Reading the state

interface Generation {
  name: string;
  n: number;
  alias: AliasListEntry;
}

const GENERATION_RE = (slot: string): RegExp => new RegExp(`^${slot.replace(/[-]/g, '\\-')}-(\\d{1,9})$`);

/** Every alias under `<aliasPrefix>` (all pages). */
async function listAliases(kms: KMSClient, aliasPrefix: string): Promise<AliasListEntry[]> {
  const out: AliasListEntry[] = [];
  let marker: string | undefined;
  do {
    let page;
    try {
      page = await kms.send(new ListAliasesCommand({ Limit: 100, Marker: marker }));
    } catch (e) {
      throw awsError(e, 'KMS ListAliases');
    }
    for (const a of page.Aliases ?? []) if (a.AliasName?.startsWith(aliasPrefix)) out.push(a);
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return out;
}

function generationOf(slot: string, keyName: string): number | undefined {
  const m = GENERATION_RE(slot).exec(keyName);
  return m ? Number(m[1]) : undefined;
}

interface Snapshot {
  state: SlotState;
  entries: StoredCertificate[];
  live: StoredCertificate[];
  staged: StoredCertificate[];
  retiring: StoredCertificate[];
  aliases: AliasListEntry[];
  generations: Generation[];
  defaultNewKey: string;
}

async function snapshot(opts: RotateOptions, deps: RotateDeps): Promise<Snapshot> {
  const { slot, aliasPrefix } = opts;
  let all: StoredCertificate[];
  try {
    all = await deps.store.list();
  } catch (e) {
    throw storeError(e, deps.store.location, 'read');
  }
  // Entries written before rotation existed have no slot: their id is their slot.
  const entries = all.filter((e) => e.slot === slot || (e.slot === undefined && e.id === slot));
  const live = entries.filter((e) => e.state === 'live');
  const staged = entries.filter((e) => e.state === 'staged');
  const retiring = entries.filter((e) => e.state === 'retiring');
  const aliases = await listAliases(deps.kms, aliasPrefix);
  const liveAliasName = keyAlias(aliasPrefix, slot);
  const liveAlias = aliases.find((a) => a.AliasName === liveAliasName);
  const generations: Generation[] = [];
  for (const a of aliases) {
    const name = a.AliasName!.slice(aliasPrefix.length);
    const n = generationOf(slot, name);
    if (n !== undefined) generations.push({ name, n, alias: a });
  }
  const entryKeys = new Set(entries.map((e) => e.keyName));
  const maxEntryGen = Math.max(0, ...entries.map((e) => generationOf(slot, e.keyName) ?? 1));
  const maxGen = Math.max(maxEntryGen, ...generations.map((g) => g.n));
  const targetOf = (name: string): string | undefined =>
    aliases.find((a) => a.AliasName === keyAlias(aliasPrefix, name))?.TargetKeyId;
  const liveKeyGen = Math.max(0, ...live.map((e) => generationOf(slot, e.keyName) ?? 1));
  // A generation with no entry: newer than every entry → pending (new-key ran, import did not);
  // older than the live one and not the live alias' target → an old key retire has not disabled yet.
  const withoutEntry = generations.filter(
    (g) => !entryKeys.has(g.name) && g.alias.TargetKeyId !== liveAlias?.TargetKeyId,
  );
  const explicit =
    opts.newKey !== undefined && !entryKeys.has(opts.newKey) && targetOf(opts.newKey) !== undefined
      ? opts.newKey
      : undefined;
  const pending = explicit ?? withoutEntry.filter((g) => g.n > maxEntryGen).sort((a, b) => b.n - a.n)[0]?.name;
  const orphanCandidates = withoutEntry.filter((g) => g.n < liveKeyGen && g.name !== pending);
  const orphanKeys: string[] = [];
  for (const g of orphanCandidates) {
    const info = await describeKeyByName(deps.kms, aliasPrefix, g.name);
    if (info?.enabled) orphanKeys.push(g.name);
  }
  const view = entries.map((e) => {
    const leaf = leafOf(e);
    return {
      id: e.id,
      keyName: e.keyName,
      state: e.state,
      hostnames: e.hostnames.length > 0 ? e.hostnames : certificateDnsNames(leaf),
      notBefore: new Date(leaf.validFrom).toISOString(),
      notAfter: new Date(leaf.validTo).toISOString(),
    };
  });
  const liveAliasUpdated = liveAlias?.LastUpdatedDate ?? liveAlias?.CreationDate;
  const state: SlotState = {
    slot,
    liveAlias: liveAliasName,
    ...(liveAlias?.TargetKeyId ? { liveAliasTarget: liveAlias.TargetKeyId } : {}),
    ...(liveAliasUpdated ? { liveAliasUpdatedAt: new Date(liveAliasUpdated).toISOString() } : {}),
    entries: view,
    ...(pending ? { pendingKey: pending } : {}),
    orphanKeys,
    next: 'done',
    hint: '',
  };
  const cmd = `keyless rotate ${slot}`;
  if (retiring.length > 0 || orphanKeys.length > 0) {
    state.next = 'retire';
    state.hint = `${cmd} retire (after the drain period) removes ${[...retiring.map((e) => e.id), ...orphanKeys].join(', ')} and disables the old key`;
  } else if (staged.length > 0) {
    state.next = 'promote';
    state.hint = `${cmd} promote serves ${staged.map((e) => e.keyName).join(', ')} and keeps the old certificate as a fallback`;
  } else if (pending) {
    state.next = 'import';
    state.hint = `${cmd} csr → get the certificate → ${cmd} import --cert FILE (or ${cmd} issue --dev-ca / --pca-arn ARN)`;
  } else {
    state.next = 'new-key';
    state.hint =
      live.length > 0
        ? `nothing in progress; ${cmd} new-key starts a rotation`
        : `slot ${slot} has no certificate yet; ${cmd} new-key starts its first generation`;
  }
  return { state, entries, live, staged, retiring, aliases, generations, defaultNewKey: `${slot}-${maxGen + 1}` };
}

function leafOf(e: StoredCertificate): crypto.X509Certificate {
  const first = firstPemCertificate(e.chainPem);
  if (!first) throw refused(`certificate store entry ${e.id} has no certificate`, 'Fix or remove the entry.');
  return new crypto.X509Certificate(first);
}

/** The KMS key spec of a certificate's public key, to make the next generation of the same kind. */
function keySpecOfLeaf(leaf: crypto.X509Certificate): string | undefined {
  const k = leaf.publicKey;
  if (k.asymmetricKeyType === 'rsa') {
    const bits = k.asymmetricKeyDetails?.modulusLength;
    return bits === 2048 || bits === 3072 || bits === 4096 ? `RSA_${bits}` : undefined;
  }
  if (k.asymmetricKeyType === 'ec') {
    const curve = k.asymmetricKeyDetails?.namedCurve;
    return curve === 'prime256v1' ? 'ECC_NIST_P256' : curve === 'secp384r1' ? 'ECC_NIST_P384' : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Steps

/** Runs or (dry run) records one action. */
class Actions {
  readonly done: string[] = [];
  constructor(
    private readonly dryRun: boolean,
    private readonly progress: Progress,
  ) {}

  async run(description: string, fn: () => Promise<unknown>): Promise<void> {
    if (this.dryRun) {
      this.done.push(`would ${description}`);
      return;
    }
    this.progress(description);
    await fn();
    this.done.push(description);
  }
}

function validateSlot(slot: string): void {
  if (!SLOT_PATTERN.test(slot))
    throw usageError(
      `slot ${JSON.stringify(slot)} is not valid`,
      'Use 1 to 64 of letters, digits, "_" and "-" (e.g. site).',
    );
}

/** The slot's state and the next step, changing nothing. */
export async function rotationPlan(opts: RotateOptions, deps: RotateDeps): Promise<StepResult> {
  validateSlot(opts.slot);
  const snap = await snapshot(opts, deps);
  return {
    step: 'plan',
    slot: opts.slot,
    dryRun: true,
    actions: [],
    alreadyDone: false,
    state: snap.state,
    warnings: [],
  };
}

export async function runRotationStep(step: RotateStep, opts: RotateOptions, deps: RotateDeps): Promise<StepResult> {
  validateSlot(opts.slot);
  if (opts.newKey !== undefined && !KMS_KEY_NAME_PATTERN.test(opts.newKey)) {
    throw usageError(
      `--new-key ${JSON.stringify(opts.newKey)} is not a key name`,
      'Use 1 to 64 of letters, digits, "_" and "-", e.g. site-2.',
    );
  }
  if (opts.newKey === opts.slot) {
    throw refused(
      `the new key cannot be named like the slot (${opts.slot})`,
      `${keyAlias(opts.aliasPrefix, opts.slot)} is the slot's live alias, which moves at every promotion; name key generations e.g. ${opts.slot}-2.`,
    );
  }
  const progress = deps.progress ?? silent;
  const snap = await snapshot(opts, deps);
  const actions = new Actions(opts.dryRun === true, progress);
  const result = (extra: Partial<StepResult> = {}): StepResult => ({
    step,
    slot: opts.slot,
    dryRun: opts.dryRun === true,
    actions: actions.done,
    alreadyDone: false,
    state: snap.state,
    warnings: [],
    ...extra,
  });
  const after = async (r: StepResult): Promise<StepResult> =>
    opts.dryRun ? r : { ...r, state: (await snapshot(opts, deps)).state };
  switch (step) {
    case 'new-key':
      return after(await newKeyStep(opts, deps, snap, actions, result));
    case 'csr':
      return csrStep(opts, deps, snap, result);
    case 'issue':
      return after(await issueStep(opts, deps, snap, actions, result));
    case 'import':
      return after(await importStep(opts, deps, snap, actions, result));
    case 'promote':
      return after(await promoteStep(opts, deps, snap, actions, result));
    case 'retire':
      return after(await retireStep(opts, deps, snap, actions, result));
  }
}

type Result = (extra?: Partial<StepResult>) => StepResult;

async function newKeyStep(
  opts: RotateOptions,
  deps: RotateDeps,
  snap: Snapshot,
  actions: Actions,
  result: Result,
): Promise<StepResult> {
  const cmd = `keyless rotate ${opts.slot}`;
  if (snap.staged.length > 0) {
    throw refused(
      `a rotation of ${opts.slot} is in progress: ${snap.staged.map((e) => e.keyName).join(', ')} is staged`,
      `Promote it (${cmd} promote) and retire the old one first, or remove the staged entry to start over.`,
    );
  }
  if (snap.retiring.length > 0) {
    throw refused(
      `the previous rotation of ${opts.slot} is not finished: ${snap.retiring.map((e) => e.keyName).join(', ')} is retiring`,
      `Finish it with ${cmd} retire (after the drain period).`,
    );
  }
  const name = snap.state.pendingKey ?? opts.newKey ?? snap.defaultNewKey;
  if (opts.newKey !== undefined && snap.state.pendingKey !== undefined && opts.newKey !== snap.state.pendingKey) {
    throw refused(
      `key ${snap.state.pendingKey} was already created for this rotation`,
      `Continue with it (${cmd} csr / import --new-key ${snap.state.pendingKey}), or disable it to start over.`,
    );
  }
  if (snap.entries.some((e) => e.keyName === name)) {
    throw refused(
      `key ${name} already has a certificate in slot ${opts.slot}`,
      'Key names name one key generation forever; pick a new one with --new-key.',
    );
  }
  const liveLeaf = snap.live[0] ? leafOf(snap.live[0]) : undefined;
  const keySpec = opts.keySpec ?? (liveLeaf ? keySpecOfLeaf(liveLeaf) : undefined) ?? 'ECC_NIST_P256';
  if (!(KMS_KEY_SPECS as readonly string[]).includes(keySpec)) {
    throw usageError(
      `the live certificate's key (${keySpec}) cannot be a KMS signing key spec`,
      `Pass --key-spec (one of ${KMS_KEY_SPECS.join(', ')}).`,
    );
  }
  const regions = opts.replicaRegions ?? [];
  const create = (): Promise<unknown> =>
    createKey(
      {
        name,
        custody: 'kms',
        keySpec,
        aliasPrefix: opts.aliasPrefix,
        deployment: opts.deployment,
        ifExists: 'reuse',
        description: `keyless-tls key ${name} (slot ${opts.slot})`,
        tags: { 'keyless:slot': opts.slot },
        keyPolicy: opts.keyPolicy,
        replicaRegions: regions,
        replicaKeyPolicies: opts.replicaKeyPolicies,
      },
      { kms: deps.kms, kmsIn: deps.kmsIn, progress: deps.progress },
    );
  const existing = await describeKeyByName(deps.kms, opts.aliasPrefix, name);
  if (existing) {
    if (!existing.enabled)
      throw refused(`key ${name} exists but is ${existing.keyState}`, 'Pick another name with --new-key.');
    if (regions.length === 0)
      return result({
        alreadyDone: true,
        actions: [`key ${name} already exists (${existing.keySpec}, ${existing.keyId}); nothing to do`],
      });
    // A new-key that stopped before every replica was made: finish them (createKey reuses the key).
    if (opts.dryRun)
      return result({ actions: [`would make sure ${name} has a replica with its alias in ${regions.join(', ')}`] });
    await create();
    return result({
      actions: [
        `key ${name} already exists (${existing.keySpec}, ${existing.keyId}); checked its replicas in ${regions.join(', ')}`,
      ],
    });
  }
  const where = regions.length > 0 ? `, multi-Region, replicated to ${regions.join(', ')}` : '';
  await actions.run(`create KMS key ${name} (${keySpec}, alias ${keyAlias(opts.aliasPrefix, name)}${where})`, create);
  return result();
}

/** The key generation a csr/issue/import step works on. */
function targetKey(opts: RotateOptions, snap: Snapshot, step: RotateStep): string {
  const cmd = `keyless rotate ${opts.slot}`;
  if (opts.newKey !== undefined) return opts.newKey;
  if (snap.state.pendingKey) return snap.state.pendingKey;
  if (snap.staged.length === 1) return snap.staged[0].keyName;
  if (snap.staged.length > 1)
    throw refused(
      `several certificates of ${opts.slot} are staged (${snap.staged.map((e) => e.keyName).join(', ')})`,
      `Say which with --new-key, or remove the extra ones.`,
    );
  throw refused(
    `no new key to ${step === 'csr' ? 'request a certificate for' : step === 'issue' ? 'issue a certificate for' : 'import a certificate for'} in slot ${opts.slot}`,
    `Create it first: ${cmd} new-key.`,
  );
}

function slotDnsNames(opts: RotateOptions, snap: Snapshot): string[] {
  if (opts.dnsNames && opts.dnsNames.length > 0) return opts.dnsNames;
  const live = snap.live[0];
  if (live) return live.hostnames.length > 0 ? live.hostnames : certificateDnsNames(leafOf(live));
  throw usageError(`slot ${opts.slot} has no live certificate to take the names from`, 'Pass --dns NAME (repeatable).');
}

async function csrStep(opts: RotateOptions, deps: RotateDeps, snap: Snapshot, result: Result): Promise<StepResult> {
  const keyName = targetKey(opts, snap, 'csr');
  const dnsNames = slotDnsNames(opts, snap);
  if (opts.dryRun)
    return result({
      actions: [`would sign a certificate request for ${dnsNames.join(', ')} with key ${keyName} in KMS`],
    });
  // A request can always be made again (it is signed anew), so this step is trivially re-runnable.
  const csr = await createCsr(
    { keyName, aliasPrefix: opts.aliasPrefix, dnsNames },
    { kms: deps.kms, progress: deps.progress },
  );
  return result({
    actions: [`signed a certificate request for ${csr.dnsNames.join(', ')} with key ${keyName} (${csr.keySpec})`],
    csrPem: csr.pem,
  });
}

async function issueStep(
  opts: RotateOptions,
  deps: RotateDeps,
  snap: Snapshot,
  actions: Actions,
  result: Result,
): Promise<StepResult> {
  if (!opts.ca)
    throw usageError(
      'issue needs a CA',
      "Pass --dev-ca (the local stack's dev CA) or --pca-arn ARN (AWS Private CA); or run csr, get the certificate elsewhere and import it.",
    );
  const keyName = targetKey(opts, snap, 'issue');
  const staged = snap.staged.find((e) => e.keyName === keyName);
  if (staged && !opts.force)
    return result({
      alreadyDone: true,
      actions: [`key ${keyName} already has a staged certificate; nothing to do (--force issues a new one)`],
    });
  const dnsNames = slotDnsNames(opts, snap);
  if (opts.dryRun) {
    const by = opts.ca.kind === 'dev' ? 'the dev CA' : `AWS Private CA ${opts.ca.arn}`;
    return result({
      actions: [
        `would sign a certificate request for ${dnsNames.join(', ')} with key ${keyName}`,
        `would have ${by} issue the certificate`,
        `would import it as staged in ${deps.store.location}`,
      ],
    });
  }
  const csr = await createCsr(
    { keyName, aliasPrefix: opts.aliasPrefix, dnsNames },
    { kms: deps.kms, progress: deps.progress },
  );
  actions.done.push(`signed a certificate request for ${csr.dnsNames.join(', ')} with key ${keyName}`);
  const issued = await issueCertificate(
    { csrPem: csr.pem, ca: opts.ca, days: opts.days },
    { kms: deps.kms, acmPca: deps.acmPca, progress: deps.progress },
  );
  actions.done.push(`issued certificate ${issued.serialNumber} (until ${issued.notAfter})`);
  const imported = await importOne(opts, deps, snap, keyName, issued.chainPem, actions);
  return result({ chainPem: issued.chainPem, imported, warnings: imported.warnings });
}

async function importOne(
  opts: RotateOptions,
  deps: RotateDeps,
  snap: Snapshot,
  keyName: string,
  chainText: string,
  actions: Actions,
): Promise<ImportedCertificate> {
  if (snap.entries.some((e) => e.keyName === keyName && e.state !== 'staged')) {
    throw refused(
      `key ${keyName}'s certificate is already ${snap.entries.find((e) => e.keyName === keyName)!.state}`,
      'Import belongs before promote; start a new rotation for a new certificate.',
    );
  }
  // Clients of a name the new certificate drops would fail once the old one is retired: refuse
  // before storing anything (unless --force). A chain that does not parse is importCertificate's to refuse.
  const liveNames = snap.live[0] ? snap.state.entries.find((e) => e.id === snap.live[0].id)!.hostnames : [];
  const firstBlock = firstPemCertificate(chainText);
  let newNames: string[] | undefined;
  try {
    newNames = firstBlock ? certificateDnsNames(new crypto.X509Certificate(firstBlock)) : undefined;
  } catch {
    newNames = undefined;
  }
  const dropped = newNames ? liveNames.filter((h) => !namesCover(newNames, h)) : [];
  if (dropped.length > 0 && opts.force !== true) {
    throw refused(
      `the new certificate does not cover ${dropped.join(', ')}, which the live one serves`,
      'Get a certificate for every name (`rotate ... csr` uses the live names by default), or pass --force to drop them on purpose.',
    );
  }
  let imported: ImportedCertificate | undefined;
  await actions.run(
    `check the certificate against key ${keyName} and store it as staged in ${deps.store.location}`,
    async () => {
      imported = await importCertificate(
        {
          keyName,
          slot: opts.slot,
          chainText,
          state: 'staged',
          caPem: opts.caPem,
          aliasPrefix: opts.aliasPrefix,
          now: opts.now,
        },
        { store: deps.store, kms: deps.kms, keyService: deps.keyService, progress: deps.progress },
      );
    },
  );
  return imported!;
}

async function importStep(
  opts: RotateOptions,
  deps: RotateDeps,
  snap: Snapshot,
  actions: Actions,
  result: Result,
): Promise<StepResult> {
  if (opts.chainText === undefined)
    throw usageError('import needs the certificate', 'Pass --cert FILE (PEM chain, leaf first).');
  const keyName = targetKey(opts, snap, 'import');
  if (opts.dryRun) {
    return result({
      actions: [
        `would check the certificate against key ${keyName} (public key, validity, chain) and store it as staged in ${deps.store.location}`,
      ],
    });
  }
  const imported = await importOne(opts, deps, snap, keyName, opts.chainText, actions);
  return result({ imported, warnings: imported.warnings });
}

/** The edges' staged checks for a key, read from their Prometheus /metrics. */
async function edgeReadiness(
  urls: readonly string[],
  keyName: string,
  fetchText: (url: string) => Promise<string>,
): Promise<string[]> {
  const problems: string[] = [];
  for (const base of urls) {
    const url = `${base.replace(/\/+$/, '')}/metrics`;
    let text: string;
    try {
      text = await fetchText(url);
    } catch (e) {
      problems.push(`${base}: cannot read ${url} (${(e as Error).message})`);
      continue;
    }
    const results = [
      ...text.matchAll(/^keyless_edge_staged_certificate_check\{key_name="([^"]*)",result="([a-z_]+)"\} 1$/gm),
    ]
      .filter((m) => m[1] === keyName)
      .map((m) => m[2]);
    if (results.length === 0) problems.push(`${base}: has not loaded the staged certificate of ${keyName} yet`);
    else if (results[0] !== 'ok') problems.push(`${base}: reports ${results[0]} for ${keyName}`);
  }
  return problems;
}

async function defaultFetchText(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

async function promoteStep(
  opts: RotateOptions,
  deps: RotateDeps,
  snap: Snapshot,
  actions: Actions,
  result: Result,
): Promise<StepResult> {
  const cmd = `keyless rotate ${opts.slot}`;
  const now = opts.now ?? new Date();
  if (snap.staged.length === 0) {
    // Re-run after a completed promote: the newest live entry is the alias target → nothing to do.
    const newest = [...snap.live].sort((a, b) => Date.parse(leafOf(b).validFrom) - Date.parse(leafOf(a).validFrom))[0];
    if (newest && snap.live.length === 1) {
      const info = await describeKeyByName(deps.kms, opts.aliasPrefix, newest.keyName);
      if (info && info.keyId === snap.state.liveAliasTarget) {
        // A promote that stopped between regions: finish the replicas' live aliases.
        if (!opts.dryRun) await moveReplicaAliases(opts, deps, snap.state.liveAlias, info, actions);
        if (actions.done.length > 0) return result();
        return result({
          alreadyDone: true,
          actions: [`${newest.keyName} is already live and ${snap.state.liveAlias} points at it; nothing to do`],
        });
      }
      if (info) {
        // A promote that stopped before moving the alias: finish it.
        if (opts.dryRun) actions.done.push(`would point ${snap.state.liveAlias} at ${info.name} (${info.keyId})`);
        else await moveAlias(deps.kms, snap.state.liveAlias, snap.state.liveAliasTarget, info, actions);
        if (!opts.dryRun) await moveReplicaAliases(opts, deps, snap.state.liveAlias, info, actions);
        return result();
      }
    }
    throw refused(
      `slot ${opts.slot} has no staged certificate to promote`,
      `Import one first: ${cmd} import --cert FILE (or ${cmd} issue).`,
    );
  }
  if (snap.staged.length > 1 && opts.newKey === undefined) {
    throw refused(
      `several certificates of ${opts.slot} are staged (${snap.staged.map((e) => e.keyName).join(', ')})`,
      'Say which with --new-key.',
    );
  }
  const next = opts.newKey !== undefined ? snap.staged.find((e) => e.keyName === opts.newKey) : snap.staged[0];
  if (!next)
    throw refused(
      `key ${opts.newKey} has no staged certificate in slot ${opts.slot}`,
      `Import it first: ${cmd} import --new-key ${opts.newKey} --cert FILE.`,
    );
  const leaf = leafOf(next);
  const validity = validityOf(leaf);
  if (isNotYetValid(validity, now))
    throw refused(
      `the certificate of ${next.keyName} is not valid before ${new Date(validity.notBefore).toISOString()}`,
      'Edges never serve a certificate before its notBefore: promote after that time.',
    );
  if (hasExpired(validity, now))
    throw refused(
      `the certificate of ${next.keyName} expired at ${new Date(validity.notAfter).toISOString()}`,
      `Issue a new one (${cmd} csr, then import).`,
    );
  // The key must be enabled and its public key the leaf's: KMS, then the key service, then every edge.
  const info = await describeKeyByName(deps.kms, opts.aliasPrefix, next.keyName);
  if (!info)
    throw refused(
      `there is no KMS key ${keyAlias(opts.aliasPrefix, next.keyName)}`,
      'The staged certificate names a key that does not exist; import a certificate for an existing key.',
    );
  if (!info.enabled)
    throw refused(`key ${next.keyName} is ${info.keyState}`, 'Enable it (KMS EnableKey) or rotate to another key.');
  const pub = await kmsPublicKey(deps.kms, info.keyId);
  const leafSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
  if (!pub.spki.equals(leafSpki)) {
    throw refused(
      `the staged certificate of ${next.keyName} does not match the key (certificate ${spkiFingerprint(leafSpki).slice(0, 16)}…, key ${spkiFingerprint(pub.spki).slice(0, 16)}…)`,
      `Import the certificate issued for this key (${cmd} import --cert FILE).`,
    );
  }
  const warnings: string[] = [];
  if (deps.keyService) {
    const ks = await deps.keyService.publicKey(next.keyName);
    if (!Buffer.from(ks.spki, 'base64').equals(leafSpki))
      throw refused(
        `${deps.keyService.name} holds a different public key for ${next.keyName}`,
        "Check that the key service's alias prefix is the one used here (--alias-prefix).",
      );
  } else {
    warnings.push('no key service was checked (pass --key-service FUNCTION to check that it serves the new key)');
  }
  if (opts.edgeAdminUrls && opts.edgeAdminUrls.length > 0) {
    const problems = await edgeReadiness(opts.edgeAdminUrls, next.keyName, deps.fetchText ?? defaultFetchText);
    if (problems.length > 0)
      throw refused(
        `not every edge is ready for ${next.keyName}: ${problems.join('; ')}`,
        'Wait for the next certificate refresh (or send the edges SIGHUP) and check their logs ("staged certificate checked").',
      );
  } else {
    warnings.push('no edge was checked (pass --edge-admin URL for each edge, or rely on the key service check)');
  }
  // Order matters for zero downtime: the new entry goes live first (edges then prefer it, newest
  // first), the old one becomes a fallback, and the live alias moves last.
  await actions.run(`mark ${next.id} live (edges serve it for new handshakes at their next refresh)`, () =>
    deps.store.put({ ...next, state: 'live', slot: opts.slot }),
  );
  for (const old of snap.live) {
    await actions.run(
      `mark ${old.id} retiring (served only to clients the new certificate does not fit, until retire)`,
      () => deps.store.put({ ...old, state: 'retiring', slot: opts.slot }),
    );
  }
  if (opts.dryRun)
    actions.done.push(
      `would point ${snap.state.liveAlias} at ${next.keyName} (${info.keyId})${(opts.replicaRegions ?? []).length > 0 ? ` here and in ${opts.replicaRegions!.join(', ')}` : ''}`,
    );
  else {
    await moveAlias(deps.kms, snap.state.liveAlias, snap.state.liveAliasTarget, info, actions);
    await moveReplicaAliases(opts, deps, snap.state.liveAlias, info, actions);
  }
  return result({ warnings });
}

/** Disables (and with deleteKeyAfterDays schedules the deletion of) an old generation's replica in one region. */
async function retireReplica(
  opts: RotateOptions,
  deps: RotateDeps,
  region: string,
  primary: KeyInfo,
  actions: Actions,
): Promise<void> {
  const kmsR = replicaKms(deps, region);
  const info = await describeKeyByName(kmsR, opts.aliasPrefix, primary.name);
  if (!info || info.keyId !== primary.keyId) return; // a single-Region generation, or never replicated here
  const call = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      throw awsError(e, `KMS ${what} ${info.keyId} in ${region}`);
    }
  };
  if (info.enabled)
    await actions.run(`disable KMS key ${primary.name} (${info.keyId}) in ${region}`, () =>
      call('DisableKey', () => kmsR.send(new DisableKeyCommand({ KeyId: info.keyId }))),
    );
  if (opts.deleteKeyAfterDays !== undefined && info.keyState !== 'PendingDeletion') {
    await actions.run(
      `schedule deletion of KMS key ${primary.name} (${info.keyId}) in ${region} in ${opts.deleteKeyAfterDays} days`,
      () =>
        call('ScheduleKeyDeletion', () =>
          kmsR.send(
            new ScheduleKeyDeletionCommand({ KeyId: info.keyId, PendingWindowInDays: opts.deleteKeyAfterDays }),
          ),
        ),
    );
  }
}

/** The live alias in each replica region follows the primary's (same multi-Region key id there). */
async function moveReplicaAliases(
  opts: RotateOptions,
  deps: RotateDeps,
  alias: string,
  to: KeyInfo,
  actions: Actions,
): Promise<void> {
  for (const region of opts.replicaRegions ?? []) {
    const kmsR = replicaKms(deps, region);
    const replica = await describeKeyByName(kmsR, opts.aliasPrefix, to.name);
    if (!replica || replica.keyId !== to.keyId) {
      throw refused(
        `${to.name} has no replica in ${region} (${keyAlias(opts.aliasPrefix, to.name)} there ${replica ? `names ${replica.keyId}` : 'does not exist'})`,
        `Replicate it first: keyless rotate ${opts.slot} new-key --replica-region ${region} (it finishes missing replicas of a multi-Region key).`,
      );
    }
    let current: string | undefined;
    try {
      current = (await kmsR.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.KeyId;
    } catch (e) {
      if ((e as Error).name !== 'NotFoundException') throw awsError(e, `KMS DescribeKey ${alias} in ${region}`);
    }
    if (current === to.keyId) continue;
    await actions.run(`point ${alias} at ${to.name} (${to.keyId}) in ${region}`, async () => {
      try {
        if (current === undefined) await kmsR.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: to.keyId }));
        else await kmsR.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: to.keyId }));
      } catch (e) {
        throw awsError(e, `KMS ${current === undefined ? 'CreateAlias' : 'UpdateAlias'} ${alias} in ${region}`);
      }
    });
  }
}

function replicaKms(deps: RotateDeps, region: string): KMSClient {
  if (!deps.kmsIn) throw new Error('rotate: replicaRegions needs deps.kmsIn');
  return deps.kmsIn(region);
}

async function moveAlias(
  kms: KMSClient,
  alias: string,
  current: string | undefined,
  to: KeyInfo,
  actions: Actions,
): Promise<void> {
  if (current === to.keyId) return;
  await actions.run(`point ${alias} at ${to.name} (${to.keyId})`, async () => {
    try {
      if (current === undefined) await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: to.keyId }));
      else await kms.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: to.keyId }));
    } catch (e) {
      throw awsError(e, `KMS ${current === undefined ? 'CreateAlias' : 'UpdateAlias'} ${alias}`);
    }
  });
}

async function retireStep(
  opts: RotateOptions,
  deps: RotateDeps,
  snap: Snapshot,
  actions: Actions,
  result: Result,
): Promise<StepResult> {
  const cmd = `keyless rotate ${opts.slot}`;
  const now = opts.now ?? new Date();
  if (snap.retiring.length === 0 && snap.state.orphanKeys.length === 0) {
    if (snap.staged.length > 0)
      throw refused(
        `slot ${opts.slot} has nothing to retire: ${snap.staged.map((e) => e.keyName).join(', ')} is staged, not promoted`,
        `Promote it first: ${cmd} promote.`,
      );
    return result({ alreadyDone: true, actions: ['nothing is retiring; nothing to do'] });
  }
  if (snap.staged.length > 0)
    throw refused(
      `slot ${opts.slot} has a staged certificate (${snap.staged.map((e) => e.keyName).join(', ')})`,
      `Finish one rotation at a time: promote it (${cmd} promote) or remove it.`,
    );
  // The live certificate must be served and its key behind the live alias: promote has finished.
  const live = snap.live[0];
  if (!live)
    throw refused(
      `slot ${opts.slot} has no live certificate; retiring the old one would leave nothing to serve`,
      `Promote the new certificate first: ${cmd} promote.`,
    );
  const liveInfo = await describeKeyByName(deps.kms, opts.aliasPrefix, live.keyName);
  if (!liveInfo || liveInfo.keyId !== snap.state.liveAliasTarget) {
    throw refused(
      `${snap.state.liveAlias} does not point at the live key ${live.keyName} yet`,
      `Finish the promotion first: ${cmd} promote.`,
    );
  }
  const drainSeconds = opts.drainSeconds ?? defaultDrainSeconds();
  const since = snap.state.liveAliasUpdatedAt ? Date.parse(snap.state.liveAliasUpdatedAt) : undefined;
  if (snap.retiring.length > 0 && since !== undefined) {
    const waited = Math.floor((now.getTime() - since) / 1000);
    if (waited < drainSeconds && opts.force !== true) {
      throw refused(
        `the drain period is not over: promoted ${waited} s ago, drain is ${drainSeconds} s`,
        `Run ${cmd} retire again in ${drainSeconds - waited} s (every edge must have re-read the store; --drain-seconds to change, --force to retire now).`,
      );
    }
  }
  const warnings: string[] = [];
  // Remove the entries first (edges stop serving them at their next refresh), then disable the keys:
  // a key is never disabled while an entry could still have edges sign with it for new handshakes.
  const oldKeys: string[] = [];
  for (const old of snap.retiring) {
    if (old.keyName === live.keyName)
      throw refused(
        `retiring entry ${old.id} uses the live key ${live.keyName}`,
        'Remove that entry by hand; it cannot be retired with its key.',
      );
    await actions.run(`remove ${old.id} from ${deps.store.location}`, () =>
      deps.store.remove(old.id).catch((e: unknown) => Promise.reject(storeError(e, deps.store.location, 'write'))),
    );
    oldKeys.push(old.keyName);
  }
  oldKeys.push(...snap.state.orphanKeys);
  for (const name of new Set(oldKeys)) {
    const info = await describeKeyByName(deps.kms, opts.aliasPrefix, name);
    if (!info) {
      warnings.push(
        `key ${name} is not a KMS key under ${opts.aliasPrefix} (a sealed or configured key?): remove it from the key service's KEYLESS_KEYS yourself`,
      );
      continue;
    }
    if (info.keyId === snap.state.liveAliasTarget) continue;
    // Replicas first: a primary with replicas cannot be deleted before them, and each region's key
    // service must stop signing with the old generation too.
    for (const region of opts.replicaRegions ?? []) await retireReplica(opts, deps, region, info, actions);
    if (info.enabled) {
      await actions.run(`disable KMS key ${name} (${info.keyId}); it can be re-enabled until deleted`, async () => {
        try {
          await deps.kms.send(new DisableKeyCommand({ KeyId: info.keyId }));
        } catch (e) {
          throw awsError(e, `KMS DisableKey ${info.keyId}`);
        }
      });
    }
    if (opts.deleteKeyAfterDays !== undefined && info.keyState !== 'PendingDeletion') {
      await actions.run(
        `schedule deletion of KMS key ${name} (${info.keyId}) in ${opts.deleteKeyAfterDays} days`,
        async () => {
          try {
            await deps.kms.send(
              new ScheduleKeyDeletionCommand({ KeyId: info.keyId, PendingWindowInDays: opts.deleteKeyAfterDays }),
            );
          } catch (e) {
            throw awsError(e, `KMS ScheduleKeyDeletion ${info.keyId}`);
          }
        },
      );
    }
  }
  return result({ warnings, alreadyDone: actions.done.length === 0 });
}

// ---------------------------------------------------------------------------------------------
// Command line

export const rotateSpec: CommandSpec = {
  name: 'rotate',
  summary: 'Rotate the certificate of a slot to a new key generation, without dropping a handshake.',
  description:
    "Steps, in order (each re-runnable; without STEP: the slot's state and the next step):\n" +
    '  new-key   create the next key generation <slot>-<n> in KMS\n' +
    "  csr       certificate request for the slot's names, signed by the new key (--out FILE)\n" +
    '  issue     csr + certificate from --dev-ca or --pca-arn + import, in one step\n' +
    '  import    check the certificate (--cert FILE) against the new key; store it staged (not served)\n' +
    '  promote   new certificate live, old one retiring (fallback only), live alias → new key\n' +
    '  retire    after --drain-seconds: remove the old certificate, disable the old KMS key\n' +
    'Refusals exit with code 2 and say what to do next. See docs/rotation.md.',
  positionals: [
    { name: 'slot', required: true, description: 'the logical certificate, e.g. site' },
    { name: 'step', required: false, description: `one of ${ROTATE_STEPS.join(', ')} (default: show the plan)` },
  ],
  options: [
    ...GLOBAL_OPTIONS,
    ...STORE_OPTIONS,
    ...KEY_SERVICE_OPTIONS,
    { name: 'dry-run', type: 'boolean', description: 'print what the step would do; change nothing' },
    {
      name: 'new-key',
      type: 'string',
      value: 'NAME',
      description: 'name of the new key generation (default <slot>-<n+1>)',
    },
    {
      name: 'key-spec',
      type: 'string',
      value: 'SPEC',
      description: "new-key: KMS key spec (default: the live certificate's)",
      choices: KMS_KEY_SPECS,
    },
    {
      name: 'key-policy',
      type: 'string',
      value: 'FILE',
      description:
        "new-key: key policy JSON for the new key, e.g. the slot's CDK key policy (default: KMS's default policy)",
    },
    ...REPLICA_OPTIONS,
    { name: 'dns', type: 'list', value: 'NAME', description: "csr/issue: DNS names (default: the live certificate's)" },
    {
      name: 'out',
      type: 'string',
      value: 'FILE',
      description: 'csr: write the request here (default: stdout); issue: also write the chain here',
    },
    { name: 'cert', type: 'string', value: 'FILE', description: 'import: the certificate chain (PEM, leaf first)' },
    {
      name: 'ca',
      type: 'string',
      value: 'FILE',
      description: 'import: also require the chain to lead to this CA certificate',
    },
    { name: 'dev-ca', type: 'boolean', description: "issue: with the local stack's dev CA" },
    { name: 'pca-arn', type: 'string', value: 'ARN', description: 'issue: with this AWS Private CA' },
    { name: 'days', type: 'string', value: 'N', description: 'issue: validity in days (default 90)' },
    {
      name: 'edge-admin',
      type: 'list',
      value: 'URL',
      description:
        'promote: edge admin URL whose /metrics must report the staged certificate ok (with --local: the local edge)',
    },
    {
      name: 'drain-seconds',
      type: 'string',
      value: 'N',
      description: `retire: seconds after promote before the old certificate may go (default 2 × refresh + handshake deadline = ${defaultDrainSeconds()})`,
    },
    {
      name: 'refresh-seconds',
      type: 'string',
      value: 'N',
      description: `the edges' certificateStore.refreshSeconds, for the default drain (default ${DEFAULT_CERT_REFRESH_SECONDS})`,
    },
    {
      name: 'force',
      type: 'boolean',
      description: 'retire before the drain period is over; import a certificate that drops names',
    },
    {
      name: 'delete-key-after-days',
      type: 'string',
      value: 'N',
      description: "retire: also schedule the old key's deletion (7–30 days); default: disable only",
    },
  ],
  examples: [
    'keyless rotate site --local                       # where is slot "site", what is next',
    'keyless rotate site new-key --local',
    'keyless rotate site issue --dev-ca --local        # csr + dev CA + import (staged)',
    'keyless rotate site promote --local',
    'keyless rotate site retire --local --drain-seconds 20',
    'keyless rotate site csr --deployment prod --out site-3.csr   # then get it signed, and:',
    'keyless rotate site import --deployment prod --cert site-3.chain.pem --key-service arn:aws:lambda:eu-west-1:111122223333:function:Keyless-Prod-KeyService-Fn:live',
  ],
};

function readFileArg(file: string, what: string, io: CliIo): string {
  try {
    return fs.readFileSync(path.resolve(io.cwd ?? process.cwd(), file), 'utf8');
  } catch (e) {
    throw usageError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      `Check the path given for the ${what}.`,
    );
  }
}

/** The local stack's edge admin URL, from its state file. */
function localEdgeAdmin(ctx: CliContext): string | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(path.join(ctx.devDir, 'stack.json'), 'utf8')) as { adminPort?: unknown };
    return typeof state.adminPort === 'number' ? `http://127.0.0.1:${state.adminPort}` : undefined;
  } catch {
    return undefined;
  }
}

export function optionsFromArgs(
  args: ParsedArgs,
  ctx: CliContext,
  io: CliIo,
): { step: RotateStep | undefined; opts: RotateOptions; out?: string } {
  const slot = args.positionals.slot as string;
  const stepArg = args.positionals.step as string | undefined;
  if (stepArg !== undefined && !(ROTATE_STEPS as readonly string[]).includes(stepArg)) {
    throw usageError(
      `unknown step ${JSON.stringify(stepArg)}`,
      `Steps are ${ROTATE_STEPS.join(', ')}; without one, rotate shows the plan.`,
    );
  }
  const step = stepArg as RotateStep | undefined;
  const devCa = opt.bool(args, 'dev-ca');
  const pcaArn = opt.str(args, 'pca-arn');
  let ca: CertificateAuthority | undefined;
  if (devCa && pcaArn)
    throw usageError(
      'give one CA: --dev-ca or --pca-arn ARN',
      'Use --dev-ca with the local stack, --pca-arn with AWS Private CA.',
    );
  if (devCa)
    ca = {
      kind: 'dev',
      caAlias: DEFAULT_CA_ALIAS,
      caCertPem: readFileArg(path.join(ctx.devDir, 'ca.pem'), 'dev CA certificate', io),
    };
  else if (pcaArn) ca = { kind: 'acm-pca', arn: pcaArn };
  const refresh = opt.int(args, 'refresh-seconds', DEFAULT_CERT_REFRESH_SECONDS, 1, 86_400);
  const deleteAfter =
    opt.str(args, 'delete-key-after-days') === undefined
      ? undefined
      : opt.int(args, 'delete-key-after-days', 30, 7, 30);
  const edgeAdmin = opt.list(args, 'edge-admin');
  const localAdmin = ctx.local ? localEdgeAdmin(ctx) : undefined;
  const certFile = opt.str(args, 'cert');
  const caFile = opt.str(args, 'ca');
  return {
    step,
    out: opt.str(args, 'out'),
    opts: {
      slot,
      aliasPrefix: ctx.aliasPrefix,
      newKey: opt.str(args, 'new-key'),
      keySpec: opt.str(args, 'key-spec'),
      keyPolicy: keyPolicyOption(args, io),
      deployment: ctx.deployment,
      ...replicaOptions(args, ctx, io),
      dnsNames: opt.list(args, 'dns'),
      chainText: certFile !== undefined ? readFileArg(certFile, 'certificate', io) : undefined,
      caPem: caFile !== undefined ? readFileArg(caFile, 'CA certificate', io) : undefined,
      ca,
      days: opt.int(args, 'days', 90, 1, 3650),
      drainSeconds: opt.int(args, 'drain-seconds', defaultDrainSeconds(refresh), 0, 30 * 86_400),
      force: opt.bool(args, 'force'),
      deleteKeyAfterDays: deleteAfter,
      edgeAdminUrls: edgeAdmin.length > 0 ? edgeAdmin : localAdmin ? [localAdmin] : undefined,
      dryRun: opt.bool(args, 'dry-run'),
    },
  };
}

export function formatStepResult(r: StepResult): string {
  const lines: string[] = [];
  if (r.step !== 'plan') {
    lines.push(`${r.dryRun ? 'plan for' : 'rotate'} ${r.slot} ${r.step}:`);
    for (const a of r.actions) lines.push(`  - ${a}`);
    if (r.actions.length === 0) lines.push('  - nothing to do');
    for (const w of r.warnings) lines.push(`  warning: ${w}`);
    lines.push('');
  }
  const s = r.state;
  lines.push(
    `slot ${s.slot}: live alias ${s.liveAlias}${s.liveAliasTarget ? ` → ${s.liveAliasTarget}${s.liveAliasUpdatedAt ? ` (since ${s.liveAliasUpdatedAt})` : ''}` : ' (not created yet)'}`,
  );
  for (const e of s.entries)
    lines.push(
      `  ${e.state.padEnd(9)} ${e.keyName.padEnd(20)} ${e.hostnames.join(',')}  valid ${e.notBefore.slice(0, 10)} … ${e.notAfter.slice(0, 10)}`,
    );
  if (s.pendingKey) lines.push(`  new key  ${s.pendingKey} (no certificate yet)`);
  for (const k of s.orphanKeys) lines.push(`  old key  ${k} (no certificate; still enabled)`);
  lines.push(`next: ${s.next === 'done' ? 'nothing' : s.hint}`);
  return lines.join('\n');
}

export const rotateCommand: Command = {
  spec: rotateSpec,
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const ctx = resolveContext(args, io);
    try {
      const { step, opts, out } = optionsFromArgs(args, ctx, io);
      const deps: RotateDeps = {
        kms: ctx.aws.kms,
        kmsIn: (r) => ctx.aws.kmsIn(r),
        store: ctx.store(),
        keyService: ctx.keyService(),
        progress: ctx.out.progress,
        ...(opts.ca?.kind === 'acm-pca' ? { acmPca: ctx.aws.acmPca } : {}),
      };
      const r = step === undefined ? await rotationPlan(opts, deps) : await runRotationStep(step, opts, deps);
      for (const w of r.warnings) ctx.out.warn(w);
      if (out && r.csrPem) fs.writeFileSync(path.resolve(io.cwd ?? process.cwd(), out), r.csrPem, { mode: 0o644 });
      if (out && r.chainPem) fs.writeFileSync(path.resolve(io.cwd ?? process.cwd(), out), r.chainPem, { mode: 0o644 });
      ctx.out.result(r, () => (r.csrPem && !out ? r.csrPem : formatStepResult(r)));
      return EXIT.ok;
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw failed(`rotate: ${(e as Error).message}`, undefined, e);
    } finally {
      ctx.close();
    }
  },
};
