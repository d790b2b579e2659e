/**
 * The interop matrix: every peer (OpenSSL s_client, curl, Node, Python, GnuTLS, Go, headless
 * Chromium) × protocol (TLS 1.3, TLS 1.2 ECDHE, TLS 1.2 RSA key exchange) × key type (RSA in KMS,
 * ECDSA in KMS, RSA sealed), each a real handshake plus an HTTP request through the whole local
 * stack, asserted from the origin's view of what the edge negotiated (in TLS 1.3, the post-quantum
 * hybrid X25519MLKEM768 for the peers that offer it by default). Cells impossible by design
 * (RSA key exchange without a sealed RSA key) are asserted to be refused with handshake_failure.
 * Passing cells are recorded to a JSON file under the temp folder; when all 63 passed, afterAll
 * regenerates docs/interop.md (test/interop/matrix-report.ts). A missing peer skips its cells with a
 * printed reason, and then the document is left as it is.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SecureVersion } from 'node:tls';
import { REPO_ROOT, startStackProcess, StackProcess } from '../helpers/dev-stack-process';
import { havePeer, httpGet, httpJsonBody, PeerResult, pythonGetApiTls, runPeer } from '../helpers/peers';
import { buildGoProbe } from '../helpers/go-probe';
import { blacklistAllBut, chromiumDumpDom, chromiumVersion, haveChromium, spkiHash } from '../helpers/chromium';
import { startSingleCertEdge, SingleCertEdge } from './single-cert-edge';
import {
  KEY_TYPES,
  KeyTypeName,
  MatrixCell,
  PeerName,
  PROTOCOLS,
  ProtocolName,
  readRecord,
  recordCell,
  recordVersion,
  writeInteropDocIfComplete,
} from './matrix-report';

const RECORD = path.join(os.tmpdir(), `keyless-interop-matrix-${process.pid}.json`);
const DOC = path.join(REPO_ROOT, 'docs', 'interop.md');

let kmsStack: StackProcess;
let sealedStack: StackProcess;
const edges = {} as Record<KeyTypeName, SingleCertEdge>;
/** SPKI hashes of each edge's leaf, for Chromium's --ignore-certificate-errors-spki-list. */
const spki = {} as Record<KeyTypeName, string>;
let goProbe: string | undefined;

const KEY_NAME: Record<KeyTypeName, string> = {
  'rsa-kms': 'localhost-rsa',
  'ecdsa-kms': 'localhost-ecdsa',
  'rsa-sealed': 'localhost-rsa',
};
const CHAIN_FILE: Record<KeyTypeName, string> = {
  'rsa-kms': 'localhost-rsa.chain.pem',
  'ecdsa-kms': 'localhost-ecdsa.chain.pem',
  'rsa-sealed': 'localhost-rsa-sealed.chain.pem',
};

const available: Record<PeerName, boolean> = {
  openssl: havePeer('openssl'),
  curl: havePeer('curl'),
  node: true,
  python: havePeer('python3'),
  gnutls: havePeer('gnutls-cli'),
  go: havePeer('go'),
  chromium: haveChromium(),
};

beforeAll(async () => {
  fs.rmSync(RECORD, { force: true });
  [kmsStack, sealedStack] = await Promise.all([
    startStackProcess(),
    startStackProcess({ KEYLESS_DEV_CUSTODY: 'sealed' }),
  ]);
  const stackOf = (k: KeyTypeName): StackProcess => (k === 'rsa-sealed' ? sealedStack : kmsStack);
  await Promise.all(
    KEY_TYPES.map(async (k) => {
      edges[k] = await startSingleCertEdge(stackOf(k), KEY_NAME[k]);
      spki[k] = spkiHash(fs.readFileSync(path.join(stackOf(k).dir, CHAIN_FILE[k]), 'utf8'));
    }),
  );
  if (available.go) goProbe = buildGoProbe();
  await recordVersions();
}, 300_000);

afterAll(async () => {
  await Promise.all(Object.values(edges).map((e) => e.stop()));
  await Promise.all([kmsStack?.stop(), sealedStack?.stop()]);
  const result = writeInteropDocIfComplete(readRecord(RECORD), DOC);
  process.stdout.write(
    result.written
      ? '[interop] docs/interop.md regenerated\n'
      : `[interop] docs/interop.md left unchanged: ${result.reason} (cells recorded in ${RECORD})\n`,
  );
  // Kept only when something failed, to look at (or to render by hand with matrix-report.js).
  if (result.written) fs.rmSync(RECORD, { force: true });
}, 60_000);

async function recordVersions(): Promise<void> {
  const first = async (cmd: string, args: string[], pick = (s: string) => s.split('\n')[0].trim()): Promise<string> =>
    pick(`${(await runPeer(cmd, args)).stdout}`);
  const v: Partial<Record<PeerName, string>> = {
    node: `Node ${process.version} (OpenSSL ${process.versions.openssl})`,
  };
  if (available.openssl) v.openssl = await first('openssl', ['version']);
  if (available.curl)
    v.curl = await first('curl', ['--version'], (s) => s.replace(/^curl (\S+).*?(OpenSSL\/\S+).*$/s, 'curl $1 ($2)'));
  if (available.python)
    v.python = await first('python3', [
      '-c',
      'import ssl, sys; print("Python", sys.version.split()[0], "(" + ssl.OPENSSL_VERSION + ")")',
    ]);
  if (available.gnutls) v.gnutls = await first('gnutls-cli', ['--version']);
  if (available.go) v.go = await first('go', ['version']);
  if (available.chromium) v.chromium = await chromiumVersion();
  for (const [peer, version] of Object.entries(v)) recordVersion(RECORD, peer as PeerName, version);
}

/** What the origin saw (the edge's view of the handshake), or the peer's failure. */
type Attempt = { view: Record<string, unknown> } | { failed: string };

function parseView(run: () => Record<string, unknown>, r: PeerResult): Attempt {
  try {
    return { view: run() };
  } catch {
    return { failed: `exit ${r.code}\n${r.stdout.slice(-1500)}\n${r.stderr.slice(-1500)}` };
  }
}

// ---- how each peer forces each protocol ---------------------------------------------------------

const OPENSSL_FLAGS: Record<ProtocolName, string[]> = {
  tls13: ['-tls1_3'],
  'tls12-ecdhe': ['-tls1_2', '-cipher', 'ECDHE+AESGCM:ECDHE+CHACHA20'],
  'tls12-rsa': ['-tls1_2', '-cipher', 'AES128-GCM-SHA256:AES256-GCM-SHA384'],
};
const CURL_FLAGS: Record<ProtocolName, string[]> = {
  tls13: ['--tlsv1.3', '--tls-max', '1.3'],
  'tls12-ecdhe': ['--tlsv1.2', '--tls-max', '1.2', '--ciphers', 'ECDHE+AESGCM:ECDHE+CHACHA20'],
  'tls12-rsa': ['--tlsv1.2', '--tls-max', '1.2', '--ciphers', 'AES128-GCM-SHA256:AES256-GCM-SHA384'],
};
const NODE_OPTS: Record<ProtocolName, { minVersion: SecureVersion; maxVersion: SecureVersion; ciphers?: string }> = {
  tls13: { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
  'tls12-ecdhe': { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE+AESGCM:ECDHE+CHACHA20' },
  'tls12-rsa': { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256:AES256-GCM-SHA384' },
};
const PYTHON_SETUP: Record<ProtocolName, string> = {
  tls13: 'ctx.minimum_version = ssl.TLSVersion.TLSv1_3',
  'tls12-ecdhe': 'ctx.maximum_version = ssl.TLSVersion.TLSv1_2\nctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")',
  'tls12-rsa': 'ctx.maximum_version = ssl.TLSVersion.TLSv1_2\nctx.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384")',
};
const GNUTLS_PRIORITY: Record<ProtocolName, string> = {
  tls13: 'NORMAL:-VERS-ALL:+VERS-TLS1.3',
  'tls12-ecdhe': 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA',
  'tls12-rsa': 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA',
};
function goArgs(protocol: ProtocolName, key: KeyTypeName): string[] {
  if (protocol === 'tls13') return ['-min', '1.3'];
  if (protocol === 'tls12-rsa') return ['-max', '1.2', '-suite', '0x009c'];
  return ['-max', '1.2', '-suite', key === 'ecdsa-kms' ? '0xc02b' : '0xc02f'];
}
const CHROMIUM_FLAGS: Record<ProtocolName, string[]> = {
  tls13: ['--ssl-version-min=tls1.3'],
  'tls12-ecdhe': [
    '--ssl-version-max=tls1.2',
    `--cipher-suite-blacklist=${blacklistAllBut(['0xc02b', '0xc02f', '0xc02c', '0xc030', '0xcca9', '0xcca8'])}`,
  ],
  'tls12-rsa': ['--ssl-version-max=tls1.2', `--cipher-suite-blacklist=${blacklistAllBut(['0x009c', '0x009d'])}`],
};

async function attempt(peer: PeerName, protocol: ProtocolName, key: KeyTypeName): Promise<Attempt> {
  const port = edges[key].port;
  const ca = (key === 'rsa-sealed' ? sealedStack : kmsStack).state.caPath;
  const url = `https://localhost:${port}/api/tls`;
  switch (peer) {
    case 'openssl': {
      const r = await runPeer(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          '-servername',
          'localhost',
          '-CAfile',
          ca,
          '-verify_return_error',
          '-ign_eof',
          ...OPENSSL_FLAGS[protocol],
        ],
        { input: httpGet('/api/tls') },
      );
      return parseView(() => httpJsonBody(r.stdout), r);
    }
    case 'curl': {
      const r = await runPeer('curl', ['-sS', '--fail', '--http1.1', '--cacert', ca, ...CURL_FLAGS[protocol], url]);
      return parseView(() => JSON.parse(r.stdout) as Record<string, unknown>, r);
    }
    case 'node':
      return new Promise((resolve) => {
        const req = https.get(url, { ca: fs.readFileSync(ca), agent: false, ...NODE_OPTS[protocol] }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => {
            try {
              resolve({ view: JSON.parse(body) as Record<string, unknown> });
            } catch {
              resolve({ failed: `status ${res.statusCode}: ${body.slice(0, 500)}` });
            }
          });
        });
        req.on('error', (err: NodeJS.ErrnoException) => resolve({ failed: `${err.code ?? ''} ${err.message}` }));
      });
    case 'python': {
      const script = pythonGetApiTls({ ca, port, setup: PYTHON_SETUP[protocol] });
      const r = await runPeer('python3', ['-c', script]);
      return parseView(() => httpJsonBody(r.stdout), r);
    }
    case 'gnutls': {
      const r = await runPeer(
        'gnutls-cli',
        [`--x509cafile=${ca}`, '-p', String(port), 'localhost', '--priority', GNUTLS_PRIORITY[protocol]],
        { input: httpGet('/api/tls') },
      );
      return parseView(() => httpJsonBody(r.stdout), r);
    }
    case 'go': {
      if (!goProbe) return { failed: 'Go probe not built' };
      const r = await runPeer(goProbe, ['-addr', `127.0.0.1:${port}`, '-ca', ca, ...goArgs(protocol, key)]);
      return parseView(() => httpJsonBody(r.stdout), r);
    }
    case 'chromium': {
      const r = await chromiumDumpDom(url, { trustSpki: [spki[key]], flags: CHROMIUM_FLAGS[protocol] });
      return parseView(() => {
        const pre = /<pre[^>]*>([\s\S]*?)<\/pre>/.exec(r.stdout);
        if (!pre) throw new Error('no JSON page');
        return JSON.parse(
          pre[1]
            .replace(/&quot;/g, '"')
            .replace(/&lt;/g, '<')
            .replace(/&gt;/g, '>')
            .replace(/&amp;/g, '&'),
        ) as Record<string, unknown>;
      }, r);
    }
  }
}

/**
 * Peers that offer the post-quantum hybrid X25519MLKEM768 with a key share by default: Node 24
 * (OpenSSL 3.5) and Chromium ≥ 131. The others installed here (OpenSSL 3.0, GnuTLS 3.7, Go 1.19)
 * have no ML-KEM and get a classic group.
 */
const HYBRID_BY_DEFAULT: Record<PeerName, boolean> = {
  openssl: false,
  curl: false,
  node: true,
  python: false,
  gnutls: false,
  go: false,
  chromium: true,
};

/** RSA key exchange needs a key the key service can decrypt PKCS#1 v1.5 with: `sealed` (or `file`) RSA only. */
function refusedByDesign(protocol: ProtocolName, key: KeyTypeName): boolean {
  return protocol === 'tls12-rsa' && key !== 'rsa-sealed';
}

const CELLS: [PeerName, ProtocolName, KeyTypeName][] = [];
for (const peer of Object.keys(available) as PeerName[])
  for (const protocol of PROTOCOLS) for (const key of KEY_TYPES) CELLS.push([peer, protocol, key]);

describe.each(Object.keys(available) as PeerName[])('%s', (peer) => {
  const maybe = available[peer] ? it : it.skip;
  maybe.each(CELLS.filter((c) => c[0] === peer).map((c) => [c[1], c[2]] as [ProtocolName, KeyTypeName]))(
    '%s with %s',
    async (protocol, key) => {
      const edge = edges[key];
      if (refusedByDesign(protocol, key)) {
        const before = edge.alertsSent('handshake_failure');
        const r = await attempt(peer, protocol, key);
        expect(r).toHaveProperty('failed');
        // The edge's log says which alert it sent; wait for the line (the peer may exit first).
        const deadline = Date.now() + 20_000;
        while (edge.alertsSent('handshake_failure') <= before && Date.now() < deadline)
          await new Promise((res) => setTimeout(res, 50));
        expect(edge.alertsSent('handshake_failure')).toBeGreaterThan(before);
        // Peers that print the alert they received must name it too (Chromium shows only an error page).
        if (peer !== 'chromium')
          expect((r as { failed: string }).failed).toMatch(/handshake[ _-]?fail|HANDSHAKE_FAILURE|alert.*40\b/i);
        recordCell(RECORD, { peer, protocol, key, outcome: 'refused', alert: 'handshake_failure' });
        return;
      }
      const r = await attempt(peer, protocol, key);
      if ('failed' in r) throw new Error(`${peer} ${protocol} ${key} failed:\n${r.failed}`);
      const v = r.view;
      expect(v.viaEdge).toBe(true);
      expect(v.protocol).toBe(protocol === 'tls13' ? 'TLSv1.3' : 'TLSv1.2');
      if (protocol === 'tls12-rsa') {
        expect(v.keyExchange).toBe('RSA (no forward secrecy)');
        expect(v.signatureScheme).toBeNull();
        expect(v.cipher).toMatch(/^TLS_RSA_WITH_AES_(128|256)_GCM_SHA(256|384)$/);
      } else {
        if (protocol === 'tls12-ecdhe') expect(v.keyExchange).toMatch(/^ECDHE \(/);
        if (protocol === 'tls13' && HYBRID_BY_DEFAULT[peer])
          expect(v).toMatchObject({ group: 'X25519MLKEM768', keyExchange: 'ECDHE-MLKEM (X25519MLKEM768)' });
        expect(v.signatureScheme).toMatch(key === 'ecdsa-kms' ? /^ecdsa_/ : /^rsa_/);
      }
      const cell: MatrixCell = {
        peer,
        protocol,
        key,
        outcome: 'ok',
        protocolSeen: String(v.protocol),
        cipher: String(v.cipher),
        group: (v.group as string | null) ?? null,
        signatureScheme: (v.signatureScheme as string | null) ?? null,
        keyExchange: String(v.keyExchange),
        httpVersion: String(v.httpVersion),
      };
      recordCell(RECORD, cell);
    },
    120_000,
  );
});
