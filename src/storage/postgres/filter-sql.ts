import type { AttributeFilter, FilterScalar } from "../repos";

/** A filter compiled to Postgres SQL over `vsf.attributes` (JSON text), with its bound parameters. */
export interface CompiledFilter {
  sql: string;
  params: Record<string, string | number | boolean>;
}

const OPS = { eq: "=", ne: "=", gt: ">", gte: ">=", lt: "<", lte: "<=" } as const;

/**
 * The same rules as sqlite/filter-sql.ts: a comparison holds only between values of one JSON
 * type; text compares by bytes (COLLATE "C", as SQLite's BINARY), whatever the database's
 * collation. CASE keeps a cast from ever meeting a value of another type.
 */
export function filterSql(filter: AttributeFilter | null): CompiledFilter {
  if (!filter) return { sql: "TRUE", params: {} };
  const params: Record<string, string | number | boolean> = {};
  let n = 0;
  const bind = (v: string | number | boolean) => {
    const name = `f${n++}`;
    params[name] = v;
    return `$${name}`;
  };
  const matches = (key: string, v: FilterScalar, op: string) => {
    const x = `(vsf.attributes::jsonb -> ${bind(key)}::text)`;
    // As doubles, as SQLite compares them (numeric would round a bound double to 15 digits).
    if (typeof v === "number") return `(CASE WHEN jsonb_typeof(${x}) = 'number' THEN ${x}::float8 ${op} ${bind(v)}::float8 ELSE FALSE END)`;
    if (typeof v === "string") return `(CASE WHEN jsonb_typeof(${x}) = 'string' THEN (${x} #>> '{}') COLLATE "C" ${op} ${bind(v)}::text COLLATE "C" ELSE FALSE END)`;
    return `(${x} = '${v}'::jsonb)`;
  };
  const walk = (f: AttributeFilter): string => {
    if ("filters" in f) return `(${f.filters.map(walk).join(f.type === "and" ? " AND " : " OR ")})`;
    if (Array.isArray(f.value)) {
      // A file without the attribute is in no list.
      const any = f.value.length ? `COALESCE(${f.value.map((v) => matches(f.key, v, "=")).join(" OR ")}, FALSE)` : "FALSE";
      return f.type === "in" ? any : `NOT ${any}`;
    }
    const type = f.type as keyof typeof OPS;
    const cond = `COALESCE(${matches(f.key, f.value, OPS[type])}, FALSE)`;
    // A file without the attribute is "not equal" to every value.
    return type === "ne" ? `NOT ${cond}` : cond;
  };
  return { sql: walk(filter), params };
}
