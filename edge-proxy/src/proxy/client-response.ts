/**
 * Writing to the client side of a forwarded request: the edge's own short answers, the origin's
 * trailers, and the HTTP/2 request body nobody will read any more.
 */
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Readable } from 'node:stream';
import { filterResponseHeaders, toHttp2Headers, type RawHeaders } from './headers';

/** A short `text/plain` answer the edge gives itself (4xx, 502, 504). */
export function plainText(status: number, message: string): { body: string; headers: Record<string, string> } {
  const body = `${status} ${http.STATUS_CODES[status] ?? ''}: ${message}\n`;
  return {
    body,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
    },
  };
}

/** Bytes / milliseconds of an unwanted HTTP/2 request body the edge reads and drops before resetting. */
const DISCARD_MAX_BYTES = 1024 * 1024;
const DISCARD_MAX_MS = 2000;

/**
 * The response is complete but the client is still sending a body nobody will read (an error answer,
 * or an origin that answered early). Read and drop a bounded amount, so that well-behaved uploads
 * finish normally, then stop the rest with RST_STREAM(NO_ERROR) (RFC 9113 §8.1). (Resetting at once
 * would be valid too, but leaves some clients — Node's own — waiting forever for their pending
 * writes.)
 */
export function discardRequestBody(stream: http2.ServerHttp2Stream, body: Readable): void {
  let dropped = 0;
  const stop = (): void => {
    clearTimeout(timer);
    if (!stream.destroyed && !stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  };
  const timer = setTimeout(stop, DISCARD_MAX_MS);
  timer.unref();
  body.unpipe();
  body.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DISCARD_MAX_BYTES) stop();
  });
  body.once('end', () => clearTimeout(timer));
  body.once('close', () => clearTimeout(timer));
  body.resume();
}

/** Forward origin trailers (hop-by-hop and framing fields removed). */
export function addTrailers(
  res: http.ServerResponse | http2.Http2ServerResponse,
  isH2: boolean,
  raw: RawHeaders,
): void {
  const filtered = filterResponseHeaders(raw).filter((_, i, all) => {
    const name = (i % 2 === 0 ? all[i] : all[i - 1]).toLowerCase();
    return name !== 'content-length' && name !== 'host';
  });
  if (filtered.length === 0) return;
  try {
    if (isH2) {
      (res as http2.Http2ServerResponse).addTrailers(toHttp2Headers(filtered));
    } else {
      const pairs: [string, string][] = [];
      for (let i = 0; i + 1 < filtered.length; i += 2) pairs.push([filtered[i], filtered[i + 1]]);
      (res as http.ServerResponse).addTrailers(pairs);
    }
  } catch {
    // Invalid trailers are dropped, the body is still delivered.
  }
}
