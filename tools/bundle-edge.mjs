#!/usr/bin/env node
// Bundles the edge (edge-proxy/src/main.ts and everything it imports, the AWS SDK included) into one
// self-contained file, the way the CDK bundles the key-service Lambda. The edge image
// (edge-proxy/Dockerfile) runs this and copies only its output, so the image carries no
// node_modules: no CDK, no CLI dependencies, no key-service code (only contract/, which it shares).
//
//   node tools/bundle-edge.mjs [outdir]     (default: dist/edge-bundle)
//
// Output: <outdir>/main.js and main.js.map (run with `node --enable-source-maps main.js`).
import { build } from 'esbuild';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.resolve(process.argv[2] ?? path.join(root, 'dist/edge-bundle'));

const result = await build({
  entryPoints: [path.join(root, 'edge-proxy/src/main.ts')],
  outfile: path.join(outdir, 'main.js'),
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  legalComments: 'none',
  tsconfig: path.join(root, 'tsconfig.json'),
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(
  `edge bundle: ${path.relative(process.cwd(), outdir) || '.'}/main.js (${(bytes / 1e6).toFixed(2)} MB with its source map)`,
);
