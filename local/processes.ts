/**
 * Child processes of the local stacks (the embedded dev stack and the LocalStack suite): start a
 * compiled entry point and wait for its ready line, stop it politely, and the environment it
 * inherits (ours minus anything AWS- or keyless-specific, which each caller sets explicitly).
 */
import { ChildProcess, spawn } from 'node:child_process';

export function inheritedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('KEYLESS_')) env[k] = v;
  return env;
}

/** The edge's `edge listening` JSON log line, parsed; undefined for any other line. */
export function edgeListening(line: string): { tlsPort: number; adminPort: number } | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const j = JSON.parse(line) as { msg?: string; tlsPort?: number; adminPort?: number };
    return j.msg === 'edge listening' && j.tlsPort !== undefined && j.adminPort !== undefined
      ? { tlsPort: j.tlsPort, adminPort: j.adminPort }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a compiled entry point and resolves once `ready(line)` returns a value for some stdout line. */
export function startChild<T>(
  name: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (line: string) => T | undefined,
  out: NodeJS.WritableStream,
  timeoutMs = 20_000,
): Promise<{ child: ChildProcess; value: T }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let settled = false;
    let buf = '';
    const timer = setTimeout(
      () => fail(new Error(`${name} did not become ready within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    };
    child.stdout!.on('data', (d: Buffer) => {
      out.write(d);
      if (settled) return;
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const value = ready(line);
        if (value !== undefined) {
          settled = true;
          clearTimeout(timer);
          resolve({ child, value });
          return;
        }
      }
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      out.write(d);
    });
    child.on('exit', (code, signal) =>
      fail(new Error(`${name} exited (${signal ?? code}) before it was ready: ${stderr.trim().slice(-500)}`)),
    );
    child.on('error', fail);
  });
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
