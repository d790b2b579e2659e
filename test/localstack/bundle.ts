/**
 * Bundles the key-service Lambda the way the CDK stack's NodejsFunction does
 * (lib/key-service-function.ts → `bundling`): esbuild, entry lambdas/key-service/handler.ts, one CommonJS
 * `index.js` with handler `index.handler`, minified, with a source map without sources content,
 * target node24, the AWS SDK bundled (no externals), the repository's tsconfig.json. The zip holds
 * `index.js` and `index.js.map`, as CDK's asset does.
 *
 * The Lambda runtime must match the esbuild target: RUNTIME and TARGET below are checked against the
 * CDK stack by test/unit/localstack-harness.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createZip } from './zip';

export const REPO_ROOT = findRepoRoot(__dirname);
/** CDK: `runtime: lambda.Runtime.NODEJS_24_X`. LocalStack added nodejs24.x in November 2025 (PR #13410), before 4.14.0. */
export const RUNTIME = 'nodejs24.x';
/** CDK: `bundling.target: 'node24'`. */
export const TARGET = 'node24';
/** CDK: `architecture: lambda.Architecture.ARM_64` (docker-compose.yml sets LAMBDA_IGNORE_ARCHITECTURE=1). */
export const ARCHITECTURE = 'arm64';
export const HANDLER = 'index.handler';
export const ENTRY = 'lambdas/key-service/handler.ts';

export interface KeyServiceBundle {
  dir: string;
  /** Absolute path of index.js. */
  entryFile: string;
  /** The deployment package (index.js + index.js.map). */
  zip: Buffer;
  zipPath: string;
  /** esbuild warnings, as text. */
  warnings: string[];
}

function findRepoRoot(from: string): string {
  for (let d = path.resolve(from); ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'lambdas', 'key-service'))) return d;
    if (path.dirname(d) === d) throw new Error(`no repository root above ${from}`);
  }
}

/** Bundle into `outDir` (created) and write `key-service.zip` next to the bundle. */
export async function bundleKeyService(outDir: string): Promise<KeyServiceBundle> {
  // esbuild is a devDependency: loaded lazily so that requiring this module never needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  fs.mkdirSync(outDir, { recursive: true });
  const entryFile = path.join(outDir, 'index.js');
  const result = await esbuild.build({
    absWorkingDir: REPO_ROOT,
    entryPoints: [path.join(REPO_ROOT, ENTRY)],
    bundle: true,
    platform: 'node',
    target: TARGET,
    format: 'cjs',
    outfile: entryFile,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    tsconfig: path.join(REPO_ROOT, 'tsconfig.json'),
    logLevel: 'silent',
  });
  const warnings = result.warnings.map((w) => `${w.location?.file ?? ''}:${w.location?.line ?? ''} ${w.text}`);
  const zip = createZip([
    { name: 'index.js', data: fs.readFileSync(entryFile) },
    { name: 'index.js.map', data: fs.readFileSync(`${entryFile}.map`) },
  ]);
  const zipPath = path.join(outDir, 'key-service.zip');
  fs.writeFileSync(zipPath, zip);
  return { dir: outDir, entryFile, zip, zipPath, warnings };
}
