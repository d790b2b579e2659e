/**
 * The path and authority a request is forwarded with (RFC 9112 §3.2, RFC 9113 §8.3.1), or why it
 * cannot be forwarded.
 */
import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import { hostFieldCount } from './authority';

/** Characters allowed in an authority we forward as `Host` (RFC 3986 host [":" port], no userinfo). */
const AUTHORITY = /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** Path and authority of a request, or why it cannot be forwarded (`'CONNECT'`: the method is not supported). */
export function requestTarget(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  isH2: boolean,
): { path: string; authority?: string } | { error: string } {
  const method = req.method ?? '';
  if (method === 'CONNECT') return { error: 'CONNECT' };
  // RFC 9112 §3.2: more than one Host field makes the request invalid (Node keeps the first).
  if (hostFieldCount(req.rawHeaders) > 1) return { error: 'more than one Host header' };
  const url = req.url ?? '';
  let path: string;
  let authority: string | undefined;
  if (isH2) {
    const a = req.headers[':authority'];
    const host = req.headers.host;
    authority = typeof a === 'string' && a ? a : typeof host === 'string' && host ? host : undefined;
    // RFC 9113 §8.3.1: a Host that disagrees with :authority makes the request malformed.
    if (typeof a === 'string' && a && typeof host === 'string' && host.toLowerCase() !== a.toLowerCase()) {
      return { error: 'host and :authority disagree' };
    }
    path = url;
  } else if (url.startsWith('/') || (url === '*' && method === 'OPTIONS')) {
    path = url;
    const host = req.headers.host;
    authority = typeof host === 'string' && host ? host : undefined;
  } else {
    // Absolute form (RFC 9112 §3.2.2): the target's authority replaces Host.
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return { error: 'bad request target' };
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) {
      return { error: 'bad request target' };
    }
    path = `${u.pathname}${u.search}`;
    authority = u.host;
  }
  if (!path.startsWith('/') && path !== '*') return { error: 'bad request target' };
  if (authority !== undefined && !AUTHORITY.test(authority)) return { error: 'bad authority' };
  return { path, authority };
}
