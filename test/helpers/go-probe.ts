/**
 * Builds the Go crypto/tls probe (test/helpers/go-probe/main.go) once per run, offline, with the
 * standard library only (PEERS.md), and returns the binary's path — or undefined, with a printed
 * reason, when Go is not installed.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { havePeer } from './peers';

export function buildGoProbe(): string | undefined {
  if (!havePeer('go', 'Go crypto/tls interop tests are skipped')) return undefined;
  // From dist/test/helpers (compiled scripts) the Go source is still in the repository's test/helpers.
  let src = path.join(__dirname, 'go-probe', 'main.go');
  if (!fs.existsSync(src)) src = path.join(__dirname, '..', '..', '..', 'test', 'helpers', 'go-probe', 'main.go');
  const code = fs.readFileSync(src);
  const dir = path.join(
    os.tmpdir(),
    `keyless-go-probe-${crypto.createHash('sha256').update(code).digest('hex').slice(0, 12)}`,
  );
  const bin = path.join(dir, 'probe');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(src, path.join(dir, 'main.go'));
  const env = {
    ...process.env,
    GOFLAGS: '-mod=mod',
    GOPROXY: 'off',
    GOCACHE: path.join(dir, 'cache'),
    GOPATH: path.join(dir, 'gopath'),
    HOME: dir,
  };
  if (!fs.existsSync(path.join(dir, 'go.mod')))
    execFileSync('go', ['mod', 'init', 'probe'], { cwd: dir, env, stdio: 'ignore' });
  execFileSync('go', ['build', '-o', bin, '.'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 180_000,
  });
  return bin;
}
