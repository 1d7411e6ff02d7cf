import type { SqlFilter } from "../storage/repos";
import { fail } from "../errors";

// OpenAI's attribute filters: comparison {type, key, value} and compound {type: and|or, filters}.
const COMPARISONS = { eq: "=", ne: "!=", gt: ">", gte: ">=", lt: "<", lte: "<=" } as const;
const MAX_DEPTH = 8;
const MAX_CONDITIONS = 64;

type Scalar = string | number | boolean;

/** Compiles a filter to SQL over `vsf.attributes`; every key and value is a bound parameter. */
export function compileFilter(filter: unknown, param = "filters"): SqlFilter {
  const params: Record<string, string | number | null> = {};
  let n = 0;
  const bind = (v: string | number | null) => {
    const name = `f${n++}`;
    params[name] = v;
    return `$${name}`;
  };
  const scalar = (v: Scalar) => (typeof v === "boolean" ? (v ? 1 : 0) : v);
  const isScalar = (v: unknown): v is Scalar => typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));

  const walk = (f: unknown, path: string, depth: number): string => {
    if (depth > MAX_DEPTH) throw fail("invalid_value", `${path}: filters nest at most ${MAX_DEPTH} levels deep`, param);
    if (n > MAX_CONDITIONS) throw fail("invalid_value", `${param}: at most ${MAX_CONDITIONS} conditions`, param);
    if (typeof f !== "object" || f === null || Array.isArray(f)) throw fail("invalid_value", `${path} must be an object with a "type"`, param);
    const o = f as Record<string, unknown>;
    const type = o.type;
    if (type === "and" || type === "or") {
      if (!Array.isArray(o.filters) || o.filters.length === 0) throw fail("invalid_value", `${path}.filters must be a non-empty array of filters`, param);
      const parts = o.filters.map((c, i) => walk(c, `${path}.filters[${i}]`, depth + 1));
      return `(${parts.join(type === "and" ? " AND " : " OR ")})`;
    }
    if (typeof type !== "string" || !(type in COMPARISONS || type === "in" || type === "nin"))
      throw fail("invalid_value", `${path}.type must be one of eq, ne, gt, gte, lt, lte, in, nin, and, or; got ${JSON.stringify(type)}`, param);
    if (typeof o.key !== "string" || o.key.length === 0 || o.key.length > 64) throw fail("invalid_value", `${path}.key must be an attribute name (1 to 64 characters)`, param);
    // json_each rather than a JSON path: any key, quotes and dots included, stays a plain bound value.
    const value = `(SELECT a.value FROM json_each(vsf.attributes) a WHERE a.key = ${bind(o.key)})`;
    if (type === "in" || type === "nin") {
      if (!Array.isArray(o.value) || o.value.length === 0 || !o.value.every(isScalar))
        throw fail("invalid_value", `${path}.value must be a non-empty array of strings, numbers or booleans for "${type}"`, param);
      const list = o.value.map((v) => bind(scalar(v))).join(", ");
      // A file without the attribute is "not in" any list.
      return type === "in" ? `${value} IN (${list})` : `(${value} IS NULL OR ${value} NOT IN (${list}))`;
    }
    if (!isScalar(o.value)) throw fail("invalid_value", `${path}.value must be a string, number or boolean`, param);
    if ((type === "gt" || type === "gte" || type === "lt" || type === "lte") && typeof o.value === "boolean")
      throw fail("invalid_value", `${path}: "${type}" compares numbers or strings, not booleans`, param);
    const op = COMPARISONS[type as keyof typeof COMPARISONS];
    const cmp = `${value} ${op} ${bind(scalar(o.value))}`;
    // SQL's NULL != x is NULL; for a filter, a file without the attribute is "not equal".
    return type === "ne" ? `(${value} IS NULL OR ${cmp})` : cmp;
  };

  if (filter === undefined || filter === null) return { sql: "1", params: {} };
  return { sql: walk(filter, param, 0), params };
}
