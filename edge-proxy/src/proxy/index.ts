export { createHttpFrontend } from './http-proxy';
export { describeConnection, normalizeAddress, type ConnectionFacts } from './connection-facts';
export {
  buildOriginRequestHeaders,
  filterResponseHeaders,
  toHttp2Headers,
  keylessHeaders,
  HOP_BY_HOP_HEADERS,
  KEYLESS_HEADERS,
  CLIENT_CERT_HEADERS,
  KEYLESS_HEADER_PREFIX,
} from './headers';
export { parseOrigin, createProxyProtocolAgent } from './origin';
export { createTcpForwarder, parseTcpOrigin, type TcpForwarder, type TcpForwarderOptions, type TcpForwardMetrics } from './tcp-forward';
export { originProxyHeader, tlsTlvs } from './origin-proxy-header';
export type * from './types';
