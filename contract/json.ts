/**
 * Small helpers for reading parsed JSON (configuration files, key-service responses), shared by every
 * deployable so that "is this a JSON object" means the same thing everywhere.
 */

/** A JSON object: not null, not an array (the shape `JSON.parse` gives for `{...}`). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
