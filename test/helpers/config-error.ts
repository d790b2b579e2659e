/** The edge ConfigError a call throws; fails the test when it throws nothing or something else. */
import { ConfigError, parseEdgeConfig } from '../../edge-proxy/src/config';

export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

/** The ConfigError of an edge configuration file's content (relative paths under /etc/keyless). */
export const edgeConfigError = (raw: unknown): ConfigError => configError(() => parseEdgeConfig(raw, '/etc/keyless'));
