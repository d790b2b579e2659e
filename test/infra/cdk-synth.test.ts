/**
 * `npx cdk synth` works offline from a fresh clone: no AWS credentials, no region, no Docker. This
 * runs the real CLI on the real app command of cdk.json, with cdk-nag registered as bin/app.ts
 * does (so an unacknowledged AwsSolutions finding fails here too).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './helpers';

test('cdk synth succeeds with no AWS environment and produces both stacks', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-cdk-synth-'));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-home-'));
  try {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(AWS_|CDK_)/.test(k)) env[k] = v;
    env.HOME = home; // no ~/.aws, no cached credentials
    env.AWS_EC2_METADATA_DISABLED = 'true';
    env.PATH = `${path.join(ROOT, 'node_modules/.bin')}${path.delimiter}${process.env.PATH ?? ''}`;
    const res = spawnSync('cdk', ['synth', '--no-notices', '--no-version-reporting', '--ci', '-q', '-o', out], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 240_000,
    });
    expect([res.status, res.status === 0 ? '' : `${res.stdout}\n${res.stderr}`]).toEqual([0, '']);
    const templates = fs.readdirSync(out).filter((f) => f.endsWith('.template.json')).sort();
    expect(templates).toEqual(['Keyless-Demo-Edge.template.json', 'Keyless-Demo-KeyService.template.json']);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    for (const name of ['Keyless-Demo-Edge', 'Keyless-Demo-KeyService']) {
      expect(manifest.artifacts[name].environment).toBe('aws://unknown-account/unknown-region'); // environment-agnostic
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(home, { recursive: true, force: true });
  }
});
