/**
 * Summarises V8 CPU profiles (.cpuprofile) into where a handshake's CPU goes: self time by
 * category (RSA signing, X25519 key objects, hashing, AEAD, socket writes, AWS SDK, engine JS, …).
 */
import * as fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export const CATEGORIES = [
  'RSA signing',
  'X25519 + key objects',
  'signature verification',
  'hashing / HMAC / HKDF',
  'AEAD (AES-GCM)',
  'socket & pipe writes (syscalls)',
  'TLS engine JS',
  'key-service client & handler JS',
  'AWS SDK (SigV4, middleware, serde)',
  'HTTP (node:http, proxy)',
  'JSON & logging',
  'streams, events, timers (Node core)',
  'garbage collection',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** The category of a frame, or undefined for a native frame that belongs to its caller's. */
function categorize(fn: string, url: string): Category | undefined {
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === 'signOneShot') return 'RSA signing';
  if (fn === 'verifyOneShot') return 'signature verification';
  if (/^(writeBuffer|writev|writeUtf8String|writeLatin1String|writeAsciiString|writeUcs2String)$/.test(fn))
    return 'socket & pipe writes (syscalls)';
  if (url === '' && fn !== '(program)' && fn !== '(root)') return undefined;
  if (/node:internal\/crypto\/(keys|keygen|diffiehellman)/.test(url)) return 'X25519 + key objects';
  if (/node:internal\/crypto\/(hash|hkdf)/.test(url)) return 'hashing / HMAC / HKDF';
  if (/node:internal\/crypto\/cipher/.test(url)) return 'AEAD (AES-GCM)';
  if (/@smithy|@aws-sdk/.test(url)) return 'AWS SDK (SigV4, middleware, serde)';
  if (/edge-proxy\/src\/tls\//.test(url)) return 'TLS engine JS';
  if (/edge-proxy\/src\/keyless\/|lambdas\/key-service\/|local\/kms\/|local\/lambda\//.test(url))
    return 'key-service client & handler JS';
  if (/node:_http|node:http|edge-proxy\/src\/proxy\/|local\/demo-origin/.test(url)) return 'HTTP (node:http, proxy)';
  if (/edge-proxy\/src\/log|node:internal\/console/.test(url)) return 'JSON & logging';
  if (/^node:/.test(url) || fn === '(program)') return 'streams, events, timers (Node core)';
  return 'other';
}

export interface ProfileSummary {
  /** Sampled non-idle time in ms. */
  busyMs: number;
  byCategory: Record<Category, number>;
  topFunctions: Array<{ name: string; ms: number }>;
}

export function summarizeProfile(file: string): ProfileSummary {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Resolved per node: its category (native frames inherit their caller's) and whether it is the
  // profiler's own work (the inspector session that started and stops it).
  const memo = new Map<number, { cat: Category; overhead: boolean }>();
  const resolve = (id: number): { cat: Category; overhead: boolean } => {
    const hit = memo.get(id);
    if (hit) return hit;
    const n = byId.get(id)!;
    const up = parent.get(id);
    const above = up === undefined ? { cat: 'other' as Category, overhead: false } : resolve(up);
    const own = categorize(n.callFrame.functionName, n.callFrame.url);
    const r = {
      cat: own ?? above.cat,
      overhead: above.overhead || /profile-preload|node:inspector/.test(n.callFrame.url),
    };
    memo.set(id, r);
    return r;
  };
  const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const byFn = new Map<string, number>();
  let busy = 0;
  p.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    if (!n || n.callFrame.functionName === '(idle)') return;
    const r = resolve(id);
    if (r.overhead) return;
    busy += dt;
    byCategory[r.cat] += dt;
    const { functionName: fn, url, lineNumber } = n.callFrame;
    const short = url.replace(/^.*\/(node_modules|dist)\//, '').replace(/^file:\/\//, '');
    const up = parent.get(id);
    const caller = url === '' && up !== undefined ? byId.get(up)!.callFrame.functionName : '';
    const key = `${fn || '(anonymous)'}${short ? ` ${short}:${lineNumber + 1}` : caller ? ` (native, in ${caller})` : ' (native)'}`;
    byFn.set(key, (byFn.get(key) ?? 0) + dt);
  });
  const topFunctions = [...byFn]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([name, ms]) => ({ name, ms }));
  return { busyMs: busy, byCategory, topFunctions };
}
