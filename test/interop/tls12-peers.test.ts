/**
 * TLS 1.2 through the whole local stack in `sealed` custody (KEYLESS_DEV_CUSTODY=sealed): the RSA
 * certificate's key is a KMS-generated key pair unsealed only inside the key service, so RSA key
 * exchange works by premaster forwarding, next to ECDHE-RSA and ECDHE-ECDSA (the ECDSA key stays in
 * KMS). Peers: OpenSSL s_client, curl, GnuTLS, Go crypto/tls. Plus the "no oracle" property at the
 * TLS level: every malformed ClientKeyExchange fails exactly like a well-formed one under another key.
 */
import * as crypto from 'node:crypto';
import { startStackProcess, StackProcess } from '../helpers/dev-stack-process';
import { havePeer, httpGet, httpJsonBody, runPeer, PeerResult } from '../helpers/peers';
import { buildGoProbe } from '../helpers/go-probe';
import { startRsaProbe } from '../helpers/tls12-rsa-probe';
import { encryptPreMaster, MALFORMED_PREMASTER_CASES, newPreMaster } from '../helpers/rsa-kex';

let stack: StackProcess;
let port: number;

beforeAll(async () => {
  stack = await startStackProcess({ KEYLESS_DEV_CUSTODY: 'sealed' });
  port = stack.state.edgePort;
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

const view = httpJsonBody;

const SUITES: [string, string, string][] = [
  // OpenSSL name, key exchange shown by the edge, signature scheme (or none for RSA key exchange)
  ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE (x25519)', 'rsa_pss_rsae_sha256'],
  ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE (x25519)', 'rsa_pss_rsae_sha256'],
  ['ECDHE-RSA-CHACHA20-POLY1305', 'ECDHE (x25519)', 'rsa_pss_rsae_sha256'],
  ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE (x25519)', 'ecdsa_secp256r1_sha256'],
  ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE (x25519)', 'ecdsa_secp256r1_sha256'],
  ['ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE (x25519)', 'ecdsa_secp256r1_sha256'],
  ['AES128-GCM-SHA256', 'RSA (no forward secrecy)', ''],
  ['AES256-GCM-SHA384', 'RSA (no forward secrecy)', ''],
];

describe('openssl s_client -tls1_2', () => {
  const maybe = havePeer('openssl') ? it : it.skip;
  maybe.each(SUITES)('%s', async (cipher, keyExchange, scheme) => {
    const r = await runPeer(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        'localhost',
        '-CAfile',
        stack.state.caPath,
        '-tls1_2',
        '-cipher',
        cipher,
        '-ign_eof',
      ],
      { input: httpGet('/api/tls') },
    );
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(r.stdout).toMatch(new RegExp(`Cipher\\s+: ${cipher}`));
    expect(r.stdout).toContain('Extended master secret: yes');
    expect(r.stdout).toContain('Secure Renegotiation IS supported');
    const v = view(r.stdout);
    expect(v).toMatchObject({ protocol: 'TLSv1.2', keyExchange });
    if (scheme) expect(v.signatureScheme).toBe(scheme);
    else expect(v.signatureScheme).toBeNull();
    expect(v.keyOperationMs).toEqual(expect.any(Number));
  });

  maybe('P-256 and P-384 groups for ECDHE', async () => {
    for (const [group, name] of [
      ['P-256', 'secp256r1'],
      ['P-384', 'secp384r1'],
    ]) {
      const r = await runPeer(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          '-servername',
          'localhost',
          '-CAfile',
          stack.state.caPath,
          '-tls1_2',
          '-cipher',
          'ECDHE-RSA-AES128-GCM-SHA256',
          '-groups',
          group,
          '-ign_eof',
        ],
        { input: httpGet('/api/tls') },
      );
      expect(view(r.stdout).group).toBe(name);
    }
  });
});

describe('curl --tls-max 1.2', () => {
  const maybe = havePeer('curl') ? it : it.skip;
  maybe.each([
    ['ECDHE-RSA-AES128-GCM-SHA256', '2'],
    ['AES128-GCM-SHA256', '1.1'],
  ])('%s', async (cipher, http) => {
    const r = await runPeer('curl', [
      '-sS',
      '--fail',
      `--http${http === '2' ? '2' : '1.1'}`,
      '--tlsv1.2',
      '--tls-max',
      '1.2',
      '--ciphers',
      cipher,
      '--cacert',
      stack.state.caPath,
      `https://localhost:${port}/api/tls`,
    ]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ protocol: 'TLSv1.2', httpVersion: http });
  });
});

describe('gnutls-cli', () => {
  const maybe = havePeer('gnutls-cli') ? it : it.skip;
  const gnutls = (priority: string): Promise<PeerResult> =>
    runPeer(
      'gnutls-cli',
      [`--x509cafile=${stack.state.caPath}`, '-p', String(port), 'localhost', '--priority', priority],
      { input: httpGet('/api/tls') },
    );
  maybe.each([
    ['ECDHE-RSA', '(ECDHE-X25519)-(RSA-PSS-RSAE-SHA256)-(AES-128-GCM)'],
    ['ECDHE-ECDSA', '(ECDHE-X25519)-(ECDSA-SHA256)-(AES-128-GCM)'],
    ['RSA', '(RSA)-(AES-128-GCM)'],
  ])('TLS 1.2 %s with extended master secret', async (kx, description) => {
    const r = await gnutls(`NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+${kx}:-CIPHER-ALL:+AES-128-GCM`);
    expect(r.stdout).toContain(`- Description: (TLS1.2-X.509)-${description}`);
    expect(r.stdout).toMatch(/Options: .*extended master secret/);
    expect(r.stdout).toContain('"protocol": "TLSv1.2"');
  });

  maybe('TLS 1.2 without extended master secret (the RFC 5246 master secret)', async () => {
    const r = await gnutls('NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA:%NO_SESSION_HASH');
    expect(r.stdout).toContain('- Description: (TLS1.2-X.509)-(RSA)');
    expect(r.stdout).not.toMatch(/Options: .*extended master secret/);
    expect(r.stdout).toContain('"protocol": "TLSv1.2"');
  });

  maybe('TLS 1.3', async () => {
    const r = await gnutls('NORMAL:-VERS-ALL:+VERS-TLS1.3');
    expect(r.stdout).toContain('- Description: (TLS1.3-X.509)');
    expect(r.stdout).toContain('"protocol": "TLSv1.3"');
  });
});

describe('Go crypto/tls', () => {
  const probe = buildGoProbe();
  const maybe = probe ? it : it.skip;
  maybe.each([
    ['0xc02f', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'],
    ['0xc02c', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
    ['0xcca8', 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
    ['0x009c', 'TLS_RSA_WITH_AES_128_GCM_SHA256'],
    ['0x009d', 'TLS_RSA_WITH_AES_256_GCM_SHA384'],
  ])('TLS 1.2 suite %s', async (id, name) => {
    const r = await runPeer(probe!, [
      '-addr',
      `127.0.0.1:${port}`,
      '-ca',
      stack.state.caPath,
      '-max',
      '1.2',
      '-suite',
      id,
    ]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.split('\n')[0])).toEqual({ version: 'TLSv1.2', suite: name });
    expect(r.stdout).toContain('HTTP/1.1 200 OK');
  });

  maybe('TLS 1.3 by default', async () => {
    const r = await runPeer(probe!, ['-addr', `127.0.0.1:${port}`, '-ca', stack.state.caPath]);
    expect(JSON.parse(r.stdout.split('\n')[0])).toMatchObject({ version: 'TLSv1.3' });
  });
});

describe('no padding oracle in RSA key exchange', () => {
  it('completes with a well-formed ciphertext', async () => {
    const probe = await startRsaProbe(port);
    const pms = newPreMaster(0x0303);
    const outcome = await probe.finish(encryptPreMaster(probe.publicKey, pms), pms);
    expect(outcome).toEqual({ serverFinished: true });
  });

  const otherKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const cases: [string, (pub: crypto.KeyObject) => Buffer][] = [
    ['a well-formed ciphertext under a different key', () => encryptPreMaster(otherKey, newPreMaster(0x0303))],
    ...MALFORMED_PREMASTER_CASES.map((c): [string, (pub: crypto.KeyObject) => Buffer] => [
      c.label,
      (pub) => c.ciphertext(pub, 0x0303),
    ]),
  ];
  it('answers every malformed ClientKeyExchange exactly like a wrong key: bad_record_mac after Finished', async () => {
    const outcomes: Record<string, unknown> = {};
    for (const [label, make] of cases) {
      const probe = await startRsaProbe(port);
      outcomes[label] = await probe.finish(make(probe.publicKey), newPreMaster(0x0303));
    }
    for (const [label] of cases) {
      // The same alert, in the clear (before any server CCS), at the same point: our Finished.
      expect([label, outcomes[label]]).toEqual([label, { alert: 20, alertInClear: true, serverFinished: false }]);
    }
  });
});
