/**
 * Headless Chromium (BoringSSL) as a TLS peer: loads one URL with --dump-dom and returns the page.
 * Trust comes from --ignore-certificate-errors-spki-list with the leaf's SPKI hash (PEERS.md), so no
 * NSS database is needed; protocol and suites are forced with --ssl-version-min/max and
 * --cipher-suite-blacklist. Each run gets a fresh, throwaway profile folder.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { havePeer, PeerResult, runPeer } from './peers';

export const CHROMIUM = 'chromium';

/** Every TLS 1.2 suite id Chromium offers (hex), for building --cipher-suite-blacklist. */
export const CHROMIUM_TLS12_SUITES = [
  '0xc02b',
  '0xc02f',
  '0xc02c',
  '0xc030',
  '0xcca9',
  '0xcca8',
  '0xc013',
  '0xc014',
  '0x009c',
  '0x009d',
  '0x002f',
  '0x0035',
  '0xc009',
  '0xc00a',
];

/** --cipher-suite-blacklist value that leaves only `keep` (TLS 1.2 suites; TLS 1.3 ignores it). */
export function blacklistAllBut(keep: string[]): string {
  return CHROMIUM_TLS12_SUITES.filter((s) => !keep.includes(s)).join(',');
}

export function haveChromium(): boolean {
  return havePeer(CHROMIUM, 'Chromium headless interop tests are skipped');
}

/** Base64 SHA-256 of a certificate's SubjectPublicKeyInfo: what --ignore-certificate-errors-spki-list takes. */
export function spkiHash(certPem: string): string {
  const spki = new crypto.X509Certificate(certPem).publicKey.export({ format: 'der', type: 'spki' });
  return crypto.createHash('sha256').update(spki).digest('base64');
}

export function chromiumVersion(): Promise<string> {
  return runPeer(CHROMIUM, ['--version'], { timeoutMs: 30_000 }).then((r) => r.stdout.trim().split('\n').pop() ?? '');
}

/**
 * Loads `url` headless and returns the DOM (stdout). `trustSpki` lists leaf SPKI hashes to accept;
 * `flags` adds e.g. ['--ssl-version-max=tls1.2', '--cipher-suite-blacklist=…'].
 */
export async function chromiumDumpDom(
  url: string,
  opts: { trustSpki?: string[]; flags?: string[]; timeoutMs?: number } = {},
): Promise<PeerResult> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-chromium-'));
  try {
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
      '--disable-features=Translate,MediaRouter,OptimizationHints',
      `--user-data-dir=${profile}`,
      ...(opts.trustSpki?.length ? [`--ignore-certificate-errors-spki-list=${opts.trustSpki.join(',')}`] : []),
      ...(opts.flags ?? []),
      '--dump-dom',
      url,
    ];
    // Chromium starts slowly on a loaded 2-core machine; D-Bus noise on stderr is harmless.
    return await runPeer(CHROMIUM, args, {
      timeoutMs: opts.timeoutMs ?? 60_000,
      env: { ...process.env, HOME: profile },
    });
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
