// Shared by the SQL backends (sqlite/, postgres/): standard SQL with named parameters.
import type { Keyset, Page, Repos } from "./repos";

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

// A store membership's status follows its file (processed -> completed, error -> failed) and,
// for a cut other than 'auto', then that cut's job; a failure reads its typed outcome from the job.
export const STORE_MEMBERS = `vector_store_files vsf JOIN files f ON f.id = vsf.file_id
  LEFT JOIN jobs ja ON ja.file_id = vsf.file_id AND ja.cut = 'auto'
  LEFT JOIN jobs jc ON jc.file_id = vsf.file_id AND jc.cut = vsf.cut AND vsf.cut <> 'auto'`;
export const MEMBER_STATUS = `CASE WHEN vsf.cancelled = 1 THEN 'cancelled' WHEN f.status = 'error' THEN 'failed' WHEN f.status <> 'processed' THEN 'in_progress'
  WHEN vsf.cut = 'auto' THEN 'completed' WHEN jc.state = 'done' THEN 'completed' WHEN jc.state = 'failed' THEN 'failed' ELSE 'in_progress' END`;
/** A file (aliased f) not expired at $now. */
export const LIVE_FILE = `(f.expires_at IS NULL OR f.expires_at > $now)`;

/**
 * The chunks (aliased c) a store's search may see, given a compiled attribute filter: of the
 * cut its membership asks for, members not cancelled, files processed and not expired, a cut
 * other than 'auto' done.
 */
export function visibleInStore(filterSql: string, { live = true } = {}) {
  return `JOIN vector_store_files vsf ON vsf.file_id = c.file_id AND vsf.cut = c.cut AND vsf.store_id = $storeId AND vsf.cancelled = 0
    JOIN files f ON f.id = c.file_id AND f.status = 'processed'${live ? ` AND ${LIVE_FILE}` : ""}
    WHERE (c.cut = 'auto' OR EXISTS (SELECT 1 FROM jobs j WHERE j.file_id = c.file_id AND j.cut = c.cut AND j.state = 'done'))
      AND (${filterSql})`;
}

/**
 * A row's place in its list, live or kept by its tombstone after a delete (files, stores and
 * store memberships keep one), so that a page that ended on it still continues. `where` names
 * the row in both tables; `seq` is the column as read (PostgreSQL casts it). A membership
 * removed and added again is at its new place (a cursor at its old one would list it again
 * and again); a page that ended on it at the old place continues from the new one.
 */
export const placeSql = (live: string, tombstones: string, where: string, seq = "seq") =>
  `SELECT ${seq} AS seq FROM ${live} WHERE ${where} UNION ALL SELECT ${seq} FROM ${tombstones} WHERE ${where} LIMIT 1`;

/**
 * How long a deleted file's, store's or membership's place is kept for a client paging
 * through its list (a week), after which the expiry sweep removes it and a cursor naming it
 * is refused like any unknown one.
 */
export const TOMBSTONE_SECONDS = 7 * 24 * 3600;

// Tombstones forgotten per statement: a backlog (those written before tombstones had a time all
// fall due together) goes in steps, with other writes between them, not in one long delete.
const PRUNE_STEP = 5000;

/** Forgets tombstones older than `beforeS`, a step at a time; how many. */
export async function pruneTombstones(repos: Pick<Repos, "files" | "stores">, beforeS: number): Promise<number> {
  let total = 0;
  for (const repo of [repos.files, repos.stores]) {
    for (;;) {
      const n = await repo.pruneTombstones(beforeS, PRUNE_STEP);
      total += n;
      if (n < PRUNE_STEP) break;
    }
  }
  return total;
}
