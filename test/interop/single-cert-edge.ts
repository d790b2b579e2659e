/**
 * An extra edge process in front of a running dev stack's key service, serving exactly one of the
 * stack's certificates (by key name). With a single certificate a peer cannot fall back to another
 * key type, so an interop cell tests exactly the key it names. Same configuration as the stack's
 * own edge (read from its edge.json) otherwise: same key service, local KMS and demo origin.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import { edgeListening, inheritedEnv, startChild, stopChild } from '../../local/processes';
import { REPO_ROOT, StackProcess } from '../helpers/dev-stack-process';
import { jsonLines } from '../helpers/peers';

export interface SingleCertEdge {
  port: number;
  keyName: string;
  /** Parsed JSON log lines of this edge so far. */
  logs(): Record<string, unknown>[];
  /** How many handshakes failed with this alert sent, so far. */
  alertsSent(alert: string): number;
  stop(): Promise<void>;
}

export async function startSingleCertEdge(stack: StackProcess, keyName: string): Promise<SingleCertEdge> {
  const config = JSON.parse(fs.readFileSync(path.join(stack.dir, 'edge.json'), 'utf8')) as {
    certificates: { keyName: string }[];
    listen: object;
    admin: object;
  };
  const certificates = config.certificates.filter((c) => c.keyName === keyName);
  if (certificates.length !== 1)
    throw new Error(`the stack in ${stack.dir} has no single certificate for key ${keyName}`);
  const file = path.join(stack.dir, `edge-${keyName}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify(
      { ...config, certificates, listen: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
      null,
      2,
    ),
  );
  let out = '';
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => (out += d.toString()));
  const env = {
    ...inheritedEnv(),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_ENDPOINT_URL_LAMBDA: stack.state.keyServiceUrl,
    KEYLESS_EDGE_CONFIG: file,
  };
  const started = await startChild(
    `edge (${keyName})`,
    path.join(REPO_ROOT, 'dist/edge-proxy/src/main.js'),
    [],
    env,
    edgeListening,
    sink,
    60_000,
  );
  const child: ChildProcess = started.child;
  const logs = (): Record<string, unknown>[] => jsonLines(out);
  return {
    port: started.value.tlsPort,
    keyName,
    logs,
    alertsSent: (alert) => logs().filter((l) => l.msg === 'handshake failed' && l.alertSent === alert).length,
    stop: () => stopChild(child),
  };
}
