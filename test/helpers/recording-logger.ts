/** An edge `Logger` that keeps every line (with its child fields) in `logs`, for tests to assert on. */
import type { Logger } from '../../edge-proxy/src/observability/log';

export type LogLine = Record<string, unknown>;

export function recordingLogger(logs: LogLine[], base: LogLine = {}): Logger {
  return {
    log: (level, msg, fields) => logs.push({ level, msg, ...base, ...fields }),
    child: (f) => recordingLogger(logs, { ...base, ...f }),
  };
}
