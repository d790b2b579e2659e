/** Runs real TLS peers (openssl, curl, python3, …) as child processes with a hard deadline. */
import { spawn, spawnSync } from 'node:child_process';

export interface PeerResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runPeer(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<PeerResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** True when `cmd` is on PATH; otherwise prints why the peer's tests are skipped. */
export function havePeer(cmd: string, why = 'interop tests with it are skipped'): boolean {
  const ok = spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!ok) process.stdout.write(`[peers] ${cmd} is not installed: ${why} (.ci/run installs it)\n`);
  return ok;
}

/** An HTTP/1.1 request for openssl s_client to send once connected. */
export function httpGet(path: string, host = 'localhost'): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
}

/**
 * The JSON body of the HTTP/1.1 response inside a peer's output (openssl s_client interleaves its
 * own session reports, e.g. post-handshake tickets), cut by the response's Content-Length.
 */
export function httpJsonBody(stdout: string): Record<string, unknown> {
  const start = stdout.indexOf('HTTP/1.1 ');
  const headEnd = stdout.indexOf('\r\n\r\n', start);
  if (start < 0 || headEnd < 0) throw new Error(`no HTTP response in peer output:\n${stdout.slice(-2000)}`);
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(stdout.slice(start, headEnd))?.[1]);
  return JSON.parse(stdout.slice(headEnd + 4, headEnd + 4 + length)) as Record<string, unknown>;
}

/** The JSON lines of a process's output or log, or of log events (a line that does not parse counts as `{}`). */
export function jsonLines(
  text: string | readonly string[],
  keep: (line: string) => boolean = () => true,
): Record<string, unknown>[] {
  return (typeof text === 'string' ? text.split('\n') : text)
    .filter((l) => l.startsWith('{') && keep(l))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/**
 * A Python `ssl` client script: `setup` configures the context (e.g. its versions), then it GETs
 * /api/tls from localhost:`port` and prints the response; with `reportVersion`, first a JSON line with
 * the negotiated version and cipher.
 */
export function pythonGetApiTls(o: { ca: string; port: number; setup: string; reportVersion?: boolean }): string {
  return [
    'import ssl, socket, json',
    `ctx = ssl.create_default_context(cafile=${JSON.stringify(o.ca)})`,
    o.setup,
    `s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ${o.port})), server_hostname="localhost")`,
    's.sendall(b"GET /api/tls HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n")',
    'data = b""',
    'while True:',
    '    chunk = s.recv(65536)',
    '    if not chunk: break',
    '    data += chunk',
    ...(o.reportVersion ? ['print(json.dumps({"version": s.version(), "cipher": s.cipher()[0]}))'] : []),
    'print(data.decode())',
  ].join('\n');
}
