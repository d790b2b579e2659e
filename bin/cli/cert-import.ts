/**
 * `keyless cert import`: checks a certificate chain against its key and stores it where the edge
 * fleet reads certificates (docs/key-service-protocol.md; the store module is edge-proxy/src/cert-store/).
 *
 * Refused (exit code 2), each with what to do:
 *  - the file carries a private key (whatever else it carries) or anything but CERTIFICATE blocks;
 *  - the leaf's public key is not the key's (KMS GetPublicKey, or the key service's `public_key`);
 *  - any certificate in the chain is expired or not yet valid;
 *  - the chain does not chain: each certificate must name and be signed by the next (RFC 5280 §6.1),
 *    every issuer must be a CA, and with `--ca` the last one must be, or be issued by, that CA;
 *  - the leaf is a CA, lacks serverAuth in its extended key usage, or does not cover `--hostname`;
 *  - the store change would break serving: a second `live` certificate for a slot (promotion is
 *    `keyless rotate`'s job), or demoting a serving certificate to `staged`.
 */
import * as crypto from 'node:crypto';
import { CreateAliasCommand, type KMSClient } from '@aws-sdk/client-kms';
import { type CertificateState, type StoredCertificate, SLOT_PATTERN } from '../../contract/certificate-store-entry';
import { ConfigError } from '../../contract/config-error';
import {
  canonicalDnsName,
  dnsNames,
  hasExpired,
  isNotYetValid,
  namesCover,
  pemCertificateBlocks,
  validityOf,
} from '../../contract/x509';
import type { CertificateStoreBackend } from '../../edge-proxy/src/cert-store';
import { describeAwsFailure } from '../../contract/aws-errors';
import { awsError, failed, refused, usageError } from './errors';
import type { KeyServiceProbe } from './key-service';
import { describeKeyByName, keyAlias, kmsPublicKey, spkiFingerprint } from './keys';
import { type Progress, silent } from './output';

const PEM_BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const ANY_EKU = '2.5.29.37.0';

export interface ChainCheckOptions {
  /** DER SubjectPublicKeyInfo of the key the certificate must belong to. */
  spki: Buffer;
  /** Name of that key, for messages. */
  keyName: string;
  /** Trust anchor(s) the chain must end at (PEM, one or more certificates). */
  caPem?: string;
  /** Names the leaf must cover (default: its own DNS subjectAltNames). */
  hostnames?: string[];
  now?: Date;
}

export interface CheckedChain {
  /** Normalised chain: the CERTIFICATE blocks, leaf first, one trailing newline each. */
  chainPem: string;
  certificates: crypto.X509Certificate[];
  leaf: crypto.X509Certificate;
  /** The names the edge will serve it for. */
  hostnames: string[];
  notBefore: Date;
  notAfter: Date;
  /** Whether the last certificate is a self-signed root. */
  endsAtRoot: boolean;
}

const iso = (d: Date): string => d.toISOString().replace('.000Z', 'Z');

/** The private-key check comes first and looks at everything, parsed or not. */
export function refusePrivateKey(text: string): void {
  if (/PRIVATE KEY-----/.test(text)) {
    throw refused(
      'the certificate file contains a private key',
      'Remove the PRIVATE KEY block (and rotate that key if it was ever a real one): keyless keys never leave KMS, and a certificate file must hold certificates only.',
    );
  }
}

/** The pure part of `cert import`: every check on the chain itself. Throws CliError (refused). */
export function checkCertificateChain(pemText: string, opts: ChainCheckOptions): CheckedChain {
  refusePrivateKey(pemText);
  const blocks = [...pemText.matchAll(PEM_BLOCK_RE)];
  const leftover = pemText.replace(PEM_BLOCK_RE, '').trim();
  const other = blocks.find((b) => b[1] !== 'CERTIFICATE');
  if (other || leftover.length > 0) {
    throw refused(
      `the certificate file holds ${other ? `a ${other[1]} block` : 'text outside PEM blocks'}`,
      'Give a PEM chain of CERTIFICATE blocks only, leaf first.',
    );
  }
  if (blocks.length === 0)
    throw refused(
      'the certificate file holds no certificate',
      'Give the PEM chain, leaf first (e.g. the output of `keyless cert issue`).',
    );
  const certificates = blocks.map((b, i) => {
    try {
      return new crypto.X509Certificate(b[0]);
    } catch (e) {
      throw refused(
        `certificate ${i + 1} in the file cannot be parsed (${(e as Error).message})`,
        'Give the PEM chain as your CA issued it.',
      );
    }
  });
  const leaf = certificates[0];
  const now = opts.now ?? new Date();

  const leafSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
  if (!leafSpki.equals(opts.spki)) {
    throw refused(
      `the certificate is not for key ${opts.keyName}: its public key (sha256 ${spkiFingerprint(leafSpki).slice(0, 16)}…) is not the key's (sha256 ${spkiFingerprint(opts.spki).slice(0, 16)}…)`,
      `Import it for the key whose CSR it was issued from, or issue a certificate from \`keyless csr --key ${opts.keyName}\`.`,
    );
  }
  certificates.forEach((c, i) => {
    const what = i === 0 ? 'the certificate' : `chain certificate ${i + 1} (${c.subject.replace(/\n/g, ', ')})`;
    const validity = validityOf(c);
    if (isNotYetValid(validity, now))
      throw refused(
        `${what} is not valid yet: valid from ${iso(new Date(validity.notBefore))}`,
        'Import it once it is valid (check the clocks of the CA and of this machine).',
      );
    if (hasExpired(validity, now))
      throw refused(
        `${what} expired on ${iso(new Date(validity.notAfter))}`,
        i === 0
          ? 'Issue a new certificate (`keyless cert issue`) and import that.'
          : 'Get the current chain from your CA.',
      );
  });
  if (leaf.ca)
    throw refused(
      'the first certificate is a CA certificate, not a server certificate',
      'Put the server (leaf) certificate first, then its issuers.',
    );
  const eku = leaf.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(SERVER_AUTH) && !eku.includes(ANY_EKU)) {
    throw refused(
      'the certificate is not for TLS servers (its extended key usage lacks serverAuth)',
      'Issue it with the serverAuth extended key usage (keyless cert issue does).',
    );
  }
  for (let i = 0; i + 1 < certificates.length; i++) {
    const child = certificates[i];
    const parent = certificates[i + 1];
    if (!parent.ca)
      throw refused(
        `chain certificate ${i + 2} (${parent.subject.replace(/\n/g, ', ')}) is not a CA certificate`,
        'Give the chain leaf first, then each issuer in order.',
      );
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw refused(
        `the chain is broken: certificate ${i + 2} did not issue certificate ${i + 1} (${child.issuer.replace(/\n/g, ', ')})`,
        'Give the chain leaf first, then each issuer in order, as the CA delivered it.',
      );
    }
  }
  const last = certificates[certificates.length - 1];
  const endsAtRoot = last.checkIssued(last) && last.verify(last.publicKey);
  if (opts.caPem !== undefined) {
    const anchors = pemCertificateBlocks(opts.caPem).map((p) => new crypto.X509Certificate(p));
    if (anchors.length === 0) throw usageError('--ca holds no certificate', 'Give the CA certificate in PEM.');
    const anchored = anchors.some((a) => a.raw.equals(last.raw) || (last.checkIssued(a) && last.verify(a.publicKey)));
    if (!anchored) {
      throw refused(
        `the chain does not lead to the given CA: it ends at ${last.subject.replace(/\n/g, ', ')}, issued by ${last.issuer.replace(/\n/g, ', ')}`,
        'Check --ca, or add the missing intermediate certificates to the chain.',
      );
    }
  }
  const sans = dnsNames(leaf);
  const hostnames = opts.hostnames && opts.hostnames.length > 0 ? opts.hostnames.map(canonicalDnsName) : sans;
  if (hostnames.length === 0)
    throw refused(
      'the certificate names no DNS name (no subjectAltName)',
      'Issue it with the host names as DNS subjectAltNames (keyless csr --dns ...).',
    );
  for (const h of hostnames) {
    // A wildcard hostname entry is served as given, so it must be literally in the SAN list; any other
    // name must be covered by the one rule the edge serves by (contract/x509.ts).
    const covered = h.startsWith('*.') ? sans.includes(h) : namesCover(sans, h);
    if (!covered)
      throw refused(
        `the certificate does not cover host name ${h} (it names ${sans.join(', ') || 'nothing'})`,
        'Drop that --hostname, or issue a certificate that names it.',
      );
  }
  return {
    chainPem: certificates.map((c) => `${c.toString().trim()}\n`).join(''),
    certificates,
    leaf,
    hostnames,
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    endsAtRoot,
  };
}

export type PublicKeySource = 'kms' | 'key-service';

/**
 * The public key of a key name: KMS (`<aliasPrefix><name>`) first; for names KMS does not hold as a
 * signing key (sealed keys) the key service's `public_key`, when a probe is given.
 */
export async function publicKeyOfKeyName(
  keyName: string,
  deps: { kms?: KMSClient; aliasPrefix?: string; keyService?: KeyServiceProbe },
): Promise<{ spki: Buffer; keySpec: string; source: PublicKeySource }> {
  if (deps.kms && deps.aliasPrefix) {
    const info = await describeKeyByName(deps.kms, deps.aliasPrefix, keyName);
    if (info) {
      if (!info.enabled)
        throw refused(
          `key ${keyName} is ${info.keyState}`,
          'A certificate for a disabled key can never be served; use an enabled key.',
        );
      const pub = await kmsPublicKey(deps.kms, info.keyId);
      return { spki: pub.spki, keySpec: pub.keySpec, source: 'kms' };
    }
  }
  if (deps.keyService) {
    const pub = await deps.keyService.publicKey(keyName);
    return { spki: Buffer.from(pub.spki, 'base64'), keySpec: pub.keySpec, source: 'key-service' };
  }
  throw refused(
    `there is no key named ${keyName}${deps.aliasPrefix ? ` (no alias ${deps.aliasPrefix}${keyName})` : ''}`,
    'Check the name (`keyless status`), --deployment / --alias-prefix; for a sealed key pass --key-service so its public key can be asked there.',
  );
}

export interface ImportCertificateOptions {
  keyName: string;
  /** The logical certificate (e.g. "site"); several key generations share a slot during rotation. */
  slot: string;
  /** PEM chain text as read from the file. */
  chainText: string;
  /** `staged` (default) or `live` (only when the slot has no other live certificate). */
  state?: Extract<CertificateState, 'staged' | 'live'>;
  hostnames?: string[];
  caPem?: string;
  aliasPrefix?: string;
  now?: Date;
}

export interface ImportedCertificate {
  id: string;
  slot: string;
  keyName: string;
  state: CertificateState;
  hostnames: string[];
  notBefore: string;
  notAfter: string;
  serialNumber: string;
  issuer: string;
  /** `live` imports of a KMS key: the slot's live alias (created when it did not exist). */
  liveAlias?: string;
  /** Whether an existing entry with this id was replaced. */
  replaced: boolean;
  publicKeySource: PublicKeySource;
  store: string;
  warnings: string[];
}

export async function importCertificate(
  opts: ImportCertificateOptions,
  deps: { store: CertificateStoreBackend; kms?: KMSClient; keyService?: KeyServiceProbe; progress?: Progress },
): Promise<ImportedCertificate> {
  const progress = deps.progress ?? silent;
  if (!SLOT_PATTERN.test(opts.slot))
    throw usageError(
      `slot ${JSON.stringify(opts.slot)} is not valid`,
      'Use 1 to 64 of letters, digits, "_" and "-" (e.g. --slot site).',
    );
  const state = opts.state ?? 'staged';
  // Refuse a private key before any network call.
  refusePrivateKey(opts.chainText);
  progress(`reading the public key of ${opts.keyName}`);
  const pub = await publicKeyOfKeyName(opts.keyName, {
    kms: deps.kms,
    aliasPrefix: opts.aliasPrefix,
    keyService: deps.keyService,
  });
  const checked = checkCertificateChain(opts.chainText, {
    spki: pub.spki,
    keyName: opts.keyName,
    caPem: opts.caPem,
    hostnames: opts.hostnames,
    now: opts.now,
  });
  const warnings: string[] = [];
  const daysLeft = Math.floor((checked.notAfter.getTime() - (opts.now ?? new Date()).getTime()) / 86_400_000);
  if (daysLeft < 14) warnings.push(`the certificate expires in ${daysLeft} days (${iso(checked.notAfter)})`);
  if (!checked.endsAtRoot && opts.caPem === undefined) {
    const last = checked.certificates[checked.certificates.length - 1];
    warnings.push(
      `the chain ends below a root (at a certificate issued by ${last.issuer.replace(/\n/g, ', ')}); clients must trust that issuer: pass --ca to check the chain against it`,
    );
  }

  progress(`checking the certificate store ${deps.store.location}`);
  let entries: StoredCertificate[];
  try {
    entries = await deps.store.list();
  } catch (e) {
    throw storeError(e, deps.store.location, 'read');
  }
  const id = opts.keyName;
  const existing = entries.find((e) => e.id === id);
  if (existing && existing.keyName !== opts.keyName) {
    throw refused(
      `the store entry ${id} belongs to key ${existing.keyName}`,
      'Entries are named after their key; remove the stray entry first.',
    );
  }
  if (existing?.slot !== undefined && existing.slot !== opts.slot) {
    throw refused(
      `key ${opts.keyName}'s certificate is in slot ${existing.slot}, not ${opts.slot}`,
      `Import it with --slot ${existing.slot}; a key generation belongs to one slot.`,
    );
  }
  if (existing && existing.state !== 'staged' && state === 'staged') {
    throw refused(
      `key ${opts.keyName}'s certificate is ${existing.state}; importing it as staged would stop serving it`,
      existing.state === 'live'
        ? 'To renew the certificate of a live key in place, pass --live.'
        : 'Finish the rotation (`keyless rotate`) before re-importing it.',
    );
  }
  if (state === 'live') {
    const otherLive = entries.filter((e) => e.id !== id && e.state === 'live' && (e.slot ?? e.id) === opts.slot);
    if (otherLive.length > 0) {
      throw refused(
        `slot ${opts.slot} already has a live certificate (${otherLive.map((e) => e.id).join(', ')})`,
        `Import as staged (without --live) and promote it with \`keyless rotate ${opts.slot}\`.`,
      );
    }
  }
  progress(`storing ${state} certificate ${id} in ${deps.store.location}`);
  try {
    await deps.store.put({
      id,
      keyName: opts.keyName,
      slot: opts.slot,
      state,
      hostnames: checked.hostnames,
      chainPem: checked.chainPem,
    });
  } catch (e) {
    throw storeError(e, deps.store.location, 'write');
  }
  let liveAlias: string | undefined;
  if (state === 'live' && pub.source === 'kms' && deps.kms && opts.aliasPrefix) {
    liveAlias = await ensureLiveAlias(deps.kms, opts.aliasPrefix, opts.slot, opts.keyName, warnings, progress);
  }
  return {
    id,
    slot: opts.slot,
    keyName: opts.keyName,
    state,
    hostnames: checked.hostnames,
    notBefore: checked.notBefore.toISOString(),
    notAfter: checked.notAfter.toISOString(),
    serialNumber: checked.leaf.serialNumber,
    issuer: checked.leaf.issuer.replace(/\n/g, ', '),
    replaced: existing !== undefined,
    publicKeySource: pub.source,
    store: deps.store.location,
    ...(liveAlias ? { liveAlias } : {}),
    warnings,
  };
}

/**
 * The first live certificate of a slot also gets the slot's live alias `<aliasPrefix><slot>` (what
 * `keyless status` shows and `keyless rotate` promote swaps). An alias that already exists is left
 * alone — moving it is promotion's job — with a warning when it points at another key.
 */
async function ensureLiveAlias(
  kms: KMSClient,
  aliasPrefix: string,
  slot: string,
  keyName: string,
  warnings: string[],
  progress: Progress,
): Promise<string> {
  const alias = keyAlias(aliasPrefix, slot);
  const [current, key] = await Promise.all([
    describeKeyByName(kms, aliasPrefix, slot),
    describeKeyByName(kms, aliasPrefix, keyName),
  ]);
  if (!key) return alias;
  if (!current) {
    progress(`creating the live alias ${alias} → ${keyName}`);
    try {
      await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.keyId }));
    } catch (e) {
      if ((e as Error).name !== 'AlreadyExistsException') throw awsError(e, `KMS CreateAlias ${alias}`);
    }
  } else if (current.keyId !== key.keyId) {
    warnings.push(
      `the live alias ${alias} points at key ${current.keyId}, not at ${keyName}'s; \`keyless rotate ${slot}\` moves it when it promotes`,
    );
  }
  return alias;
}

/** Store failures: a ConfigError is an invalid entry (refused); anything else failed the operation. */
export function storeError(e: unknown, location: string, verb: 'read' | 'write'): Error {
  if (e instanceof ConfigError)
    return refused(`certificate store ${location}: ${e.message}`, 'Fix or remove the entry it names.');
  // The SSM backend wraps SDK errors; judge the SDK's own error (network → 69, access denied → 1).
  const cause = (e as { cause?: unknown }).cause ?? e;
  if (typeof cause === 'object' && cause !== null && '$metadata' in cause)
    return awsError(cause, `${verb === 'read' ? 'reading' : 'writing'} the certificate store ${location}`);
  if (describeAwsFailure(cause).unreachable)
    return awsError(cause, `${verb === 'read' ? 'reading' : 'writing'} the certificate store ${location}`);
  return failed(`cannot ${verb} the certificate store ${location}: ${(e as Error).message}`, undefined, e);
}
