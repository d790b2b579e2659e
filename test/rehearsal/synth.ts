/**
 * Synthesis as the operator runs it: `cdk synth` (the CLI and the app command in cdk.json) into a
 * temporary cloud assembly, with the deployment's configuration file merged over the sample.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Template } from './cfn';

export interface Assembly {
  dir: string;
  /** Stacks in deployment order (dependencies first), with their template and environment. */
  stacks: { name: string; template: Template; region?: string; dependencies: string[] }[];
  /** File assets by hash: the staged directory or file. */
  fileAssets: Map<string, string>;
  /** Docker image assets by hash: build context and Dockerfile. */
  imageAssets: Map<string, { context: string; dockerfile: string }>;
}

export class SynthError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

/** Runs `cdk synth` from the repository root; `configFile` (absolute) is merged over cdk.json's sample. */
export async function synthesize(repo: string, outDir: string, configFile?: string): Promise<Assembly> {
  const args = ['synth', '--quiet', '--no-notices', '--output', outDir];
  if (configFile) args.push('--context', `keyless:configFile=${configFile}`);
  const cdk = path.join(repo, 'node_modules', '.bin', 'cdk');
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(cdk, args, {
      cwd: repo,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true', CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(text) : reject(new SynthError(`cdk synth exited ${code}`, text)),
    );
  });
  return readAssembly(outDir, output);
}

interface Manifest {
  artifacts: Record<
    string,
    { type: string; environment?: string; properties?: { templateFile?: string }; dependencies?: string[] }
  >;
}

export function readAssembly(dir: string, _output = ''): Assembly {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const stacks: Assembly['stacks'] = [];
  for (const [name, art] of Object.entries(manifest.artifacts)) {
    if (art.type !== 'aws:cloudformation:stack') continue;
    const template = JSON.parse(fs.readFileSync(path.join(dir, art.properties!.templateFile!), 'utf8')) as Template;
    const region = /^aws:\/\/[^/]+\/(.+)$/.exec(art.environment ?? '')?.[1];
    stacks.push({
      name,
      template,
      region: region && region !== 'unknown-region' ? region : undefined,
      dependencies: (art.dependencies ?? []).filter((d) => manifest.artifacts[d]?.type === 'aws:cloudformation:stack'),
    });
  }
  const ordered: Assembly['stacks'] = [];
  const pending = [...stacks];
  while (pending.length > 0) {
    const i = pending.findIndex((s) => s.dependencies.every((d) => ordered.some((o) => o.name === d)));
    if (i === -1) throw new Error(`stack dependencies form a cycle: ${pending.map((s) => s.name).join(', ')}`);
    ordered.push(...pending.splice(i, 1));
  }
  const fileAssets = new Map<string, string>();
  const imageAssets = new Map<string, { context: string; dockerfile: string }>();
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.assets.json'))) {
    const assets = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as {
      files?: Record<string, { source: { path: string } }>;
      dockerImages?: Record<string, { source: { directory: string; dockerFile?: string } }>;
    };
    for (const [hash, a] of Object.entries(assets.files ?? {})) fileAssets.set(hash, path.join(dir, a.source.path));
    for (const [hash, a] of Object.entries(assets.dockerImages ?? {}))
      imageAssets.set(hash, {
        context: path.join(dir, a.source.directory),
        dockerfile: a.source.dockerFile ?? 'Dockerfile',
      });
  }
  return { dir, stacks: ordered, fileAssets, imageAssets };
}
