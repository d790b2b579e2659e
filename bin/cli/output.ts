/**
 * Output of `keyless` commands. Results go to stdout — a human rendering, or with `--json` one JSON
 * document (stable field names, for scripts). Progress of long steps goes to stderr, so stdout stays
 * parseable and `--quiet` can silence it without losing the result.
 */

/** A progress reporter the command cores accept (`deps.progress`); default: silent. */
export type Progress = (message: string) => void;

export const silent: Progress = () => undefined;

export interface OutputStreams {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export interface Output {
  readonly json: boolean;
  progress: Progress;
  /** Prints the command's result: `value` as JSON with --json, otherwise `human()`. */
  result(value: unknown, human: () => string): void;
  /** A warning line on stderr (shown even with --quiet: it may change what the operator does). */
  warn(message: string): void;
}

export function createOutput(opts: { json: boolean; quiet: boolean; streams?: OutputStreams }): Output {
  const streams = opts.streams ?? { stdout: process.stdout, stderr: process.stderr };
  return {
    json: opts.json,
    progress: opts.quiet ? silent : (m) => void streams.stderr.write(`… ${m}\n`),
    result(value, human) {
      if (opts.json) streams.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else {
        const text = human();
        streams.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      }
    },
    warn: (m) => void streams.stderr.write(`warning: ${m}\n`),
  };
}

/** A plain-text table with left-aligned columns (no colours: it goes into logs and tickets). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}
