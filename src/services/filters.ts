import { fail } from "../errors";
import type { AttributeFilter, FilterScalar } from "../storage/repos";

// OpenAI's attribute filters: comparison {type, key, value} and compound {type: and|or, filters}.
// Checked here once; each storage backend compiles the checked tree to its own queries.
const COMPARISONS = new Set(["eq", "ne", "gt", "gte", "lt", "lte"]);
const ORDERED = new Set(["gt", "gte", "lt", "lte"]);
const MAX_DEPTH = 8;
const MAX_CONDITIONS = 64;

const isScalar = (v: unknown): v is FilterScalar => typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));

/** Validates a request's `filters`; null when there is none. */
export function parseFilter(filter: unknown, param = "filters"): AttributeFilter | null {
  let conditions = 0;
  const walk = (f: unknown, path: string, depth: number): AttributeFilter => {
    if (depth > MAX_DEPTH) throw fail("invalid_value", `${path}: filters nest at most ${MAX_DEPTH} levels deep`, param);
    if (typeof f !== "object" || f === null || Array.isArray(f)) throw fail("invalid_value", `${path} must be an object with a "type"`, param);
    const o = f as Record<string, unknown>;
    const type = o.type;
    if (type === "and" || type === "or") {
      if (!Array.isArray(o.filters) || o.filters.length === 0) throw fail("invalid_value", `${path}.filters must be a non-empty array of filters`, param);
      return { type, filters: o.filters.map((c, i) => walk(c, `${path}.filters[${i}]`, depth + 1)) };
    }
    if (typeof type !== "string" || !(COMPARISONS.has(type) || type === "in" || type === "nin"))
      throw fail("invalid_value", `${path}.type must be one of eq, ne, gt, gte, lt, lte, in, nin, and, or; got ${JSON.stringify(type)}`, param);
    if (++conditions > MAX_CONDITIONS) throw fail("invalid_value", `${param}: at most ${MAX_CONDITIONS} conditions`, param);
    // (any name an attribute may have, the empty one included)
    if (typeof o.key !== "string" || o.key.length > 64) throw fail("invalid_value", `${path}.key must be an attribute name (at most 64 characters)`, param);
    if (type === "in" || type === "nin") {
      // (an empty list is no value: "in" matches no file, "nin" every file)
      if (!Array.isArray(o.value) || !o.value.every(isScalar))
        throw fail("invalid_value", `${path}.value must be an array of strings, numbers or booleans for "${type}"`, param);
      if (o.value.length > MAX_CONDITIONS) throw fail("invalid_value", `${path}.value: at most ${MAX_CONDITIONS} values`, param);
      return { type, key: o.key, value: o.value };
    }
    if (!isScalar(o.value)) throw fail("invalid_value", `${path}.value must be a string, number or boolean`, param);
    if (ORDERED.has(type) && typeof o.value === "boolean") throw fail("invalid_value", `${path}: "${type}" compares numbers or strings, not booleans`, param);
    return { type: type as "eq", key: o.key, value: o.value };
  };
  if (filter === undefined || filter === null) return null;
  return walk(filter, param, 0);
}
