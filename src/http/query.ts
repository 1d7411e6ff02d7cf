import { fail } from "../errors";

type Query = Record<string, string | undefined>;

/** An integer query parameter within [min, max], or the default when absent. */
export function intParam(q: Query, name: string, min: number, max: number, dflt: number): number {
  const raw = q[name];
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max)
    throw fail("invalid_value", `Invalid '${name}': expected an integer between ${min} and ${max}, got '${raw}'.`, name);
  return Number(raw);
}

export function enumParam<T extends string>(q: Query, name: string, options: readonly T[], dflt: T): T {
  const raw = q[name];
  if (raw === undefined) return dflt;
  if (!options.includes(raw as T))
    throw fail("invalid_value", `Invalid '${name}': expected one of ${options.map((o) => `'${o}'`).join(", ")}, got '${raw}'.`, name);
  return raw as T;
}

export function stringParam(q: Query, name: string): string | undefined {
  const raw = q[name];
  if (raw === undefined) return undefined;
  if (raw === "") throw fail("invalid_value", `Invalid '${name}': it must not be empty.`, name);
  return raw;
}
