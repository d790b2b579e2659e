import type { ErrorCode } from './key-service-protocol';

/**
 * A typed key-service failure. `message` is safe to return to the caller: it never contains key
 * material, request payload bytes, or text copied from an upstream service's error message.
 */
export class KeyServiceError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Name of an upstream error (e.g. a KMS exception name), for logs. */
    readonly upstream?: string,
  ) {
    super(message);
    this.name = 'KeyServiceError';
  }
}

/** Invalid key-service configuration (KEYLESS_KEYS). The message names the offending field. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
