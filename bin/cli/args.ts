/**
 * A small argv parser for `keyless` commands: long options only (`--name value`, `--name=value`),
 * booleans, repeatable options, positionals, `--` to end options, and `--help` / `-h` everywhere.
 * Each command declares a CommandSpec; the same spec renders its help text, so help and parsing
 * cannot disagree. Mistakes are usage errors (exit code 64) that name the option and the fix.
 */
import { usageError } from './errors';

export interface OptionSpec {
  /** Long name without dashes, e.g. `key-spec`. */
  name: string;
  /** `string`: one value; `list`: repeatable (and comma-separated values are split); `boolean`: a flag. */
  type: 'string' | 'list' | 'boolean';
  /** Placeholder in help, e.g. `SPEC`. */
  value?: string;
  description: string;
  /** Allowed values (checked, and listed in help). */
  choices?: readonly string[];
}

export interface PositionalSpec {
  name: string;
  required: boolean;
  /** Takes all remaining positionals (one or more when required). */
  variadic?: boolean;
  description: string;
}

export interface CommandSpec {
  /** e.g. `keys create` */
  name: string;
  summary: string;
  /** Longer explanation printed under the usage line. */
  description?: string;
  positionals?: PositionalSpec[];
  options: OptionSpec[];
  examples?: string[];
}

export interface ParsedArgs {
  help: boolean;
  positionals: Record<string, string | string[] | undefined>;
  options: Record<string, string | string[] | boolean | undefined>;
}

/** The option shared by every command. */
export const HELP_OPTION: OptionSpec = { name: 'help', type: 'boolean', description: 'show this help and exit' };

function suggest(word: string, known: string[]): string {
  // The closest known option by edit distance, when it is close enough to be a typo.
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(word, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 4))
    ? ` Did you mean --${best}?`
    : '';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

export function parseArgs(argv: readonly string[], spec: CommandSpec): ParsedArgs {
  const options: ParsedArgs['options'] = {};
  const rest: string[] = [];
  const byName = new Map(spec.options.map((o) => [o.name, o]));
  const cmd = `keyless ${spec.name}`;
  let help = false;
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (onlyPositionals || !arg.startsWith('-') || arg === '-') {
      rest.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--'))
      throw usageError(`unknown option ${arg}`, `Options are long (--name); see \`${cmd} --help\`.`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const opt = byName.get(name);
    if (!opt) {
      throw usageError(
        `unknown option --${name}.${suggest(name, [...byName.keys()])}`,
        `See \`${cmd} --help\` for the options it takes.`,
      );
    }
    if (opt.type === 'boolean') {
      if (inline !== undefined) throw usageError(`--${name} is a flag and takes no value`, `Write --${name} alone.`);
      options[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw usageError(`--${name} needs a value`, `Write --${name} ${opt.value ?? 'VALUE'}.`);
      }
      value = next;
      i++;
    }
    if (value === '') throw usageError(`--${name} needs a non-empty value`, `Write --${name} ${opt.value ?? 'VALUE'}.`);
    const values =
      opt.type === 'list'
        ? value
            .split(',')
            .map((v) => v.trim())
            .filter((v) => v.length > 0)
        : [value];
    if (opt.choices) {
      for (const v of values) {
        if (!opt.choices.includes(v))
          throw usageError(
            `--${name} ${v} is not one of ${opt.choices.join(', ')}`,
            `Pick one of: ${opt.choices.join(', ')}.`,
          );
      }
    }
    if (opt.type === 'list') {
      options[name] = [...((options[name] as string[] | undefined) ?? []), ...values];
    } else {
      if (options[name] !== undefined) throw usageError(`--${name} given twice`, `Give --${name} once.`);
      options[name] = value;
    }
  }
  const positionals: ParsedArgs['positionals'] = {};
  if (help) return { help, positionals, options };
  const specs = spec.positionals ?? [];
  let p = 0;
  for (const ps of specs) {
    if (ps.variadic) {
      positionals[ps.name] = rest.slice(p);
      if (ps.required && rest.length <= p)
        throw usageError(`missing ${ps.name.toUpperCase()}`, `Usage: ${usageLine(spec)}`);
      p = rest.length;
      continue;
    }
    if (p < rest.length) positionals[ps.name] = rest[p++];
    else if (ps.required) throw usageError(`missing ${ps.name.toUpperCase()}`, `Usage: ${usageLine(spec)}`);
  }
  if (p < rest.length) throw usageError(`unexpected argument ${JSON.stringify(rest[p])}`, `Usage: ${usageLine(spec)}`);
  return { help, positionals, options };
}

export function usageLine(spec: CommandSpec): string {
  const pos = (spec.positionals ?? []).map((p) => {
    const n = p.name.toUpperCase() + (p.variadic ? '...' : '');
    return p.required ? n : `[${n}]`;
  });
  return ['keyless', spec.name, ...pos, '[options]'].join(' ');
}

/** Help text of one command, rendered from its spec. */
export function formatHelp(spec: CommandSpec): string {
  const lines = [`usage: ${usageLine(spec)}`, '', spec.summary];
  if (spec.description) lines.push('', spec.description);
  if (spec.positionals?.length) {
    lines.push('', 'arguments:');
    for (const p of spec.positionals)
      lines.push(`  ${(p.name.toUpperCase() + (p.variadic ? '...' : '')).padEnd(26)} ${p.description}`);
  }
  lines.push('', 'options:');
  for (const o of [...spec.options, HELP_OPTION]) {
    const flag = `--${o.name}${o.type === 'boolean' ? '' : ` ${o.value ?? 'VALUE'}`}`;
    const choices = o.choices ? ` (${o.choices.join(', ')})` : '';
    const repeat = o.type === 'list' ? ' (repeatable)' : '';
    lines.push(`  ${flag.padEnd(26)} ${o.description}${choices}${repeat}`);
  }
  if (spec.examples?.length) {
    lines.push('', 'examples:');
    for (const e of spec.examples) lines.push(`  ${e}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Typed accessors over ParsedArgs.options. */
export const opt = {
  str: (a: ParsedArgs, name: string): string | undefined => a.options[name] as string | undefined,
  list: (a: ParsedArgs, name: string): string[] => (a.options[name] as string[] | undefined) ?? [],
  bool: (a: ParsedArgs, name: string): boolean => a.options[name] === true,
  /** A positive integer option (or the fallback), with a usage error naming the option otherwise. */
  int: (a: ParsedArgs, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number => {
    const v = a.options[name] as string | undefined;
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw usageError(
        `--${name} ${v} is not a whole number from ${min} to ${max}`,
        `Write e.g. --${name} ${fallback}.`,
      );
    }
    return n;
  },
};
