/**
 * The SSM Parameter Store operations the project uses, with the validation, paging and exception
 * names of the real service: GetParameter, GetParameters, GetParametersByPath, GetParameterHistory,
 * DescribeParameters, PutParameter, DeleteParameter, DeleteParameters.
 */
import { constraint, notFound, serialization, SsmError, validation } from './errors';
import { parsePolicies, type ParameterPolicy } from './policies';
import {
  current,
  type ParameterRecord,
  type ParameterTier,
  type ParameterType,
  type ParameterVersion,
  type SsmStore,
} from './store';

export type Json = Record<string, unknown>;

/** Who is calling (for LastModifiedUser), filled by the HTTP front end. */
export interface CallContext {
  accessKeyId?: string;
  now: number;
}

export type Operation = (store: SsmStore, body: Json, ctx: CallContext) => Json;

const TYPES: readonly ParameterType[] = ['String', 'StringList', 'SecureString'];
const TIERS = ['Standard', 'Advanced', 'Intelligent-Tiering'] as const;
const STANDARD_MAX_VALUE = 4096;
const ADVANCED_MAX_VALUE = 8192;
const MAX_NAME = 1011;
const MAX_HIERARCHY_LEVELS = 15;
const DEFAULT_SECURE_KEY = 'alias/aws/ssm';

// ---- request members -----------------------------------------------------------------------

const member = (field: string): string => field.charAt(0).toLowerCase() + field.slice(1);

function str(body: Json, field: string, required: true): string;
function str(body: Json, field: string, required?: boolean): string | undefined;
function str(body: Json, field: string, required = false): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) throw constraint(member(field), null, 'Member must not be null');
    return undefined;
  }
  if (typeof v !== 'string') throw serialization(`${field} must be a string`);
  return v;
}

function bool(body: Json, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw serialization(`${field} must be a boolean`);
  return v;
}

function int(body: Json, field: string, min: number, max: number): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw serialization(`${field} must be an integer`);
  if (v < min) throw constraint(member(field), String(v), `Member must have value greater than or equal to ${min}`);
  if (v > max) throw constraint(member(field), String(v), `Member must have value less than or equal to ${max}`);
  return v;
}

function names(body: Json, field: string, max: number): string[] {
  const v = body[field];
  if (v === undefined || v === null) throw constraint(member(field), null, 'Member must not be null');
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw serialization(`${field} must be a list of strings`);
  if (v.length < 1) throw constraint(member(field), '[]', 'Member must have length greater than or equal to 1');
  if (v.length > max)
    throw constraint(member(field), `[${v.join(', ')}]`, `Member must have length less than or equal to ${max}`);
  return v as string[];
}

// ---- names ---------------------------------------------------------------------------------

/** A name as callers may give it (plain, or the parameter's ARN) → the stored name. */
function nameOf(store: SsmStore, given: string): string {
  const arn = /^arn:aws[a-z-]*:ssm:([^:]*):([^:]*):parameter(\/.*)$/.exec(given);
  if (!arn) return given;
  if (arn[1] !== store.region || arn[2] !== store.accountId)
    throw validation(`Parameter ARN ${given} is not in this account and region.`);
  // The ARN of a top-level name has one slash whether the name was "/x" or "x".
  const rest = arn[3];
  return rest.lastIndexOf('/') === 0 && store.get(rest) === undefined ? rest.slice(1) : rest;
}

/** `name:3` / `arn:...:parameter/name:3` → the name and the selector (`:3`). */
function splitSelector(given: string): [string, string | undefined] {
  const marker = given.startsWith('arn:') ? given.indexOf(':parameter/') : -1;
  const i = given.indexOf(':', marker === -1 ? 0 : marker + ':parameter/'.length);
  return i === -1 || (given.startsWith('arn:') && marker === -1)
    ? [given, undefined]
    : [given.slice(0, i), given.slice(i)];
}

/** Checks a name for PutParameter (the rules SSM documents for parameter names). */
function checkNewName(name: string): void {
  if (name.length < 1 || name.length > MAX_NAME)
    throw constraint('name', name, `Member must have length less than or equal to ${MAX_NAME}`);
  if (!/^[a-zA-Z0-9_.\-/]+$/.test(name)) {
    throw validation(
      'Parameter name: can only include letters, numbers and the symbols period (.), hyphen (-), underscore (_) and forward slash (/).',
    );
  }
  if (/^\/?(aws|ssm)/i.test(name))
    throw validation('Parameter name: can\'t be prefixed with "aws" or "ssm" (case-insensitive).');
  if (name.includes('/') && !name.startsWith('/'))
    throw validation(
      'Parameter name must be a fully qualified name: a name with a forward slash (/) must begin with one.',
    );
  if (name.endsWith('/') || name.includes('//')) throw validation('Parameter name: a hierarchy level cannot be empty.');
  if (name.split('/').length - 1 > MAX_HIERARCHY_LEVELS) {
    throw new SsmError(
      'HierarchyLevelLimitExceededException',
      `A hierarchy can have a maximum of ${MAX_HIERARCHY_LEVELS} levels.`,
    );
  }
}

/** `name` or `name:version` → the record and the selected version. */
function select(store: SsmStore, given: string): { rec: ParameterRecord; ver: ParameterVersion; selector?: string } {
  const [plain, selector] = splitSelector(given);
  const name = nameOf(store, plain);
  const rec = store.get(name);
  if (!rec) throw notFound(given);
  if (selector === undefined) return { rec, ver: current(rec) };
  if (!/^:\d+$/.test(selector))
    throw validation(`Parameter selector ${selector}: the local endpoint supports version numbers, not labels.`);
  const ver = rec.versions.find((v) => v.version === Number(selector.slice(1)));
  if (!ver)
    throw new SsmError(
      'ParameterVersionNotFound',
      `Systems Manager could not find version ${selector.slice(1)} of ${name}. Verify the version and try again.`,
    );
  return { rec, ver, selector };
}

// ---- responses -----------------------------------------------------------------------------

/** What GetParameter returns in place of a SecureString value when not decrypting. */
function sealedValue(name: string, ver: ParameterVersion): string {
  return Buffer.from(`local-ssm-ciphertext:${ver.keyId ?? DEFAULT_SECURE_KEY}:${name}:${ver.version}`).toString(
    'base64',
  );
}

function parameterOut(
  store: SsmStore,
  rec: ParameterRecord,
  ver: ParameterVersion,
  decrypt: boolean,
  selector?: string,
): Json {
  const out: Json = {
    Name: rec.name,
    Type: ver.type,
    Value: ver.type === 'SecureString' && !decrypt ? sealedValue(rec.name, ver) : ver.value,
    Version: ver.version,
    LastModifiedDate: ver.lastModifiedDate / 1000,
    ARN: store.arn(rec.name),
    DataType: ver.dataType,
  };
  if (selector !== undefined) out.Selector = selector;
  return out;
}

function metadataOut(store: SsmStore, rec: ParameterRecord): Json {
  const ver = current(rec);
  const out: Json = {
    Name: rec.name,
    ARN: store.arn(rec.name),
    Type: ver.type,
    LastModifiedDate: ver.lastModifiedDate / 1000,
    Version: ver.version,
    Tier: ver.tier,
    Policies: ver.policies.map((p) => ({ PolicyText: p.text, PolicyType: p.type, PolicyStatus: 'Pending' })),
    DataType: ver.dataType,
  };
  if (ver.keyId !== undefined) out.KeyId = ver.keyId;
  if (ver.description !== undefined) out.Description = ver.description;
  if (ver.allowedPattern !== undefined) out.AllowedPattern = ver.allowedPattern;
  if (ver.lastModifiedUser !== undefined) out.LastModifiedUser = ver.lastModifiedUser;
  return out;
}

// ---- paging --------------------------------------------------------------------------------

function pageToken(after: string): string {
  return Buffer.from(JSON.stringify({ after })).toString('base64url');
}

function afterOf(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through
  }
  throw new SsmError('InvalidNextToken', 'The specified token is not valid.');
}

function page<T>(
  items: T[],
  keyOf: (item: T) => string,
  token: string | undefined,
  max: number,
): { items: T[]; next?: string } {
  const after = afterOf(token);
  const rest = after === undefined ? items : items.filter((i) => keyOf(i) > after);
  const taken = rest.slice(0, max);
  return { items: taken, next: rest.length > max ? pageToken(keyOf(taken[taken.length - 1])) : undefined };
}

// ---- filters -------------------------------------------------------------------------------

interface Filter {
  key: string;
  option: string;
  values: string[];
}

function filtersOf(body: Json, allowed: readonly string[]): Filter[] {
  const raw = body.ParameterFilters;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw serialization('ParameterFilters must be a list');
  return raw.map((f: unknown) => {
    if (!f || typeof f !== 'object') throw serialization('ParameterFilters entries must be structures');
    const key = str(f as Json, 'Key', true);
    if (!allowed.includes(key))
      throw new SsmError(
        'InvalidFilterKey',
        `The filter key ${key} is not supported here; use one of ${allowed.join(', ')}.`,
      );
    const option = str(f as Json, 'Option') ?? 'Equals';
    const values = (f as Json).Values;
    if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== 'string')) {
      throw new SsmError('InvalidFilterValue', `The filter ${key} needs a non-empty list of string Values.`);
    }
    return { key, option, values: values as string[] };
  });
}

function underPath(name: string, path: string, recursive: boolean): boolean {
  const prefix = path.endsWith('/') ? path : `${path}/`;
  if (!name.startsWith(prefix) || name.length === prefix.length) return false;
  return recursive || !name.slice(prefix.length).includes('/');
}

function matches(rec: ParameterRecord, f: Filter): boolean {
  const ver = current(rec);
  switch (f.key) {
    case 'Type':
      return f.values.includes(ver.type);
    case 'KeyId':
      return ver.keyId !== undefined && f.values.includes(ver.keyId);
    case 'Tier':
      return f.values.includes(ver.tier);
    case 'DataType':
      return f.values.includes(ver.dataType);
    case 'Name':
      return f.values.some((v) => {
        const n = v.startsWith('/') || !rec.name.startsWith('/') ? v : `/${v}`;
        return f.option === 'BeginsWith'
          ? rec.name.startsWith(n)
          : f.option === 'Contains'
            ? rec.name.includes(v)
            : rec.name === n;
      });
    case 'Path':
      return f.values.some((v) => underPath(rec.name, v, f.option === 'Recursive'));
    default:
      return false;
  }
}

function checkPath(path: string): void {
  if (!path.startsWith('/')) throw validation('The parameter path must begin with a forward slash (/).');
  if (path.split('/').filter(Boolean).length > MAX_HIERARCHY_LEVELS) {
    throw new SsmError(
      'HierarchyLevelLimitExceededException',
      `A hierarchy can have a maximum of ${MAX_HIERARCHY_LEVELS} levels.`,
    );
  }
}

// ---- operations ----------------------------------------------------------------------------

const getParameter: Operation = (store, body) => {
  const { rec, ver, selector } = select(store, str(body, 'Name', true));
  return { Parameter: parameterOut(store, rec, ver, bool(body, 'WithDecryption') ?? false, selector) };
};

const getParameters: Operation = (store, body) => {
  const decrypt = bool(body, 'WithDecryption') ?? false;
  const found: Json[] = [];
  const invalid: string[] = [];
  for (const given of names(body, 'Names', 10)) {
    try {
      const { rec, ver, selector } = select(store, given);
      found.push(parameterOut(store, rec, ver, decrypt, selector));
    } catch (e) {
      if (e instanceof SsmError && (e.type === 'ParameterNotFound' || e.type === 'ParameterVersionNotFound'))
        invalid.push(given);
      else throw e;
    }
  }
  return { Parameters: found, InvalidParameters: invalid };
};

const getParametersByPath: Operation = (store, body) => {
  const path = str(body, 'Path', true);
  checkPath(path);
  const recursive = bool(body, 'Recursive') ?? false;
  const filters = filtersOf(body, ['Type', 'KeyId', 'DataType']);
  const max = int(body, 'MaxResults', 1, 10) ?? 10;
  const decrypt = bool(body, 'WithDecryption') ?? false;
  const all = store.list().filter((r) => underPath(r.name, path, recursive) && filters.every((f) => matches(r, f)));
  const { items, next } = page(all, (r) => r.name, str(body, 'NextToken'), max);
  const out: Json = { Parameters: items.map((r) => parameterOut(store, r, current(r), decrypt)) };
  if (next) out.NextToken = next;
  return out;
};

const getParameterHistory: Operation = (store, body) => {
  const name = nameOf(store, str(body, 'Name', true));
  const rec = store.get(name);
  if (!rec) throw notFound(name);
  const max = int(body, 'MaxResults', 1, 50) ?? 50;
  const decrypt = bool(body, 'WithDecryption') ?? false;
  const key = (v: ParameterVersion): string => String(v.version).padStart(8, '0');
  const { items, next } = page(rec.versions, key, str(body, 'NextToken'), max);
  const out: Json = {
    Parameters: items.map((v) => {
      const o: Json = {
        ...metadataOut(store, { ...rec, versions: [v] }),
        Value: v.type === 'SecureString' && !decrypt ? sealedValue(rec.name, v) : v.value,
        Labels: [],
      };
      delete o.ARN;
      return o;
    }),
  };
  if (next) out.NextToken = next;
  return out;
};

const describeParameters: Operation = (store, body) => {
  if (body.Filters !== undefined && body.Filters !== null)
    throw validation('The legacy Filters member is not supported by the local endpoint; use ParameterFilters.');
  const filters = filtersOf(body, ['Name', 'Path', 'Type', 'KeyId', 'Tier', 'DataType']);
  const max = int(body, 'MaxResults', 1, 50) ?? 50;
  const all = store.list().filter((r) => filters.every((f) => matches(r, f)));
  const { items, next } = page(all, (r) => r.name, str(body, 'NextToken'), max);
  const out: Json = { Parameters: items.map((r) => metadataOut(store, r)) };
  if (next) out.NextToken = next;
  return out;
};

function chooseTier(
  requested: string | undefined,
  value: string,
  policies: readonly ParameterPolicy[],
  previous: ParameterVersion | undefined,
): ParameterTier {
  const bytes = Buffer.byteLength(value, 'utf8');
  const wasAdvanced = previous?.tier === 'Advanced';
  const tier = requested ?? 'Standard';
  if (tier === 'Intelligent-Tiering')
    return wasAdvanced || bytes > STANDARD_MAX_VALUE || policies.length > 0 ? 'Advanced' : 'Standard';
  if (tier === 'Advanced') return 'Advanced';
  if (wasAdvanced) {
    throw validation(
      "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
    );
  }
  if (bytes > STANDARD_MAX_VALUE) {
    throw validation(
      `Standard tier parameters support a maximum parameter value of ${STANDARD_MAX_VALUE} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.`,
    );
  }
  if (policies.length > 0)
    throw validation(
      'Parameter policies are supported only for advanced-tier parameters. Set Tier to Advanced or Intelligent-Tiering.',
    );
  return 'Standard';
}

const putParameter: Operation = (store, body, ctx) => {
  const name = nameOf(store, str(body, 'Name', true));
  checkNewName(name);
  const value = str(body, 'Value', true);
  if (value.length < 1) throw constraint('value', '', 'Member must have length greater than or equal to 1');
  const type = str(body, 'Type');
  if (type !== undefined && !TYPES.includes(type as ParameterType))
    throw constraint('type', type, `Member must satisfy enum value set: [${TYPES.join(', ')}]`);
  const tierIn = str(body, 'Tier');
  if (tierIn !== undefined && !(TIERS as readonly string[]).includes(tierIn))
    throw constraint('tier', tierIn, `Member must satisfy enum value set: [${TIERS.join(', ')}]`);
  const overwrite = bool(body, 'Overwrite') ?? false;
  const tags = body.Tags;
  if (overwrite && tags !== undefined && tags !== null) {
    throw validation(
      "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
    );
  }
  const dataType = str(body, 'DataType') ?? 'text';
  if (dataType !== 'text') throw validation(`DataType ${dataType} is not supported by the local endpoint; use text.`);
  const allowedPattern = str(body, 'AllowedPattern');
  if (allowedPattern !== undefined && !new RegExp(allowedPattern).test(value)) {
    throw new SsmError(
      'ParameterPatternMismatchException',
      `Parameter value, cannot be validated against allowedPattern: ${allowedPattern}`,
    );
  }

  const existing = store.get(name);
  if (existing && !overwrite) {
    throw new SsmError(
      'ParameterAlreadyExists',
      'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
    );
  }
  const previous = existing ? current(existing) : undefined;
  if (!previous && type === undefined) throw validation('A parameter type is required when you create a parameter.');
  if (previous && type !== undefined && type !== previous.type) {
    throw new SsmError(
      'HierarchyTypeMismatchException',
      "Parameter Type can't be changed. To use a different type, delete the parameter and create it again.",
    );
  }
  const finalType = (type ?? previous!.type) as ParameterType;
  const keyIdIn = str(body, 'KeyId');
  if (keyIdIn !== undefined && finalType !== 'SecureString')
    throw validation('KeyId is required for SecureString type parameter only.');
  // Given policies replace the previous ones ("[]" clears them); absent, they carry over.
  const policiesText = str(body, 'Policies');
  const policies = policiesText !== undefined ? parsePolicies(policiesText, ctx.now) : (previous?.policies ?? []);
  const tier = chooseTier(tierIn, value, policies, previous);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > ADVANCED_MAX_VALUE)
    throw constraint('value', '*****', `Member must have length less than or equal to ${ADVANCED_MAX_VALUE}`);

  const version: ParameterVersion = {
    version: (previous?.version ?? 0) + 1,
    value,
    type: finalType,
    tier,
    dataType,
    policies,
    lastModifiedDate: ctx.now,
  };
  const description = str(body, 'Description') ?? previous?.description;
  if (description !== undefined) version.description = description;
  if (finalType === 'SecureString') version.keyId = keyIdIn ?? previous?.keyId ?? DEFAULT_SECURE_KEY;
  const pattern = allowedPattern ?? previous?.allowedPattern;
  if (pattern !== undefined) version.allowedPattern = pattern;
  if (ctx.accessKeyId !== undefined) version.lastModifiedUser = ctx.accessKeyId;

  const record: ParameterRecord = existing ?? { name, tags: tagsOf(tags), versions: [] };
  record.versions.push(version);
  store.put(record);
  return { Version: version.version, Tier: tier };
};

function tagsOf(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!Array.isArray(raw)) throw serialization('Tags must be a list');
  const out: Record<string, string> = {};
  for (const t of raw) {
    if (!t || typeof t !== 'object') throw serialization('Tags entries must be structures');
    out[str(t as Json, 'Key', true)] = str(t as Json, 'Value', true);
  }
  return out;
}

const deleteParameter: Operation = (store, body) => {
  const name = nameOf(store, str(body, 'Name', true));
  if (!store.delete(name)) throw notFound(name);
  return {};
};

const deleteParameters: Operation = (store, body) => {
  const deleted: string[] = [];
  const invalid: string[] = [];
  for (const given of names(body, 'Names', 10)) {
    const name = nameOf(store, given);
    (store.delete(name) ? deleted : invalid).push(given);
  }
  return { DeletedParameters: deleted, InvalidParameters: invalid };
};

export const OPERATIONS: Readonly<Record<string, Operation>> = {
  DeleteParameter: deleteParameter,
  DeleteParameters: deleteParameters,
  DescribeParameters: describeParameters,
  GetParameter: getParameter,
  GetParameterHistory: getParameterHistory,
  GetParameters: getParameters,
  GetParametersByPath: getParametersByPath,
  PutParameter: putParameter,
};

/** The parameter ARNs a request names (for the call record): `Name`, `Names`, or the `Path` prefix. */
export function resourcesOf(store: SsmStore, body: Json): string[] {
  const out: string[] = [];
  const one = (n: unknown): void => {
    if (typeof n !== 'string') return;
    const [plain] = splitSelector(n);
    try {
      out.push(store.arn(nameOf(store, plain)));
    } catch {
      // a foreign ARN names no resource of ours
    }
  };
  one(body.Name);
  if (Array.isArray(body.Names)) body.Names.forEach(one);
  if (typeof body.Path === 'string') out.push(store.arn(body.Path));
  return out;
}
