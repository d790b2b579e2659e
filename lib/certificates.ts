/**
 * Synth-time checks of certificate chains stored in SSM for the edge (certificates are public data).
 * Catching a wrong chain here is cheaper than a fleet of edges failing handshakes.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import { dnsNames, hasExpired, namesCover, pemCertificateBlocks, validityOf } from '../contract/x509';
import type { CustodyKey } from './config';

/** Split a PEM bundle into certificates (leaf first). Throws on anything that is not a certificate. */
export function parseChain(pem: string): X509Certificate[] {
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new Error('the PEM contains a PRIVATE KEY block: certificates only, the private key never leaves KMS');
  }
  const blocks = pemCertificateBlocks(pem);
  if (blocks.length === 0) throw new Error('no PEM CERTIFICATE block found');
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new Error(`certificate #${i + 1} does not parse: ${(e as Error).message}`);
    }
  });
}

/** Problems with a chain for the given hostnames and key (empty when it is fine). */
export function inspectCertificate(pem: string, hostnames: readonly string[], key: CustodyKey, now: Date): string[] {
  let chain: X509Certificate[];
  try {
    chain = parseChain(pem);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  const leaf = chain[0];
  const names = dnsNames(leaf);
  for (const h of hostnames) {
    if (!namesCover(names, h)) {
      problems.push(`the leaf certificate does not cover "${h}" (its DNS names: ${names.join(', ') || 'none'})`);
    }
  }
  if (hasExpired(validityOf(leaf), now)) problems.push(`the leaf certificate expired on ${leaf.validTo}`);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i].checkIssued(chain[i + 1])) {
      problems.push(`certificate #${i + 1} is not issued by certificate #${i + 2}: order the chain leaf first`);
    }
  }
  const pub = leaf.publicKey;
  if (key.custody === 'kms') {
    const wantRsa = key.keySpec.startsWith('RSA_');
    if (wantRsa) {
      const bits = Number(key.keySpec.slice(4));
      if (pub.asymmetricKeyType !== 'rsa' || pub.asymmetricKeyDetails?.modulusLength !== bits) {
        problems.push(`key "${key.name}" is ${key.keySpec} but the leaf certificate's key is ${describe(pub)}`);
      }
    } else {
      const curve = key.keySpec === 'ECC_NIST_P256' ? 'prime256v1' : 'secp384r1';
      if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== curve) {
        problems.push(`key "${key.name}" is ${key.keySpec} but the leaf certificate's key is ${describe(pub)}`);
      }
    }
  } else if (key.publicKey !== undefined) {
    const expected = createPublicKey({ key: Buffer.from(key.publicKey, 'base64'), format: 'der', type: 'spki' });
    const a = expected.export({ format: 'der', type: 'spki' });
    const b = pub.export({ format: 'der', type: 'spki' });
    if (!a.equals(b))
      problems.push(`the leaf certificate's public key is not the public key of sealed key "${key.name}"`);
  }
  return problems;
}

function describe(k: ReturnType<typeof createPublicKey>): string {
  const d = k.asymmetricKeyDetails;
  if (k.asymmetricKeyType === 'rsa') return `RSA ${d?.modulusLength ?? '?'}`;
  if (k.asymmetricKeyType === 'ec') return `EC ${d?.namedCurve ?? '?'}`;
  return k.asymmetricKeyType ?? 'unknown';
}
