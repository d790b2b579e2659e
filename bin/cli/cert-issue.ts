/**
 * `keyless cert issue`: turns a certificate request into a certificate chain.
 *
 *  - `dev` CA: the local development CA, whose key exists only in KMS (local/dev-pki.ts). The leaf is
 *    signed through KMS Sign exactly like the CSR was; for local and test use only.
 *  - AWS Private CA: IssueCertificate with the request as given, then GetCertificate until the
 *    certificate is issued (RequestInProgressException means "not yet"; anything else is an error —
 *    unlike the SDK's waiter, which retries every error until it times out).
 *
 * Before issuing, the request's signature is verified (proof of possession); after issuing, the
 * leaf must carry the request's public key and verify under the next certificate of the chain.
 */
import * as crypto from 'node:crypto';
import {
  type ACMPCAClient,
  DescribeCertificateAuthorityCommand,
  GetCertificateCommand,
  IssueCertificateCommand,
  type SigningAlgorithm,
} from '@aws-sdk/client-acm-pca';
import type { KMSClient } from '@aws-sdk/client-kms';
import { pemCertificateBlocks } from '../../contract/x509';
import { issueLeaf } from '../../local/dev-pki';
import { awsError, failed, isAwsSdkError, refused, unavailable, usageError } from './errors';
import { parseCsr } from './csr';
import { type Progress, silent } from './output';

export const PCA_SIGNING_ALGORITHMS = [
  'SHA256WITHECDSA',
  'SHA384WITHECDSA',
  'SHA512WITHECDSA',
  'SHA256WITHRSA',
  'SHA384WITHRSA',
  'SHA512WITHRSA',
] as const;

export type CertificateAuthority =
  | {
      kind: 'dev';
      /** Alias of the dev CA's KMS key (local/dev-pki.ts DEFAULT_CA_ALIAS). */
      caAlias: string;
      /** The dev CA certificate (PEM), e.g. `.keyless/dev/ca.pem`. */
      caCertPem: string;
    }
  | {
      kind: 'acm-pca';
      /** ARN of the private CA. */
      arn: string;
      /** Default: the CA's own configured signing algorithm. */
      signingAlgorithm?: string;
      /** Certificate template (default: AWS's EndEntityCertificate/V1). */
      templateArn?: string;
      /** How long to wait for issuance (default 300 s). */
      maxWaitSeconds?: number;
      /** First poll delay (default 1000 ms; doubles up to 10 s). */
      pollIntervalMs?: number;
    };

export interface IssueCertificateOptions {
  csrPem: string;
  ca: CertificateAuthority;
  /** Validity in days (default 90; the dev CA caps it at its own expiry). */
  days?: number;
  now?: Date;
}

export interface IssuedCertificate {
  /** Leaf first, then the issuing chain. */
  chainPem: string;
  leafPem: string;
  serialNumber: string;
  subject: string;
  issuer: string;
  dnsNames: string[];
  notBefore: string;
  notAfter: string;
  /** AWS Private CA: the certificate's ARN. */
  certificateArn?: string;
}

const normalize = (pem: string): string => `${pem.trim()}\n`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function issueCertificate(
  opts: IssueCertificateOptions,
  deps: { kms?: KMSClient; acmPca?: ACMPCAClient; progress?: Progress },
): Promise<IssuedCertificate> {
  const progress = deps.progress ?? silent;
  const days = opts.days ?? 90;
  if (!Number.isInteger(days) || days < 1 || days > 3650)
    throw usageError(`--days ${days} is out of range`, 'Give 1 to 3650 days (public CAs allow at most 398).');
  const req = await parseCsr(opts.csrPem);
  if (req.dnsNames.length === 0)
    throw refused('the certificate request names no DNS name', 'Create it with `keyless csr --dns example.com`.');

  let chainPem: string;
  let certificateArn: string | undefined;
  if (opts.ca.kind === 'dev') {
    if (!deps.kms) throw new TypeError('the dev CA needs a KMS client');
    const caCert = new crypto.X509Certificate(opts.ca.caCertPem);
    progress(
      `issuing a ${days}-day certificate for ${req.dnsNames.join(', ')} with the dev CA (KMS key ${opts.ca.caAlias})`,
    );
    let leafPem: string;
    try {
      leafPem = await issueLeaf(deps.kms, {
        caAlias: opts.ca.caAlias,
        caCertPem: opts.ca.caCertPem,
        leafPublicKey: { spki: req.spki, keySpec: req.keySpec },
        dnsNames: req.dnsNames,
        days,
        now: opts.now,
      });
    } catch (e) {
      if (isAwsSdkError(e)) throw awsError(e, `KMS Sign with the dev CA key ${opts.ca.caAlias}`);
      throw refused(
        `the dev CA cannot issue: ${(e as Error).message}`,
        'Run `npm start` once (it creates the dev CA), and pass --local or --ca-cert/--ca-alias that belong together.',
      );
    }
    chainPem = normalize(leafPem) + normalize(caCert.toString());
  } else {
    if (!deps.acmPca) throw new TypeError('AWS Private CA needs an ACM PCA client');
    ({ chainPem, certificateArn } = await issueWithPrivateCa(opts.ca, opts.csrPem, days, deps.acmPca, progress));
  }

  const chain = pemCertificateBlocks(chainPem).map((p) => new crypto.X509Certificate(p));
  const leaf = chain[0];
  if (!leaf) throw failed('the CA returned no certificate');
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(req.spki)) {
    throw failed(
      'the CA returned a certificate for another public key than the request',
      'Report this to whoever runs the CA; do not import it.',
    );
  }
  if (chain[1] && !leaf.verify(chain[1].publicKey))
    throw failed('the issued certificate does not verify under its issuing CA certificate');
  return {
    chainPem: chain.map((c) => normalize(c.toString())).join(''),
    leafPem: normalize(leaf.toString()),
    serialNumber: leaf.serialNumber,
    subject: leaf.subject,
    issuer: leaf.issuer,
    dnsNames: req.dnsNames,
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: new Date(leaf.validTo).toISOString(),
    certificateArn,
  };
}

async function issueWithPrivateCa(
  ca: Extract<CertificateAuthority, { kind: 'acm-pca' }>,
  csrPem: string,
  days: number,
  pca: ACMPCAClient,
  progress: Progress,
): Promise<{ chainPem: string; certificateArn: string }> {
  let signingAlgorithm = ca.signingAlgorithm;
  if (signingAlgorithm && !(PCA_SIGNING_ALGORITHMS as readonly string[]).includes(signingAlgorithm)) {
    throw usageError(
      `--signing-algorithm ${signingAlgorithm} is not one of ${PCA_SIGNING_ALGORITHMS.join(', ')}`,
      "Leave it out to use the CA's own algorithm.",
    );
  }
  progress(`checking AWS Private CA ${ca.arn}`);
  let described;
  try {
    described = (await pca.send(new DescribeCertificateAuthorityCommand({ CertificateAuthorityArn: ca.arn })))
      .CertificateAuthority;
  } catch (e) {
    if ((e as Error).name === 'ResourceNotFoundException')
      throw refused(`there is no private CA ${ca.arn} in this account and region`, 'Check --pca-arn and --region.');
    throw awsError(e, 'ACM PCA DescribeCertificateAuthority');
  }
  if (described?.Status !== 'ACTIVE') {
    throw refused(
      `private CA ${ca.arn} is ${described?.Status ?? 'in an unknown state'}, not ACTIVE`,
      'Activate it (install its CA certificate) or use another CA.',
    );
  }
  signingAlgorithm ??= described.CertificateAuthorityConfiguration?.SigningAlgorithm;
  if (!signingAlgorithm)
    throw usageError(
      'the private CA reports no signing algorithm',
      'Pass --signing-algorithm (e.g. SHA256WITHRSA for an RSA CA).',
    );

  // The same request asked twice within PCA's idempotency window yields the same certificate, so a
  // retried command does not issue twice.
  const idempotencyToken = crypto
    .createHash('sha256')
    .update(csrPem.trim())
    .update(`|${days}|${signingAlgorithm}`)
    .digest('hex')
    .slice(0, 36);
  progress(`requesting a ${days}-day certificate (${signingAlgorithm})`);
  let certificateArn: string | undefined;
  try {
    certificateArn = (
      await pca.send(
        new IssueCertificateCommand({
          CertificateAuthorityArn: ca.arn,
          Csr: Buffer.from(csrPem),
          SigningAlgorithm: signingAlgorithm as SigningAlgorithm,
          Validity: { Type: 'DAYS', Value: days },
          TemplateArn: ca.templateArn,
          IdempotencyToken: idempotencyToken,
        }),
      )
    ).CertificateArn;
  } catch (e) {
    const name = (e as Error).name;
    if (
      name === 'MalformedCSRException' ||
      name === 'InvalidArgsException' ||
      name === 'InvalidArnException' ||
      name === 'InvalidStateException'
    ) {
      throw refused(
        `AWS Private CA refused the request: ${name}: ${(e as Error).message}`,
        'Check the names, --signing-algorithm (it must match the CA key type) and --days.',
      );
    }
    throw awsError(e, 'ACM PCA IssueCertificate');
  }
  if (!certificateArn) throw failed('ACM PCA IssueCertificate returned no certificate ARN');

  progress(`waiting for ${certificateArn}`);
  const deadline = Date.now() + (ca.maxWaitSeconds ?? 300) * 1000;
  let delay = ca.pollIntervalMs ?? 1000;
  for (;;) {
    try {
      const out = await pca.send(
        new GetCertificateCommand({ CertificateAuthorityArn: ca.arn, CertificateArn: certificateArn }),
      );
      if (!out.Certificate) throw failed('ACM PCA GetCertificate returned no certificate');
      return {
        chainPem: normalize(out.Certificate) + (out.CertificateChain ? normalize(out.CertificateChain) : ''),
        certificateArn,
      };
    } catch (e) {
      if ((e as Error).name !== 'RequestInProgressException') throw awsError(e, 'ACM PCA GetCertificate');
    }
    if (Date.now() + delay > deadline) {
      throw unavailable(
        `the certificate ${certificateArn} was not issued within ${ca.maxWaitSeconds ?? 300} s`,
        'Fetch it later with `aws acm-pca get-certificate` and import it with `keyless cert import`.',
      );
    }
    progress('not issued yet; waiting');
    await sleep(delay);
    delay = Math.min(delay * 2, 10_000);
  }
}
