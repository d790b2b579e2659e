/**
 * Typed, validated access to a KMS request body, enforcing the constraints of the KMS API model
 * (required members, enum values, lengths, ranges) with the error names and messages KMS uses:
 * a wrong JSON type is a SerializationException, a model constraint a ValidationException.
 */
import { constraint, serialization } from './errors';
import { enumRule, memberName } from './specs';

export type Json = Record<string, unknown>;

interface LengthRule {
  min?: number;
  max?: number;
}

export class Input {
  constructor(private readonly body: Json) {}

  has(field: string): boolean {
    return this.body[field] !== undefined && this.body[field] !== null;
  }

  private raw(field: string, required: boolean): unknown {
    const v = this.body[field];
    if (v === undefined || v === null) {
      if (required) throw constraint(memberName(field), null, 'Member must not be null');
      return undefined;
    }
    return v;
  }

  private checkLength(field: string, len: number, rule: LengthRule, shown: string | undefined): void {
    if (rule.min !== undefined && len < rule.min) {
      throw constraint(memberName(field), shown, `Member must have length greater than or equal to ${rule.min}`);
    }
    if (rule.max !== undefined && len > rule.max) {
      throw constraint(memberName(field), shown, `Member must have length less than or equal to ${rule.max}`);
    }
  }

  str(field: string, rule: LengthRule & { required: true }): string;
  str(field: string, rule?: LengthRule & { required?: boolean }): string | undefined;
  str(field: string, rule: LengthRule & { required?: boolean } = {}): string | undefined {
    const v = this.raw(field, rule.required ?? false);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw serialization(`${field} must be a string`);
    this.checkLength(field, v.length, rule, v);
    return v;
  }

  enumOf<T extends string>(field: string, values: readonly T[], rule: { required: true }): T;
  enumOf<T extends string>(field: string, values: readonly T[], rule?: { required?: boolean }): T | undefined;
  enumOf<T extends string>(field: string, values: readonly T[], rule: { required?: boolean } = {}): T | undefined {
    const v = this.str(field, { required: rule.required });
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) throw constraint(memberName(field), v, enumRule(values));
    return v as T;
  }

  /** A base64 blob member. AWS does not echo blob values in validation messages. */
  blob(field: string, rule: LengthRule & { required: true }): Buffer;
  blob(field: string, rule?: LengthRule & { required?: boolean }): Buffer | undefined;
  blob(field: string, rule: LengthRule & { required?: boolean } = {}): Buffer | undefined {
    const v = this.raw(field, rule.required ?? false);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 === 1) {
      throw serialization(`${field} is not valid base64`);
    }
    const buf = Buffer.from(v, 'base64');
    this.checkLength(field, buf.length, rule, undefined);
    return buf;
  }

  int(field: string, rule: { min?: number; max?: number } = {}): number | undefined {
    const v = this.raw(field, false);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw serialization(`${field} must be an integer`);
    if (rule.min !== undefined && v < rule.min) {
      throw constraint(memberName(field), String(v), `Member must have value greater than or equal to ${rule.min}`);
    }
    if (rule.max !== undefined && v > rule.max) {
      throw constraint(memberName(field), String(v), `Member must have value less than or equal to ${rule.max}`);
    }
    return v;
  }

  bool(field: string): boolean | undefined {
    const v = this.raw(field, false);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw serialization(`${field} must be a boolean`);
    return v;
  }

  /** A string→string map (EncryptionContext). */
  stringMap(field: string): Record<string, string> | undefined {
    const v = this.raw(field, false);
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw serialization(`${field} must be a map`);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v as Json)) {
      if (typeof val !== 'string') throw serialization(`${field} values must be strings`);
      out[k] = val;
    }
    return out;
  }

  /** A list of strings (TagKeys, GrantTokens). */
  stringList(field: string, rule: { required?: boolean } = {}): string[] | undefined {
    const v = this.raw(field, rule.required ?? false);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      throw serialization(`${field} must be a list of strings`);
    return v as string[];
  }

  /** A list of {TagKey, TagValue}. */
  tags(field: string, rule: { required?: boolean } = {}): { TagKey: string; TagValue: string }[] | undefined {
    const v = this.raw(field, rule.required ?? false);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw serialization(`${field} must be a list`);
    return v.map((t) => {
      if (typeof t !== 'object' || t === null) throw serialization(`${field} entries must be structures`);
      const tag = new Input(t as Json);
      return {
        TagKey: tag.str('TagKey', { required: true, min: 1, max: 128 }),
        TagValue: tag.str('TagValue', { required: true, min: 0, max: 256 }),
      };
    });
  }
}
