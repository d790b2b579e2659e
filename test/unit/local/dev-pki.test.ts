/**
 * Dev PKI: a CA and a localhost certificate whose private keys exist only in (local, in-memory) KMS.
 * Checked with node's X509Certificate and `openssl verify`.
 */
import 'reflect-metadata';

import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { DeleteAliasCommand, DescribeKeyCommand, GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import * as x509 from '@peculiar/x509';

import { type DevKeySpec, createKmsKey, ensureDevPki, issueDevCa, issueLeaf } from '../../../local/dev-pki';
import { startLocalKms, type LocalKms } from '../../../local/kms';

let local: LocalKms;
let kms: KMSClient;
let tmp: string;

beforeAll(async () => {
  local = await startLocalKms({ region: 'us-east-1' });
  kms = new KMSClient({
    endpoint: local.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  kms.destroy();
  await local.close();
});

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-pki-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const certsIn = (pem: string): crypto.X509Certificate[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new crypto.X509Certificate(p),
  );

async function kmsSpki(keyId: string): Promise<Buffer> {
  return Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey as Uint8Array);
}

function opensslVerify(caFile: string, leafPem: string): string {
  const leafFile = path.join(tmp, 'leaf.pem');
  fs.writeFileSync(leafFile, leafPem);
  return execFileSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, leafFile], {
    encoding: 'utf8',
  });
}

describe.each(['ECC_NIST_P256', 'RSA_2048'] as DevKeySpec[])('ensureDevPki with a %s leaf key', (leafKeySpec) => {
  it('issues a chain that verifies, for localhost, 127.0.0.1 and ::1, bound to the KMS key', async () => {
    const signsBefore = local.stats.operations.Sign ?? 0;
    const pki = await ensureDevPki({ kms, dir: tmp, leafKeySpec });
    expect(pki.reused).toEqual({ ca: false, leaf: false });
    expect(local.stats.operations.Sign - signsBefore).toBe(2); // CA self-signature + leaf, both through KMS
    expect(fs.readdirSync(tmp).sort()).toEqual(['ca.pem', 'localhost.chain.pem']); // no key material on disk

    const ca = new crypto.X509Certificate(fs.readFileSync(pki.paths.ca));
    const chain = certsIn(fs.readFileSync(pki.paths.chain, 'utf8'));
    expect(chain).toHaveLength(2);
    const [leaf, chainCa] = chain;
    expect(chainCa.fingerprint256).toBe(ca.fingerprint256);

    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);

    expect(leaf.checkHost('localhost')).toBe('localhost');
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(leaf.checkIP('::1')).toBe('::1');
    expect(leaf.checkHost('example.com')).toBeUndefined();
    expect(leaf.subjectAltName).toContain('DNS:localhost');
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth EKU
    expect(new Date(leaf.validTo).getTime()).toBeGreaterThan(Date.now() + 300 * 86_400_000);
    expect(new Date(ca.validTo).getTime()).toBeGreaterThan(Date.now() + 9 * 365 * 86_400_000);

    // The leaf's public key is the KMS key's, and the CA's is the CA key's.
    expect(leaf.publicKey.export({ type: 'spki', format: 'der' })).toEqual(await kmsSpki(pki.keyAlias!));
    expect(ca.publicKey.export({ type: 'spki', format: 'der' })).toEqual(await kmsSpki(pki.caAlias));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: pki.keyAlias }))).KeyMetadata).toMatchObject({
      KeyId: pki.keyId,
      KeySpec: leafKeySpec,
      KeyUsage: 'SIGN_VERIFY',
    });

    // Extensions, as a TLS client sees them.
    const parsed = new x509.X509Certificate(pki.leafPem);
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    expect(ku?.critical).toBe(true);
    const expectedKu =
      x509.KeyUsageFlags.digitalSignature | (leafKeySpec.startsWith('RSA') ? x509.KeyUsageFlags.keyEncipherment : 0);
    expect(ku?.usages).toBe(expectedKu);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    const caParsed = new x509.X509Certificate(pki.caPem);
    expect(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(
      caParsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    );
    expect(parsed.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    expect(caParsed.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    );

    expect(opensslVerify(pki.paths.ca, pki.leafPem)).toMatch(/: OK\s*$/);
  });

  it('reuses valid certificates without reissuing or signing', async () => {
    const first = await ensureDevPki({ kms, dir: tmp, leafKeySpec });
    const mtime = fs.statSync(first.paths.chain).mtimeMs;
    const signsBefore = local.stats.operations.Sign ?? 0;
    const second = await ensureDevPki({ kms, dir: tmp, leafKeySpec });
    expect(second.reused).toEqual({ ca: true, leaf: true });
    expect(second.caPem).toBe(first.caPem);
    expect(second.chainPem).toBe(first.chainPem);
    expect(second.keyId).toBe(first.keyId);
    expect(local.stats.operations.Sign ?? 0).toBe(signsBefore);
    expect(fs.statSync(first.paths.chain).mtimeMs).toBe(mtime);
  });
});

describe('ensureDevPki reissues when reuse would be wrong', () => {
  it('a leaf about to expire is reissued under the same CA', async () => {
    const first = await ensureDevPki({ kms, dir: tmp, days: 30 });
    const later = new Date(Date.now() + 29.5 * 86_400_000);
    const again = await ensureDevPki({ kms, dir: tmp, days: 30, now: later });
    expect(again.reused).toEqual({ ca: true, leaf: false });
    expect(again.leafPem).not.toBe(first.leafPem);
    expect(new crypto.X509Certificate(again.leafPem).verify(new crypto.X509Certificate(first.caPem).publicKey)).toBe(
      true,
    );
  });

  it('a leaf whose KMS key changed is reissued', async () => {
    const leafAlias = `alias/keyless/test/leaf-${crypto.randomBytes(3).toString('hex')}`;
    const first = await ensureDevPki({ kms, dir: tmp, leafAlias });
    await kms.send(new DeleteAliasCommand({ AliasName: leafAlias })); // next run creates a new key behind it
    const again = await ensureDevPki({ kms, dir: tmp, leafAlias });
    expect(again.keyId).not.toBe(first.keyId);
    expect(again.reused).toEqual({ ca: true, leaf: false });
    const leaf = certsIn(again.chainPem)[0];
    expect(leaf.publicKey.export({ type: 'spki', format: 'der' })).toEqual(await kmsSpki(leafAlias));
  });

  it('a missing or foreign CA is reissued, and the leaf with it', async () => {
    const first = await ensureDevPki({ kms, dir: tmp });
    fs.writeFileSync(first.paths.ca, 'garbage');
    const again = await ensureDevPki({ kms, dir: tmp });
    expect(again.reused).toEqual({ ca: false, leaf: false });
    expect(opensslVerify(again.paths.ca, again.leafPem)).toMatch(/: OK\s*$/);
  });

  it('new names are a reason to reissue', async () => {
    await ensureDevPki({ kms, dir: tmp });
    const again = await ensureDevPki({ kms, dir: tmp, dnsNames: ['localhost', 'app.localhost'] });
    expect(again.reused.leaf).toBe(false);
    expect(certsIn(again.chainPem)[0].checkHost('app.localhost')).toBe('app.localhost');
  });
});

describe('building blocks', () => {
  it('createKmsKey is idempotent by alias and moves the alias when the spec changes', async () => {
    const alias = `alias/keyless/test/idem-${crypto.randomBytes(3).toString('hex')}`;
    const a = await createKmsKey(kms, { alias, keySpec: 'ECC_NIST_P256' });
    expect(await createKmsKey(kms, { alias, keySpec: 'ECC_NIST_P256' })).toBe(a);
    const b = await createKmsKey(kms, { alias, keySpec: 'RSA_2048' });
    expect(b).not.toBe(a);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.KeySpec).toBe('RSA_2048');
  });

  it('an RSA CA signs with RSASSA-PKCS1-v1_5 SHA-256 through KMS', async () => {
    const suffix = crypto.randomBytes(3).toString('hex');
    const caAlias = `alias/keyless/test/rsa-ca-${suffix}`;
    const leafAlias = `alias/keyless/test/rsa-ca-leaf-${suffix}`;
    await createKmsKey(kms, { alias: caAlias, keySpec: 'RSA_2048' });
    await createKmsKey(kms, { alias: leafAlias, keySpec: 'ECC_NIST_P384' });
    const caPem = await issueDevCa(kms, caAlias, { subject: 'CN=RSA test CA' });
    const leafPem = await issueLeaf(kms, { caAlias, caCertPem: caPem, leafAlias, dnsNames: ['localhost'], days: 10 });
    expect(new x509.X509Certificate(leafPem).signatureAlgorithm).toMatchObject({ name: 'RSASSA-PKCS1-v1_5' });
    const caFile = path.join(tmp, 'rsa-ca.pem');
    fs.writeFileSync(caFile, caPem);
    expect(opensslVerify(caFile, leafPem)).toMatch(/: OK\s*$/);
  });

  it('issueLeaf refuses a CA certificate that does not belong to the CA key', async () => {
    const suffix = crypto.randomBytes(3).toString('hex');
    const caAlias = `alias/keyless/test/ca-${suffix}`;
    const otherAlias = `alias/keyless/test/other-${suffix}`;
    await createKmsKey(kms, { alias: caAlias, keySpec: 'ECC_NIST_P256' });
    await createKmsKey(kms, { alias: otherAlias, keySpec: 'ECC_NIST_P256' });
    const foreignCa = await issueDevCa(kms, otherAlias);
    await expect(
      issueLeaf(kms, { caAlias, caCertPem: foreignCa, leafAlias: otherAlias, dnsNames: ['localhost'] }),
    ).rejects.toThrow(/does not belong/);
  });
});

describe('a leaf for a key KMS does not hold as a signing key (sealed custody)', () => {
  it('certifies the given public key, signed by the KMS-held CA', async () => {
    const local = await startLocalKms({ port: 0 });
    const client = new KMSClient({
      region: 'us-east-1',
      endpoint: local.url,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-pki-sealed-'));
    try {
      const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      const pki = await ensureDevPki({
        kms: client,
        dir,
        leafPublicKey: { spki, keySpec: 'RSA_2048' },
        chainFileName: 'sealed.chain.pem',
      });
      expect(pki.keyAlias).toBeUndefined();
      expect(pki.paths.chain).toBe(path.join(dir, 'sealed.chain.pem'));
      const leaf = new crypto.X509Certificate(pki.leafPem);
      expect(leaf.publicKey.export({ type: 'spki', format: 'der' })).toEqual(spki);
      expect(leaf.verify(new crypto.X509Certificate(pki.caPem).publicKey)).toBe(true);
      const again = await ensureDevPki({
        kms: client,
        dir,
        leafPublicKey: { spki, keySpec: 'RSA_2048' },
        chainFileName: 'sealed.chain.pem',
      });
      expect(again.reused).toEqual({ ca: true, leaf: true });
    } finally {
      client.destroy();
      await local.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
