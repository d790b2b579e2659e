/**
 * The scanners operators point at a TLS endpoint — testssl.sh and sslscan (Debian packages, flags
 * in /work/shared/PEERS.md) — against the whole local stack: `kms` custody (every key in KMS) and
 * `sealed` custody (the RSA key sealed, which adds TLS 1.2 RSA key exchange). Asserted: only
 * TLS 1.2 and 1.3; only AEAD suites, all with forward secrecy for `kms` (sealed adds RSA-kx
 * AES-GCM and nothing else); no vulnerability finding above OK/INFO; certificate chain complete.
 * A missing scanner skips its tests with a printed reason (.ci/run installs both).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startStackProcess, StackProcess } from '../helpers/dev-stack-process';
import { havePeer, httpGet, runPeer } from '../helpers/peers';

interface TestsslFinding {
  id: string;
  severity: string;
  finding: string;
}

let kms: StackProcess;
let sealed: StackProcess;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-scanners-'));
const haveTestssl = havePeer('testssl', 'testssl.sh scanner tests are skipped');
const haveSslscan = havePeer('sslscan', 'sslscan scanner tests are skipped');
/** Scans start as soon as the stacks are up and run side by side (testssl takes ~1.5–2 min). */
let testsslKms: Promise<TestsslFinding[]>;
let testsslSealed: Promise<TestsslFinding[]>;

/** testssl.sh with the targeted checks of PEERS.md; the dev CA added so chain of trust is judged. */
async function testssl(stack: StackProcess, label: string, checks: string[]): Promise<TestsslFinding[]> {
  const json = path.join(work, `testssl-${label}.json`);
  const r = await runPeer(
    'testssl',
    [
      '--quiet',
      '--color',
      '0',
      '--warnings',
      'batch',
      ...checks,
      '--add-ca',
      stack.state.caPath,
      '--jsonfile',
      json,
      `127.0.0.1:${stack.state.edgePort}`,
    ],
    { timeoutMs: 480_000 },
  );
  if (!fs.existsSync(json))
    throw new Error(`testssl wrote no JSON (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return JSON.parse(fs.readFileSync(json, 'utf8')) as TestsslFinding[];
}

/**
 * testssl.sh reports a check whose own connection failed as "check failed because of connect
 * problem": that is no verdict about the server, and on a loaded two-core machine (two scans and two
 * stacks side by side) one of testssl's many OpenSSL connections sometimes misses its own deadline.
 * Those checks are run once more, alone, and their second findings replace the first; a check that
 * fails to connect twice stays in the report and fails the test.
 */
async function testsslRetryingConnectProblems(
  stack: StackProcess,
  label: string,
  checks: string[],
): Promise<TestsslFinding[]> {
  const first = await testssl(stack, label, checks);
  const broken = first.filter((x) => /connect problem/.test(x.finding));
  if (broken.length === 0) return first;
  console.log(
    `[testssl] ${label}: ${broken.map((x) => x.id).join(', ')} failed to connect; running ${checks.join(' ')} once more`,
  );
  const again = await testssl(stack, `${label}-again`, checks);
  const ids = new Set(broken.map((x) => x.id));
  const merged = [...first.filter((x) => !ids.has(x.id)), ...again.filter((x) => ids.has(x.id))];
  return Promise.all(
    merged.map((x) =>
      x.id === 'sessionresumption_ticket' && /connect problem/.test(x.finding) ? ticketResumptionProbed(stack, x) : x,
    ),
  );
}

/**
 * testssl's ticket-resumption check is two OpenSSL connections in a row; when both of its attempts
 * could not connect, the property it checks is probed the same way directly (a session saved with
 * -sess_out, offered with -sess_in, for TLS 1.3 and TLS 1.2) and the finding reflects that probe.
 */
async function ticketResumptionProbed(stack: StackProcess, finding: TestsslFinding): Promise<TestsslFinding> {
  const outcomes: string[] = [];
  for (const version of ['-tls1_3', '-tls1_2']) {
    const sess = path.join(work, `probe${version}.sess`);
    const args = [
      's_client',
      '-connect',
      `127.0.0.1:${stack.state.edgePort}`,
      '-servername',
      'localhost',
      '-CAfile',
      stack.state.caPath,
      version,
      '-ign_eof',
    ];
    await runPeer('openssl', [...args, '-sess_out', sess], { input: httpGet('/api/tls'), timeoutMs: 60_000 });
    const b = await runPeer('openssl', [...args, '-sess_in', sess], { input: httpGet('/api/tls'), timeoutMs: 60_000 });
    outcomes.push(/Reused, TLSv1\.[23]/.test(b.stdout) ? `${version} reused` : `${version} NOT reused`);
  }
  const ok = outcomes.every((o) => o.endsWith(' reused'));
  console.log(
    `[testssl] ${finding.id}: testssl could not connect twice; probed with openssl -sess_out/-sess_in: ${outcomes.join(', ')}`,
  );
  return ok
    ? { ...finding, severity: 'OK', finding: `tickets resume (probed directly: ${outcomes.join(', ')})` }
    : finding;
}

beforeAll(async () => {
  [kms, sealed] = await Promise.all([startStackProcess(), startStackProcess({ KEYLESS_DEV_CUSTODY: 'sealed' })]);
  if (haveTestssl) {
    testsslKms = testsslRetryingConnectProblems(kms, 'kms', [
      '--protocols',
      '--std',
      '--fs',
      '--server-defaults',
      '--vulnerable',
    ]);
    testsslSealed = testsslRetryingConnectProblems(sealed, 'sealed', ['--protocols', '--std', '--fs', '--vulnerable']);
    // Keep a rejection from surfacing as unhandled before a test awaits it.
    testsslKms.catch(() => undefined);
    testsslSealed.catch(() => undefined);
  }
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([testsslKms, testsslSealed]);
  await Promise.all([kms?.stop(), sealed?.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
}, 600_000);

const byId = (findings: TestsslFinding[], id: string): TestsslFinding => {
  const f = findings.find((x) => x.id === id);
  if (!f) throw new Error(`testssl reported no "${id}" (ids: ${findings.map((x) => x.id).join(', ')})`);
  return f;
};

/** The vulnerability checks of `--vulnerable` (testssl.sh 3.0): each must be OK or INFO. */
const VULNERABILITIES = [
  'heartbleed',
  'CCS',
  'ticketbleed',
  'ROBOT',
  'secure_renego',
  'secure_client_renego',
  'CRIME_TLS',
  'BREACH',
  'POODLE_SSL',
  'fallback_SCSV',
  'SWEET32',
  'FREAK',
  'DROWN',
  'LOGJAM',
  'BEAST',
  'LUCKY13',
  'RC4',
];

/**
 * Findings above INFO that are about the development PKI, not about the TLS endpoint, and why:
 * a dev CA publishes no CRL or OCSP responder, and `localhost` has no DNS CAA record. testssl's
 * missing GOST engine is about the scanner's own OpenSSL.
 */
const PKI_ONLY = [/^cert_revocation\b/, /^DNS_CAArecord\b/, /^engine_problem$/];

function aboveInfo(findings: TestsslFinding[]): TestsslFinding[] {
  return findings.filter((f) => !['OK', 'INFO', 'DEBUG'].includes(f.severity) && !PKI_ONLY.some((re) => re.test(f.id)));
}

describe('testssl.sh', () => {
  const maybe = haveTestssl ? it : it.skip;

  maybe(
    'kms custody: TLS 1.2 and 1.3 only, AEAD with forward secrecy only, no vulnerability, chain complete and trusted',
    async () => {
      const f = await testsslKms;
      expect(['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1'].map((id) => [id, byId(f, id).finding])).toEqual(
        ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1'].map((id) => [id, 'not offered']),
      );
      expect(byId(f, 'TLS1_2').finding).toBe('offered');
      expect(byId(f, 'TLS1_3').finding).toMatch(/^offered/);
      for (const id of [
        'cipherlist_NULL',
        'cipherlist_aNULL',
        'cipherlist_EXPORT',
        'cipherlist_LOW',
        'cipherlist_3DES_IDEA',
        'cipherlist_AVERAGE',
      ])
        expect([id, byId(f, id).finding]).toEqual([id, 'not offered']);
      expect(byId(f, 'cipherlist_STRONG').finding).toBe('offered'); // AEAD
      expect(byId(f, 'PFS').finding).toBe('offered');
      // Every suite with forward secrecy: TLS 1.3 suites and ECDHE ones, nine in all.
      const pfs = byId(f, 'PFS_ciphers').finding.split(/\s+/).sort();
      expect(pfs).toEqual([
        'ECDHE-ECDSA-AES128-GCM-SHA256',
        'ECDHE-ECDSA-AES256-GCM-SHA384',
        'ECDHE-ECDSA-CHACHA20-POLY1305',
        'ECDHE-RSA-AES128-GCM-SHA256',
        'ECDHE-RSA-AES256-GCM-SHA384',
        'ECDHE-RSA-CHACHA20-POLY1305',
        'TLS_AES_128_GCM_SHA256',
        'TLS_AES_256_GCM_SHA384',
        'TLS_CHACHA20_POLY1305_SHA256',
      ]);
      for (const id of VULNERABILITIES)
        expect([id, byId(f, id).severity]).toEqual([id, expect.stringMatching(/^(OK|INFO)$/)]);
      expect(byId(f, 'ROBOT').finding).toMatch(/not vulnerable/);
      // BREACH applies only to HTTP compression; neither the edge nor the demo origin compresses.
      expect(byId(f, 'BREACH').finding).toMatch(/no HTTP compression/);
      // Both certificates (RSA and ECDSA): chain of trust passes against the dev CA alone, in order.
      const chains = f.filter((x) => x.id.startsWith('cert_chain_of_trust'));
      expect(chains.length).toBe(2);
      for (const c of chains) expect(c).toMatchObject({ severity: 'OK', finding: 'passed.' });
      for (const c of f.filter((x) => x.id.startsWith('certs_list_ordering_problem'))) expect(c.finding).toBe('no');
      expect(aboveInfo(f)).toEqual([]);
    },
    600_000,
  );

  maybe(
    'sealed custody: RSA key exchange adds AES-GCM suites only, and ROBOT finds no oracle',
    async () => {
      const f = await testsslSealed;
      expect(byId(f, 'TLS1_2').finding).toBe('offered');
      expect(byId(f, 'TLS1_1').finding).toBe('not offered');
      for (const id of [
        'cipherlist_NULL',
        'cipherlist_aNULL',
        'cipherlist_EXPORT',
        'cipherlist_LOW',
        'cipherlist_3DES_IDEA',
        'cipherlist_AVERAGE',
      ])
        expect([id, byId(f, id).finding]).toEqual([id, 'not offered']);
      // ROBOT (the Bleichenbacher oracle test) now has RSA key transport to probe, and finds nothing.
      expect(byId(f, 'ROBOT')).toMatchObject({ severity: 'OK', finding: expect.stringMatching(/not vulnerable/) });
      expect(byId(f, 'ROBOT').finding).not.toMatch(/no RSA key transport/);
      for (const id of VULNERABILITIES)
        expect([id, byId(f, id).severity]).toEqual([id, expect.stringMatching(/^(OK|INFO)$/)]);
      expect(aboveInfo(f)).toEqual([]);
    },
    600_000,
  );
});

interface SslscanView {
  protocols: Record<string, boolean>;
  ciphers: { version: string; name: string; id: string }[];
  renegotiation: { supported: boolean; secure: boolean };
  heartbleed: boolean[];
  /** Key exchange groups by version, e.g. "TLSv1.3 x25519". */
  groups: string[];
  text: string;
}

async function sslscan(stack: StackProcess, extra: string[] = []): Promise<SslscanView> {
  const target = `127.0.0.1:${stack.state.edgePort}`;
  const [xml, text] = await Promise.all([
    runPeer('sslscan', ['--no-colour', ...extra, '--xml=-', target], { timeoutMs: 150_000 }),
    runPeer('sslscan', ['--no-colour', ...extra, target], { timeoutMs: 150_000 }),
  ]);
  const attrs = (tag: string): Record<string, string>[] =>
    [...xml.stdout.matchAll(new RegExp(`<${tag} ([^>]*)/>`, 'g'))].map((m) =>
      Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((a) => [a[1], a[2]])),
    );
  const protocols: Record<string, boolean> = {};
  for (const p of attrs('protocol')) protocols[`${p.type === 'ssl' ? 'SSLv' : 'TLSv'}${p.version}`] = p.enabled === '1';
  const reneg = attrs('renegotiation')[0] ?? {};
  return {
    protocols,
    ciphers: attrs('cipher').map((c) => ({ version: c.sslversion, name: c.cipher, id: c.id.toLowerCase() })),
    renegotiation: { supported: reneg.supported === '1', secure: reneg.secure === '1' },
    heartbleed: attrs('heartbleed').map((h) => h.vulnerable === '1'),
    groups: attrs('group')
      .map((g) => `${g.sslversion} ${g.name.split(' ')[0]}`)
      .sort(),
    text: text.stdout,
  };
}

/** TLS 1.2 suites with ECDHE and an AEAD (what `kms` custody may offer). */
const ECDHE_AEAD = /^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/;

describe('sslscan', () => {
  const maybe = haveSslscan ? it : it.skip;

  maybe(
    'kms custody: TLS 1.2 and 1.3 only, every suite AEAD with forward secrecy, no renegotiation, no Heartbleed, FALLBACK_SCSV',
    async () => {
      const v = await sslscan(kms);
      expect(v.protocols).toEqual({
        SSLv2: false,
        SSLv3: false,
        'TLSv1.0': false,
        'TLSv1.1': false,
        'TLSv1.2': true,
        'TLSv1.3': true,
      });
      const tls12 = v.ciphers.filter((c) => c.version === 'TLSv1.2').map((c) => c.name);
      expect(tls12.length).toBe(6);
      for (const name of tls12) expect(name).toMatch(ECDHE_AEAD);
      expect(
        v.ciphers
          .filter((c) => c.version === 'TLSv1.3')
          .map((c) => c.name)
          .sort(),
      ).toEqual(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);
      expect(v.ciphers.every((c) => c.version === 'TLSv1.2' || c.version === 'TLSv1.3')).toBe(true);
      expect(v.renegotiation.supported).toBe(false);
      expect(v.heartbleed).toEqual([false, false]);
      expect(v.text).toContain('Server supports TLS Fallback SCSV');
      // docs/tls-engine.md: X25519, P-256, P-384 — nothing weaker, no finite-field groups.
      expect(v.groups).toEqual([
        'TLSv1.2 secp256r1',
        'TLSv1.2 secp384r1',
        'TLSv1.2 x25519',
        'TLSv1.3 secp256r1',
        'TLSv1.3 secp384r1',
        'TLSv1.3 x25519',
      ]);
    },
    180_000,
  );

  maybe(
    'sealed custody: the same, plus TLS_RSA_WITH_AES_128/256_GCM (RSA key exchange) and nothing else',
    async () => {
      // --no-groups: sslscan probes each group with a TLS 1.2 hello that also offers RSA key exchange;
      // with a sealed key that hello legitimately succeeds without any group, and sslscan then waits
      // ~5 s per group for a ServerKeyExchange that RSA key exchange never sends (~100 s in all). The
      // groups are the same as for kms custody, asserted above.
      const v = await sslscan(sealed, ['--no-groups']);
      expect(v.protocols).toEqual({
        SSLv2: false,
        SSLv3: false,
        'TLSv1.0': false,
        'TLSv1.1': false,
        'TLSv1.2': true,
        'TLSv1.3': true,
      });
      const tls12 = v.ciphers.filter((c) => c.version === 'TLSv1.2').map((c) => c.name);
      expect(tls12.filter((n) => !ECDHE_AEAD.test(n)).sort()).toEqual(['AES128-GCM-SHA256', 'AES256-GCM-SHA384']);
      expect(tls12.filter((n) => ECDHE_AEAD.test(n)).length).toBe(6);
      expect(v.renegotiation.supported).toBe(false);
      expect(v.heartbleed).toEqual([false, false]);
    },
    180_000,
  );
});
