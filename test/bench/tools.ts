/** Which external tools this machine has, and their versions (for the report). */
import { spawnSync } from 'node:child_process';

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** First line of a version command's output (stdout or stderr), or undefined. */
export function versionOf(cmd: string, args: string[], pattern?: RegExp): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return undefined;
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  if (pattern) return pattern.exec(text)?.[1];
  return text
    .split('\n')
    .find((l) => l.trim() !== '')
    ?.trim();
}

/** Where a missing tool comes from on Debian, for the printed reason. */
export const APT_PACKAGE: Record<string, string> = {
  h2load: 'nghttp2-client',
  nginx: 'nginx',
  openssl: 'openssl',
  'rsvg-convert': 'librsvg2-bin',
  convert: 'imagemagick',
};

export function missingReason(cmd: string, what: string): string {
  const pkg = APT_PACKAGE[cmd];
  return `${cmd} is not installed, so ${what} is skipped${pkg ? ` (apt-get install -y ${pkg})` : ''}`;
}
