export { createHttpFrontend } from './http-proxy';
export { describeConnection, normalizeAddress, type ConnectionFacts } from './connection-facts';
export {
  buildOriginRequestHeaders,
  filterResponseHeaders,
  toHttp2Headers,
  keylessHeaders,
  HOP_BY_HOP_HEADERS,
  KEYLESS_HEADERS,
  KEYLESS_HEADER_PREFIX,
} from './headers';
export { parseOrigin } from './origin';
export type * from './types';
