#!/usr/bin/env node
/**
 * CDK app entry (named in cdk.json). Synthesises offline, with no AWS credentials and no Docker:
 * the stacks are environment-agnostic unless `regions` is configured, nothing is looked up, the
 * key-service Lambda is bundled by the local esbuild, and the edge image is only staged (Docker
 * builds it at `cdk deploy`).
 *
 *   npx cdk synth                                   # the configuration in cdk.json ("keyless")
 *   npx cdk synth -c keyless:configFile=prod.json   # a deployment's own file, merged over it
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { KeylessConfigError, loadConfigFromContext } from '../lib/config';
import { createKeylessStacks } from '../lib/keyless-app';
import { repoRoot } from '../lib/paths';

function main(): void {
  const app = new App();
  let config;
  try {
    config = loadConfigFromContext(app.node, repoRoot());
  } catch (e) {
    if (e instanceof KeylessConfigError) {
      process.stderr.write(`${e.message}\n(see docs/deploy.md, "Configuration")\n`);
      process.exit(1);
    }
    throw e;
  }
  createKeylessStacks(app, config);
  // AwsSolutions checks run at every synth; unacknowledged findings fail it.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  app.synth();
}

main();
