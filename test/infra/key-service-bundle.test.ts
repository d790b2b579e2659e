/**
 * What the production key-service Lambda carries: the synthesized asset (real esbuild bundling, as
 * `cdk synth` does it) holds the `kms` and `sealed` backends and not the `file` backend, which only
 * the local Lambda endpoint registers (docs/architecture.md, "Custody modes").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resourcesOfType, type Synth, synthesize } from './helpers';

const OPERATOR = 'arn:aws:iam::111122223333:role/KeylessOperator';
const KS = 'Keyless-Bundle-KeyService';

/** Strings only one backend's source contains (error messages survive minification). */
const ONLY_IN = {
  file: ['cannot read key file', 'not an unencrypted PEM private key'],
  kms: ['KMS Sign returned no signature', 'KMS GetPublicKey returned no public key'],
  sealed: ['does not match its configured public key', 'KMS Decrypt returned no plaintext for the sealed key'],
};

let s: Synth;
let bundle: string;

beforeAll(() => {
  s = synthesize({
    deployment: 'bundle',
    keys: [{ name: 'web', custody: 'kms', keySpec: 'ECC_NIST_P256' }],
    operators: [OPERATOR],
    edge: { origin: 'http://10.80.7.7:8080' },
  });
  const [, fn] = resourcesOfType(s.json(KS), 'AWS::Lambda::Function').find(([, r]) => r.Properties?.VpcConfig)!;
  const assetDir = path.join(s.outdir, `asset.${String(fn.Properties!.Code.S3Key).replace(/\.zip$/, '')}`);
  bundle = fs.readFileSync(path.join(assetDir, 'index.js'), 'utf8');
}, 120_000);

afterAll(() => s?.cleanup());

test('the marker strings are where this test assumes: each in its backend source only', () => {
  const root = path.resolve(__dirname, '../..');
  const sources = {
    file: fs.readFileSync(path.join(root, 'local/lambda/file-backend.ts'), 'utf8'),
    kms: fs.readFileSync(path.join(root, 'lambdas/key-service/backends/kms.ts'), 'utf8'),
    sealed: fs.readFileSync(path.join(root, 'lambdas/key-service/backends/sealed.ts'), 'utf8'),
  };
  for (const [backend, markers] of Object.entries(ONLY_IN)) {
    for (const marker of markers) {
      for (const [other, text] of Object.entries(sources))
        expect([other, text.includes(marker)]).toEqual([other, other === backend]);
    }
  }
});

test('the Lambda asset is the esbuild bundle of the handler', () => {
  expect(bundle.length).toBeGreaterThan(10_000);
  expect(bundle).toMatch(/key service is misconfigured/);
});

test('the kms and sealed backends are in the Lambda asset', () => {
  for (const marker of [...ONLY_IN.kms, ...ONLY_IN.sealed])
    expect([marker, bundle.includes(marker)]).toEqual([marker, true]);
});

test('the file backend is not in the Lambda asset', () => {
  for (const marker of ONLY_IN.file) expect([marker, bundle.includes(marker)]).toEqual([marker, false]);
  expect(bundle).not.toMatch(/file-backend|local\/lambda/);
  // What the Lambda does with a file entry instead: a configuration error naming the field.
  expect(bundle).toContain('custody is for local development only');
});
