import type { AttributeFilter, FilterScalar } from "../repos";

/** A filter compiled to SQLite SQL over `vsf.attributes`, with its bound parameters. */
export interface CompiledFilter {
  sql: string;
  params: Record<string, string | number>;
}

// json_each's type of a JSON value, per kind of filter value: a comparison holds only between
// values of one type, so "5" never equals 5 and true never equals 1.
const typeOf = (v: FilterScalar) => (typeof v === "number" ? `a.type IN ('integer', 'real')` : typeof v === "string" ? `a.type = 'text'` : `a.type = '${v}'`);
const OPS = { eq: "=", ne: "=", gt: ">", gte: ">=", lt: "<", lte: "<=" } as const;

/** Every key and value is a bound parameter; json_each rather than a JSON path keeps any key (quotes, dots) a plain value. */
export function filterSql(filter: AttributeFilter | null): CompiledFilter {
  if (!filter) return { sql: "1", params: {} };
  const params: Record<string, string | number> = {};
  let n = 0;
  const bind = (v: string | number) => {
    const name = `f${n++}`;
    params[name] = v;
    return `$${name}`;
  };
  const matches = (v: FilterScalar, op: string) => (typeof v === "boolean" ? typeOf(v) : `${typeOf(v)} AND a.value ${op} ${bind(v)}`);
  const has = (key: string, cond: string) => `EXISTS (SELECT 1 FROM json_each(vsf.attributes) a WHERE a.key = ${bind(key)} AND (${cond}))`;
  const walk = (f: AttributeFilter): string => {
    if ("filters" in f) return `(${f.filters.map(walk).join(f.type === "and" ? " AND " : " OR ")})`;
    if (Array.isArray(f.value)) {
      const any = f.value.length ? has(f.key, f.value.map((v) => `(${matches(v, "=")})`).join(" OR ")) : "0";
      // A file without the attribute is in no list.
      return f.type === "in" ? any : `NOT ${any}`;
    }
    const type = f.type as keyof typeof OPS;
    const cond = has(f.key, matches(f.value, OPS[type]));
    // A file without the attribute is "not equal" to every value.
    return type === "ne" ? `NOT ${cond}` : cond;
  };
  return { sql: walk(filter), params };
}
