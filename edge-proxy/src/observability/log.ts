/**
 * Structured JSON logs, one object per line on stdout. Callers pass facts, never secrets: no key
 * material, premaster or master secrets, traffic secrets or request bodies are ever logged.
 *
 * Per-connection lines can be sampled (`logging.sampleRate`): whether a connection's debug and info
 * lines are written is decided once from its id, so a sampled connection logs all of them and an
 * unsampled one none; warnings and errors are always written.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

function envLevel(): Level {
  const v = process.env.KEYLESS_LOG_LEVEL as Level | undefined;
  return v && v in ORDER ? v : 'info';
}

export function createLogger(
  component: string,
  minLevel: Level = envLevel(),
  base: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stdout.write(l),
): Logger {
  const min = ORDER[minLevel] ?? ORDER.info;
  return {
    log(level, msg, fields) {
      if (ORDER[level] < min) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...base, ...fields })}\n`);
    },
    child(fields) {
      return createLogger(component, minLevel, { ...base, ...fields }, write);
    },
  };
}

/**
 * A number in [0, 1) from a string: FNV-1a over its UTF-16 units, then the murmur3 finaliser so that
 * ids differing only in their last character (a counter) spread evenly.
 */
export function unitHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}

/** Decides, once per connection id, whether that connection's debug and info lines are written. */
export class LogSampler {
  constructor(readonly rate: number) {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`log sample rate ${rate} is not in [0, 1]`);
  }

  /** Same answer for the same id every time: no state is kept per connection. */
  sampled(connId: string): boolean {
    if (this.rate >= 1) return true;
    if (this.rate <= 0) return false;
    return unitHash(connId) < this.rate;
  }

  /**
   * The logger for one connection: every line carries `conn`; debug and info lines are dropped unless
   * the connection is sampled (sampled lines carry `sampleRate` when it is below 1, so counts can be
   * scaled back up); warnings and errors always pass.
   */
  forConnection(log: Logger, connId: string): Logger {
    const keep = this.sampled(connId);
    const extra: Record<string, unknown> = this.rate < 1 ? { conn: connId, sampleRate: this.rate } : { conn: connId };
    const wrap = (inner: Logger): Logger => ({
      log(level, msg, fields) {
        if (level === 'warn' || level === 'error') inner.log(level, msg, { conn: connId, ...fields });
        else if (keep) inner.log(level, msg, { ...extra, ...fields });
      },
      child(fields) {
        return wrap(inner.child(fields));
      },
    });
    return wrap(log);
  }
}
