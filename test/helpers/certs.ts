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
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=keyless test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], dir);
  const caPath = path.join(dir, 'ca.pem');
  return {
    dir,
    caPath,
    caPem: fs.readFileSync(caPath, 'utf8'),
    leaf(name, kind, dnsNames) {
      const keyArgs = kind === 'rsa2048' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${kind === 'p256' ? 'P-256' : 'P-384'}`];
      openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${dnsNames[0]}`], dir);
      fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(',')}\nextendedKeyUsage=serverAuth\n`);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
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
