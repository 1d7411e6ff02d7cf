// Shared by the SQL backends (sqlite/, postgres/): standard SQL with named parameters.
import type { Keyset, Page } from "./repos";

// Keyset pagination over an integer position column: `before` reads backwards from the
// cursor, and the rows are put back in the order asked for.

export interface KeysetSql {
  /** Conditions on `col`, with $afterSeq / $beforeSeq parameters. */
  where: string[];
  orderBy: string;
  params: { afterSeq: number | null; beforeSeq: number | null; limit: number };
  /** Turns the rows read (limit + 1 at most) into the page and whether more lie beyond it. */
  page<T>(rows: T[]): Page<T>;
}

export function keyset(col: string, k: Keyset): KeysetSql {
  const where: string[] = [];
  if (k.afterSeq !== undefined) where.push(`${col} ${k.order === "asc" ? ">" : "<"} $afterSeq`);
  if (k.beforeSeq !== undefined) where.push(`${col} ${k.order === "asc" ? "<" : ">"} $beforeSeq`);
  // Reading backwards only when paging back from a cursor without a lower bound.
  const backwards = k.beforeSeq !== undefined && k.afterSeq === undefined;
  const dir = backwards ? (k.order === "asc" ? "DESC" : "ASC") : k.order === "asc" ? "ASC" : "DESC";
  return {
    where,
    orderBy: `${col} ${dir}`,
    params: { afterSeq: k.afterSeq ?? null, beforeSeq: k.beforeSeq ?? null, limit: k.limit + 1 },
    page<T>(rows: T[]) {
      const hasMore = rows.length > k.limit;
      const kept = rows.slice(0, k.limit);
      return { rows: backwards ? kept.reverse() : kept, hasMore };
    },
  };
}

/** The columns of a store that an update may set, with their named parameters. */
const STORE_FIELDS = { name: "name", metadata: "metadata", expiresDays: "expires_days", lastActiveAt: "last_active_at" } as const;

/** `UPDATE vector_stores` for the fields given (both SQL backends), or null when none is. */
export function storeUpdateSql(id: string, fields: { name?: string | null; metadata?: string; expiresDays?: number | null; lastActiveAt?: number }) {
  const sets: string[] = [];
  const params: Record<string, string | number | null> = { id };
  for (const [key, column] of Object.entries(STORE_FIELDS)) {
    const value = fields[key as keyof typeof STORE_FIELDS];
    if (value === undefined) continue;
    sets.push(`${column} = $${key}`);
    params[key] = value;
  }
  return sets.length ? { sql: `UPDATE vector_stores SET ${sets.join(", ")} WHERE id = $id`, params } : null;
}
