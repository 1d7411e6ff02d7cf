// Shared by the SQL backends (sqlite/, postgres/): the conditions use only standard SQL.
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
