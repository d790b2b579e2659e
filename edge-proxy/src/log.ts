/**
 * Structured JSON logs, one object per line on stdout. Callers pass facts, never secrets: no key
 * material, premaster or master secrets, traffic secrets or request bodies are ever logged.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(level: Level, msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(component: string, minLevel: Level = (process.env.KEYLESS_LOG_LEVEL as Level) || 'info', base: Record<string, unknown> = {}): Logger {
  const min = ORDER[minLevel] ?? ORDER.info;
  return {
    log(level, msg, fields) {
      if (ORDER[level] < min) return;
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level, component, msg, ...base, ...fields })}\n`);
    },
    child(fields) {
      return createLogger(component, minLevel, { ...base, ...fields });
    },
  };
}
