/**
 * The edge's handshake latency by phase, from the traces phase-trace-preload.ts writes inside the edge
 * (one line per connection). For a full TLS 1.3 handshake at c=1, as the edge sees it:
 *
 *   accept → ClientHello read → key operation start (engine work; ServerHello…Certificate written)
 *   → key operation (request building and SigV4 before the HTTP request, the HTTP hop to the key service, decoding after it
 *   and the signature check) → server flight written (CertificateVerify, Finished) → client Finished read
 *   (the client's work and a loopback round trip) → first response byte written (the proxy hop).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PhaseTrace } from './phase-trace-preload';
import { summarize } from './stats';

export function readPhaseTraces(dir: string): PhaseTrace[] {
  const out: PhaseTrace[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('phases-') && n.endsWith('.jsonl'))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n'))
      if (line) out.push(JSON.parse(line) as PhaseTrace);
  }
  return out;
}

export interface PhaseRow {
  phase: string;
  p50: number;
  p90: number;
  n: number;
  /** Whether this phase counts in "the edge's own time" (accept → client Finished, key operation excluded). */
  own: boolean;
}

export const PHASES = [
  ['accept → ClientHello read', true],
  ['ClientHello read → key operation start (engine: hello, key share, key schedule, first flight written)', true],
  ['key operation: request building and SigV4 before the HTTP request', false],
  ['key operation: HTTP hop to the key service (Lambda Invoke)', false],
  ['key operation: response decoding and signature check', false],
  ['key operation end → server flight written (CertificateVerify, Finished)', true],
  ['flight written → client Finished read (client work + loopback round trip)', true],
  ['edge own total: accept → client Finished, key operation excluded', true],
  ['client Finished read → first response write (HTTP proxy hop to the origin)', false],
  ['socket writes per handshake (count; 2 = first flight + CertificateVerify/Finished)', false],
] as const;

const at = (t: PhaseTrace, name: string, after: number): number | undefined =>
  t.marks.find(([n, ms]) => n === name && ms >= after)?.[1];

/** Phase durations of one connection (ms, in PHASES order), or undefined when it was not one full handshake with one key operation. */
export function phasesOf(t: PhaseTrace): number[] | undefined {
  const hello = t.reads[0]?.[0];
  if (hello === undefined) return undefined;
  const signStart = at(t, 'signTls13CertificateVerify start', hello);
  if (signStart === undefined) return undefined;
  const invokeStart = at(t, 'invoke start', signStart);
  const httpStart = at(t, 'http request start', signStart);
  const signEnd = at(t, 'signTls13CertificateVerify end', signStart);
  if (invokeStart === undefined || httpStart === undefined || signEnd === undefined) return undefined;
  // The HTTP request the key operation made (same timestamp as its mark), not the later origin hop.
  const hop = t.hops.find(([start]) => Math.abs(start - httpStart) < 0.002);
  const finished = t.reads.find(([ms]) => ms > signEnd)?.[0];
  if (!hop || finished === undefined) return undefined;
  const flight = t.writes.filter(([ms]) => ms >= signEnd && ms <= finished);
  if (!flight.length) return undefined;
  const flightEnd = flight[flight.length - 1][0];
  const response = t.writes.find(([ms]) => ms > finished)?.[0];
  const handshakeWrites = t.writes.filter(([ms]) => ms <= finished).length;
  const keyOp = signEnd - signStart;
  return [
    hello,
    signStart - hello,
    httpStart - signStart,
    hop[1] - hop[0],
    signEnd - hop[1],
    flightEnd - signEnd,
    finished - flightEnd,
    finished - keyOp,
    response === undefined ? NaN : response - finished,
    handshakeWrites,
  ];
}

export function phaseBreakdown(traces: readonly PhaseTrace[]): PhaseRow[] {
  const per = traces.map(phasesOf).filter((x): x is number[] => x !== undefined);
  if (!per.length) return [];
  return PHASES.map(([phase, own], i) => {
    const s = summarize(per.map((p) => p[i]).filter(Number.isFinite));
    return { phase, p50: s.p50, p90: s.p90, n: s.n, own };
  });
}
