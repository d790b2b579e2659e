/** Test PKI made at run time with openssl: a CA and leaves for RSA and EC keys. Nothing is committed. */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestLeaf {
  name: string;
  chainPem: string;
  key: crypto.KeyObject;
  keyPath: string;
  certPath: string;
}

export interface TestPki {
  dir: string;
  caPath: string;
  caPem: string;
  leaf(name: string, kind: 'rsa2048' | 'p256' | 'p384', dnsNames: string[]): TestLeaf;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-pki-'));
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=keyless test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ],
    dir,
  );
  const caPath = path.join(dir, 'ca.pem');
  return {
    dir,
    caPath,
    caPem: fs.readFileSync(caPath, 'utf8'),
    leaf(name, kind, dnsNames) {
      const keyArgs =
        kind === 'rsa2048'
          ? ['-newkey', 'rsa:2048']
          : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${kind === 'p256' ? 'P-256' : 'P-384'}`];
      openssl(
        [
          'req',
          '-new',
          ...keyArgs,
          '-nodes',
          '-keyout',
          `${name}.key`,
          '-out',
          `${name}.csr`,
          '-subj',
          `/CN=${dnsNames[0]}`,
        ],
        dir,
      );
      fs.writeFileSync(
        path.join(dir, `${name}.ext`),
        `subjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(',')}\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          `${name}.pem`,
          '-days',
          '2',
          '-extfile',
          `${name}.ext`,
        ],
        dir,
      );
      const certPath = path.join(dir, `${name}.pem`);
      const keyPath = path.join(dir, `${name}.key`);
      return {
        name,
        chainPem: fs.readFileSync(certPath, 'utf8') + fs.readFileSync(caPath, 'utf8'),
        key: crypto.createPrivateKey(fs.readFileSync(keyPath)),
        keyPath,
        certPath,
      };
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A client certificate (mTLS) with its key file, and the chain a client sends (leaf, then intermediates). */
export interface TestClientCert {
  certPath: string;
  keyPath: string;
  certPem: string;
  /** Leaf and any intermediate, as a client presents them. */
  chainPem: string;
  /** File with `chainPem`, for `openssl s_client -cert` / `curl --cert`. */
  chainPath: string;
  key: crypto.KeyObject;
}

export interface ClientCertOptions {
  kind?: 'rsa2048' | 'p256' | 'p384';
  /** openssl -subj form, e.g. `/O=Example/CN=alice`. */
  subject: string;
  /** subjectAltName value, e.g. `email:alice@example.com,DNS:alice.example`. */
  san?: string;
  /** extendedKeyUsage value (default clientAuth). */
  eku?: string;
  /** Who signs: the client root, the client intermediate (chain includes it), or a CA nobody trusts. */
  issuer?: 'root' | 'intermediate' | 'unknown';
  notBefore?: Date;
  notAfter?: Date;
}

/** A client-certificate PKI made at run time: a root CA (the `caFile` of a host), an intermediate, and an unrelated CA. */
export interface TestClientPki {
  dir: string;
  /** The client root CA: what `clientAuth.caFile` points at. */
  caPath: string;
  caPem: string;
  issue(name: string, o: ClientCertOptions): TestClientCert;
  cleanup(): void;
}

const CA_CONFIG = `[ ca ]
default_ca = ca_default
[ ca_default ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
`;

function asn1Time(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export function makeClientPki(): TestClientPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-client-pki-'));
  const caDir = (name: string): string => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'ca.cnf'), CA_CONFIG);
    fs.writeFileSync(path.join(d, 'index.txt'), '');
    fs.writeFileSync(path.join(d, 'serial'), crypto.randomBytes(8).toString('hex').toUpperCase() + '\n');
    return d;
  };
  /** A self-signed P-256 CA (ca.key, ca.pem) in `dir`. */
  const selfSignedCa = (dir: string, subject: string): void =>
    openssl(
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
        ...['-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3', '-subj', subject],
        ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
      ],
      dir,
    );
  const root = caDir('root');
  selfSignedCa(root, '/O=Keyless Test/CN=keyless test client CA');
  const unknown = caDir('unknown');
  // A CA the edge does not trust (a look-alike name, its own key): its client certificates must not verify.
  selfSignedCa(unknown, '/CN=keyless test client CA');
  const inter = caDir('intermediate');
  openssl(
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.csr',
      '-subj',
      '/O=Keyless Test/CN=keyless test client intermediate',
    ],
    inter,
  );
  fs.writeFileSync(
    path.join(inter, 'ca.ext'),
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'ca.csr',
      '-CA',
      '../root/ca.pem',
      '-CAkey',
      '../root/ca.key',
      '-CAcreateserial',
      '-out',
      'ca.pem',
      '-days',
      '3',
      '-extfile',
      'ca.ext',
    ],
    inter,
  );
  const interPem = fs.readFileSync(path.join(inter, 'ca.pem'), 'utf8');
  const caPath = path.join(root, 'ca.pem');
  return {
    dir,
    caPath,
    caPem: fs.readFileSync(caPath, 'utf8'),
    issue(name, o) {
      const issuerDir = o.issuer === 'intermediate' ? inter : o.issuer === 'unknown' ? unknown : root;
      const kind = o.kind ?? 'p256';
      const keyArgs =
        kind === 'rsa2048'
          ? ['-newkey', 'rsa:2048']
          : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${kind === 'p256' ? 'P-256' : 'P-384'}`];
      openssl(
        [
          'req',
          '-new',
          ...keyArgs,
          '-nodes',
          '-keyout',
          path.join(dir, `${name}.key`),
          '-out',
          path.join(dir, `${name}.csr`),
          '-subj',
          o.subject,
        ],
        dir,
      );
      const ext = [
        `extendedKeyUsage=${o.eku ?? 'clientAuth'}`,
        'keyUsage=critical,digitalSignature',
        'basicConstraints=CA:FALSE',
        ...(o.san ? [`subjectAltName=${o.san}`] : []),
      ];
      fs.writeFileSync(path.join(dir, `${name}.ext`), ext.join('\n') + '\n');
      const notBefore = o.notBefore ?? new Date(Date.now() - 3600_000);
      const notAfter = o.notAfter ?? new Date(Date.now() + 2 * 86_400_000);
      openssl(
        [
          'ca',
          '-batch',
          '-config',
          'ca.cnf',
          '-cert',
          'ca.pem',
          '-keyfile',
          'ca.key',
          '-in',
          path.join(dir, `${name}.csr`),
          '-out',
          path.join(dir, `${name}.pem`),
          '-extfile',
          path.join(dir, `${name}.ext`),
          '-startdate',
          asn1Time(notBefore),
          '-enddate',
          asn1Time(notAfter),
          '-notext',
          '-preserveDN',
        ],
        issuerDir,
      );
      const certPath = path.join(dir, `${name}.pem`);
      const keyPath = path.join(dir, `${name}.key`);
      const certPem = fs.readFileSync(certPath, 'utf8');
      const chainPem = certPem + (o.issuer === 'intermediate' ? interPem : '');
      const chainPath = path.join(dir, `${name}-chain.pem`);
      fs.writeFileSync(chainPath, chainPem);
      return {
        certPath,
        keyPath,
        certPem,
        chainPem,
        chainPath,
        key: crypto.createPrivateKey(fs.readFileSync(keyPath)),
      };
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
