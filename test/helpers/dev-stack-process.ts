/**
 * Runs `keyless dev` (what `npm start` runs) as a separate process in a temporary data folder on
 * free ports, and exposes its state file and captured output to tests. Needs `npm run build`
 * (done by `npm test`).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jsonLines } from './peers';

export interface StackState {
  edgeUrl: string;
  edgePort: number;
  adminPort: number;
  kmsUrl: string;
  ssmUrl: string;
  keyServiceUrl: string;
  originUrl: string;
  caPath: string;
  pids: { devStack: number; edge: number; keyService: number };
}

export interface StackProcess {
  proc: ChildProcess;
  dir: string;
  state: StackState;
  caPem: string;
  readyLine: string;
  output(): string;
  /** Edge JSON log lines parsed, in order. */
  edgeLogs(): Record<string, unknown>[];
  stop(): Promise<number | null>;
}

/** The folder holding package.json, whether this file runs from test/ (jest) or dist/test/ (bench). */
function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}

export const REPO_ROOT = findRepoRoot(__dirname);
export const KEYLESS_BIN = path.join(REPO_ROOT, 'dist/bin/keyless.js');

export function startStackProcess(
  extraEnv: Record<string, string> = {},
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-dev-')),
): Promise<StackProcess> {
  if (!fs.existsSync(KEYLESS_BIN))
    throw new Error(`${KEYLESS_BIN} is missing: run \`npm run build\` (npm test does it first)`);
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [KEYLESS_BIN, 'dev'], {
      cwd: REPO_ROOT,
      env: { ...process.env, KEYLESS_DEV_DIR: dir, KEYLESS_EDGE_PORT: '0', KEYLESS_ADMIN_PORT: '0', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`keyless dev not ready after 60 s:\n${out.slice(-3000)}`));
    }, 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /^ready: .*$/m.exec(out);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        const state = JSON.parse(fs.readFileSync(path.join(dir, 'stack.json'), 'utf8')) as StackState;
        resolve({
          proc,
          dir,
          state,
          caPem: fs.readFileSync(state.caPath, 'utf8'),
          readyLine: m[0],
          output: () => out,
          edgeLogs: () => jsonLines(out, (l) => l.includes('"component":"edge"')),
          stop: () =>
            new Promise((res) => {
              if (proc.exitCode !== null) return res(proc.exitCode);
              proc.once('exit', (code) => res(code));
              proc.kill('SIGINT');
            }),
        });
      }
    };
    let settled = false;
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      if (!settled) {
        clearTimeout(timer);
        reject(new Error(`keyless dev exited with ${code}:\n${out.slice(-3000)}`));
      }
    });
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
