import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The repository root: the nearest directory at or above this module that holds `cdk.json`.
 *
 * The CDK app runs from several places (ts-jest on `lib/*.ts`, `tsc` output in `dist/lib`, the esbuild
 * bundle that `cdk.json` runs from `dist/cdk`), so paths to the Lambda entry and the Dockerfile are
 * resolved from the repository root rather than from `__dirname`.
 */
export function repoRoot(start: string = __dirname): string {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'cdk.json')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`cannot find the repository root (a directory with cdk.json and package.json) above ${start}`);
    }
    dir = parent;
  }
}

/** Paths inside the repository that the stacks build from. */
export const REPO_PATHS = {
  keyServiceEntry: 'lambdas/key-service/handler.ts',
  lockFile: 'package-lock.json',
  edgeDockerfile: 'edge-proxy/Dockerfile',
  edgeDockerignore: 'edge-proxy/Dockerfile.dockerignore',
} as const;
