/** Builds raw ClientHello records for negative tests of the server engine. */
import * as crypto from 'node:crypto';
import { Writer } from '../../edge-proxy/src/tls/codec';

export interface HelloOptions {
  legacyVersion?: number;
  versions?: number[] | null;
  suites?: number[];
  groups?: number[];
  /** Key shares to send: group id → share bytes (defaults to a fresh X25519 share). */
  shares?: { group: number; share: Buffer }[] | null;
  sigalgs?: number[] | null;
  compression?: number[];
  serverName?: string;
  alpn?: string[];
  sessionId?: Buffer;
  /** ClientHello.random (default: fresh random bytes). */
  random?: Buffer;
  /** Extra raw extensions appended at the end. */
  extra?: { type: number; data: Buffer }[];
  /** Raw bodies that replace the default extension of the same type (or are appended if there is none). */
  replace?: { type: number; data: Buffer }[];
}

export function x25519Share(): Buffer {
  const spki = crypto.generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32);
}

export function clientHelloBody(o: HelloOptions = {}): Buffer {
  const exts: { type: number; data: Buffer }[] = [];
  const versions = o.versions === undefined ? [0x0304] : o.versions;
  if (versions) exts.push({ type: 43, data: new Writer().vec8((w) => versions.forEach((v) => w.u16(v))).finish() });
  const groups = o.groups ?? [0x001d, 0x0017];
  exts.push({ type: 10, data: new Writer().vec16((w) => groups.forEach((g) => w.u16(g))).finish() });
  const sigalgs = o.sigalgs === undefined ? [0x0804, 0x0403] : o.sigalgs;
  if (sigalgs) exts.push({ type: 13, data: new Writer().vec16((w) => sigalgs.forEach((s) => w.u16(s))).finish() });
  const shares = o.shares === undefined ? [{ group: 0x001d, share: x25519Share() }] : o.shares;
  if (shares)
    exts.push({
      type: 51,
      data: new Writer().vec16((w) => shares.forEach((s) => w.u16(s.group).vec16(s.share))).finish(),
    });
  if (o.serverName) {
    const name = Buffer.from(o.serverName);
    exts.push({ type: 0, data: new Writer().vec16((w) => w.u8(0).vec16(name)).finish() });
  }
  if (o.alpn)
    exts.push({ type: 16, data: new Writer().vec16((w) => o.alpn!.forEach((p) => w.vec8(Buffer.from(p)))).finish() });
  for (const r of o.replace ?? []) {
    const i = exts.findIndex((e) => e.type === r.type);
    if (i >= 0) exts[i] = r;
    else exts.push(r);
  }
  exts.push(...(o.extra ?? []));
  return new Writer()
    .u16(o.legacyVersion ?? 0x0303)
    .bytes(o.random ?? crypto.randomBytes(32))
    .vec8(o.sessionId ?? Buffer.alloc(0))
    .vec16((w) => (o.suites ?? [0x1301]).forEach((s) => w.u16(s)))
    .vec8(Buffer.from(o.compression ?? [0]))
    .vec16((w) => exts.forEach((e) => w.u16(e.type).vec16(e.data)))
    .finish();
}

/** A ClientHello in one plaintext record, as the records a raw exchange sends. */
export const clientHelloRecords = (o: HelloOptions): Buffer[] => [handshakeRecord(clientHelloBody(o))];

export function handshakeRecord(body: Buffer, type = 1): Buffer {
  const msg = Buffer.concat([
    Buffer.from([type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
  return plainRecord(22, msg);
}

export function plainRecord(contentType: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([contentType, 3, 1, payload.length >> 8, payload.length & 0xff]), payload]);
}
