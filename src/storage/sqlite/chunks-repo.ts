import { Database } from "bun:sqlite";
import { dotEncoded } from "../vector-codec";
import { groupKey, type AttributeFilter, type ChunkChange, type ChunkHit, type ChunksRepo, type PlaceRun, type Scored } from "../repos";
import { visibleInStore } from "../sql-common";
import { filterSql, type CompiledFilter } from "./filter-sql";
import type { WriteClock } from "./files-repo";

const visibleIn = (filter: CompiledFilter) => visibleInStore(filter.sql);

const inStore = (filter: CompiledFilter) => `FROM chunks c ${visibleIn(filter)}`;

// File cuts whose visibility is kept between writes, over all stores and filters.
const SEEN_CUTS = 500_000;
const SEEN_SCOPES = 1_000;
const SEEN_FILTER_CHARS = 4_096;

export class SqliteChunksRepo implements ChunksRepo {
  /**
   * Which file cuts each store (and filter) sees, as far as asked, with each visible file's
   * expiry (null: none), kept between writes: a search asks it of the files of its ~200 hits,
   * about 4 µs a cut in SQL (1.6 ms of a hybrid search at 1M chunks), and most of those files
   * were asked about by the searches before. Every write to files, stores and chunks goes
   * through this process's writer (only the data directory's lock holder writes them), so the
   * write clock says when to forget; expiry, which comes without a write, is checked here
   * against the search's time. A write that may change what a store sees forgets everything;
   * the bookkeeping writes (writes.ts, KEEPS_VISIBILITY: an idle server's queue poll every few
   * seconds among them) keep it. At most SEEN_CUTS cuts (about 100 bytes each) for at most
   * SEEN_SCOPES stores and filters; a filter of more than SEEN_FILTER_CHARS is not kept.
   */
  private readonly seen = new Map<string, Map<string, number | null | false>>();
  /**
   * Every cut each store (and filter) sees, with its file's expiry, kept by the same rules: a
   * search of a store that sees few chunks reads them all (storeGroups), about 0.7 ms a search
   * for a store of 420 files, and between writes the answer is the same.
   */
  private readonly seenWhole = new Map<string, Map<string, number | null>>();
  private seenGeneration = -1;
  private seenSize = 0;

  /** Search's reads of single rows at random (see openPointReads); the main connection when there is none. */
  private readonly points: Database;

  constructor(
    private readonly db: Database,
    private readonly clock: WriteClock | null = null,
    points?: Database,
  ) {
    this.points = points ?? db;
  }

  /** Exact cosine search over the store's chunks: for small stores and narrow filters, where HNSW plus post-filtering would miss. */
  async exact(storeId: string, attributes: AttributeFilter | null, now: number, query: Float32Array, k: number): Promise<Scored[]> {
    const filter = filterSql(attributes);
    const top: Scored[] = [];
    let floor = -Infinity;
    for (const row of this.db.query(`SELECT c.id, c.embedding ${inStore(filter)} AND c.embedding IS NOT NULL`).iterate({ storeId, now, ...filter.params } as never) as Iterable<{
      id: number;
      embedding: Uint8Array;
    }>) {
      const score = dotEncoded(query, row.embedding);
      if (top.length >= k && score <= floor) continue;
      top.push({ id: row.id, score });
      if (top.length > k * 2) {
        top.sort((a, b) => b.score - a.score);
        top.length = k;
        floor = top[k - 1]!.score;
      }
    }
    return top.sort((a, b) => b.score - a.score).slice(0, k);
  }

  /** Which of these chunk ids the store's search may see. */
  async visible(storeId: string, attributes: AttributeFilter | null, now: number, ids: number[]): Promise<Set<number>> {
    if (ids.length === 0) return new Set();
    const filter = filterSql(attributes);
    // CROSS JOIN keeps SQLite's planner starting from the ids, not from every file of the
    // store; the planner goes to the table for an id, so INDEXED BY names the smaller index.
    const rows = this.points
      .query(
        `SELECT c.id FROM json_each($ids) j CROSS JOIN chunks c INDEXED BY chunks_place ON c.id = j.value ${visibleIn(filter)}`,
      )
      .all({ storeId, now, ids: JSON.stringify(ids), ...filter.params } as never) as { id: number }[];
    return new Set(rows.map((r) => r.id));
  }

  async visibleIds(storeId: string, attributes: AttributeFilter | null, now: number): Promise<Set<number>> {
    const filter = filterSql(attributes);
    const rows = this.db.query(`SELECT c.id ${inStore(filter)}`).values({ storeId, now, ...filter.params } as never) as [number][];
    return new Set(rows.map((r) => r[0]));
  }

  async visibleGroups(storeId: string, attributes: AttributeFilter | null, now: number, groups: { fileId: string; cut: string; key?: string }[]): Promise<Set<string>> {
    if (groups.length === 0) return new Set();
    const filterKey = JSON.stringify(attributes);
    if (!this.keeping(filterKey)) return this.readVisibleGroups(storeId, attributes, now, groups);
    const scope = `${storeId}\u0000${filterKey}`;
    let known = this.seen.get(scope);
    if (!known) this.seen.set(scope, (known = new Map()));
    const out = new Set<string>();
    const ask: { fileId: string; cut: string; key?: string }[] = [];
    for (const g of groups) {
      // (a key made afresh is hashed afresh: the places' own keys are hashed once)
      const key = g.key ?? groupKey(g.fileId, g.cut);
      const expires = known.get(key);
      if (expires === undefined) ask.push(g);
      else if (expires !== false && (expires === null || expires > now)) out.add(key);
    }
    if (ask.length === 0) return out;
    const filter = filterSql(attributes);
    const rows = this.points
      .query(`SELECT c.file_id AS fileId, c.cut, f.expires_at AS expiresAt FROM (SELECT json_extract(j.value, '$[0]') AS file_id, json_extract(j.value, '$[1]') AS cut FROM json_each($groups) j) c ${visibleInStore(filter.sql, { live: false })}`)
      .all({ storeId, groups: JSON.stringify(ask.map((g) => [g.fileId, g.cut])), ...filter.params } as never) as { fileId: string; cut: string; expiresAt: number | null }[];
    const found = new Map(rows.map((r) => [groupKey(r.fileId, r.cut), r.expiresAt]));
    for (const g of ask) {
      const key = g.key ?? groupKey(g.fileId, g.cut);
      const expires = found.has(key) ? found.get(key)! : false;
      if (!known.has(key)) this.seenSize++;
      known.set(key, expires);
      if (expires !== false && (expires === null || expires > now)) out.add(key);
    }
    return out;
  }

  private readVisibleGroups(storeId: string, attributes: AttributeFilter | null, now: number, groups: { fileId: string; cut: string }[]): Set<string> {
    const filter = filterSql(attributes);
    const rows = this.points
      .query(`SELECT c.file_id AS fileId, c.cut FROM (SELECT json_extract(j.value, '$[0]') AS file_id, json_extract(j.value, '$[1]') AS cut FROM json_each($groups) j) c ${visibleIn(filter)}`)
      .all({ storeId, now, groups: JSON.stringify(groups.map((g) => [g.fileId, g.cut])), ...filter.params } as never) as { fileId: string; cut: string }[];
    return new Set(rows.map((r) => groupKey(r.fileId, r.cut)));
  }

  async storeGroups(storeId: string, attributes: AttributeFilter | null, now: number): Promise<Set<string>> {
    const filterKey = JSON.stringify(attributes);
    const keep = this.keeping(filterKey);
    const scope = `${storeId}\u0000${filterKey}`;
    let whole = keep ? this.seenWhole.get(scope) : undefined;
    if (!whole) {
      // Expired files too, with their expiry: what is kept stays true as the clock moves on.
      const filter = filterSql(attributes);
      const rows = this.db
        .query(`SELECT c.file_id AS fileId, c.cut, f.expires_at AS expiresAt FROM (SELECT file_id, cut FROM vector_store_files WHERE store_id = $storeId) c ${visibleInStore(filter.sql, { live: false })}`)
        .all({ storeId, ...filter.params } as never) as { fileId: string; cut: string; expiresAt: number | null }[];
      whole = new Map(rows.map((r) => [groupKey(r.fileId, r.cut), r.expiresAt]));
      // A store too large to keep beside the rest is answered without being kept: kept, it
      // would empty both maps at the next search.
      if (keep && this.seenSize + whole.size <= SEEN_CUTS) {
        this.seenWhole.set(scope, whole);
        this.seenSize += whole.size;
      }
    }
    const out = new Set<string>();
    for (const [key, expires] of whole) if (expires === null || expires > now) out.add(key);
    return out;
  }

  /**
   * Whether answers may be kept now, forgetting those kept before the last write that may
   * have changed them (or past the bounds): not while a write is under way (it may commit at
   * any moment), nor for a long filter.
   */
  private keeping(filterKey: string) {
    const clock = this.clock;
    if (clock === null || clock.inflight > 0 || filterKey.length > SEEN_FILTER_CHARS) return false;
    if (this.seenGeneration !== clock.generation || this.seenSize > SEEN_CUTS || this.seen.size + this.seenWhole.size >= SEEN_SCOPES) {
      this.seen.clear();
      this.seenWhole.clear();
      this.seenSize = 0;
      this.seenGeneration = clock.generation;
    }
    return true;
  }

  async placeRuns(after: { fileId: string; cut: string } | null, limit: number): Promise<PlaceRun[]> {
    // One row per cut, aggregated along the (file_id, cut, idx) index: no row object per chunk.
    const read = (db: Database) =>
      db
        .query(
          `SELECT file_id AS fileId, cut, MIN(id) AS first, MAX(id) AS last, COUNT(*) AS count, MIN(id - idx) AS lo, MAX(id - idx) AS hi
           FROM chunks WHERE (file_id, cut) > ($fileId, $cut) GROUP BY file_id, cut ORDER BY file_id, cut LIMIT $limit`,
        )
        .all({ fileId: after?.fileId ?? "", cut: after?.cut ?? "", limit }) as PlaceRun[];
    // Read through a connection of its own: through this one the scan (once, at start) would
    // fill the page cache searches use with an index read once (about 50 MB at 1M chunks).
    if (this.db.filename === ":memory:" || this.db.filename === "") return read(this.db);
    const scan = new Database(this.db.filename, { readonly: true, strict: true });
    try {
      scan.exec("PRAGMA busy_timeout = 5000");
      return read(scan);
    } finally {
      scan.close();
    }
  }

  async placesOf(fileId: string, cut: string) {
    return this.db.query(`SELECT id, idx FROM chunks WHERE file_id = $fileId AND cut = $cut ORDER BY id`).all({ fileId, cut }) as { id: number; idx: number }[];
  }

  async neighbours(ids: number[], radius: number): Promise<Map<number, number[]>> {
    const rows = this.points
      .query(
        `SELECT c.id, n.id AS near FROM json_each($ids) j CROSS JOIN chunks c INDEXED BY chunks_place ON c.id = j.value
         JOIN chunks n ON n.file_id = c.file_id AND n.cut = c.cut AND n.idx BETWEEN c.idx - $radius AND c.idx + $radius`,
      )
      .values({ ids: JSON.stringify(ids), radius }) as [number, number][];
    const out = new Map<number, number[]>();
    for (const [id, near] of rows) (out.get(id) ?? out.set(id, []).get(id)!).push(near);
    return out;
  }

  async texts(ids: number[]): Promise<Map<number, string>> {
    const rows = this.points
      .query(`SELECT c.id, c.text FROM json_each($ids) j CROSS JOIN chunks c ON c.id = j.value`)
      .all({ ids: JSON.stringify(ids) }) as { id: number; text: string }[];
    return new Map(rows.map((r) => [r.id, r.text]));
  }

  async textsAfter(afterId: number, limit: number) {
    return this.db.query(`SELECT id, text FROM chunks WHERE id > $afterId ORDER BY id LIMIT $limit`).all({ afterId, limit }) as { id: number; text: string }[];
  }

  async changesAfter(seq: number, limit: number): Promise<ChunkChange[]> {
    return this.db
      .query(
        `SELECT ch.seq, ch.chunk_id AS id, ch.op, COALESCE(ch.text, c.text) AS text, c.file_id AS fileId, c.cut, c.idx FROM chunk_changes ch LEFT JOIN chunks c ON ch.op = 'add' AND c.id = ch.chunk_id
         WHERE ch.seq > $seq ORDER BY ch.seq LIMIT $limit`,
      )
      .all({ seq, limit }) as ChunkChange[];
  }

  async chunkIdsIssued(): Promise<number> {
    const r = this.db.query(`SELECT seq FROM sqlite_sequence WHERE name = 'chunks'`).get() as { seq: number } | null;
    return r?.seq ?? 0;
  }

  async lastChange(): Promise<number> {
    // AUTOINCREMENT keeps the highest sequence ever given out even when the log is pruned empty.
    const r = this.db.query(`SELECT seq FROM sqlite_sequence WHERE name = 'chunk_changes'`).get() as { seq: number } | null;
    return r?.seq ?? 0;
  }

  async changeLogReaches(seq: number): Promise<boolean> {
    const oldest = (this.db.query(`SELECT MIN(seq) AS s FROM chunk_changes`).get() as { s: number | null }).s;
    // Sequences are contiguous (a rolled-back insert gives its number back), so a gap was pruned.
    return oldest === null ? (await this.lastChange()) <= seq : oldest <= seq + 1;
  }

  async pruneChanges(seq: number) {
    this.db.query(`DELETE FROM chunk_changes WHERE seq <= $seq`).run({ seq });
  }

  async hits(storeId: string, ids: number[], attributes: AttributeFilter | null): Promise<Map<number, ChunkHit>> {
    const filter = filterSql(attributes);
    const rows = this.points
      .query(
        `SELECT c.id, c.file_id AS fileId, f.filename, c.text, c.location, vsf.attributes
         FROM json_each($ids) j CROSS JOIN chunks c ON c.id = j.value
         JOIN files f ON f.id = c.file_id JOIN vector_store_files vsf ON vsf.file_id = c.file_id AND vsf.store_id = $storeId
         WHERE ${filter.sql}`,
      )
      .all({ storeId, ids: JSON.stringify(ids), ...filter.params } as never) as ChunkHit[];
    return new Map(rows.map((r) => [r.id, r]));
  }

  async embeddings(ids: number[]): Promise<Map<number, Uint8Array>> {
    const rows = this.points
      .query(`SELECT c.id, c.embedding FROM json_each($ids) j CROSS JOIN chunks c ON c.id = j.value WHERE c.embedding IS NOT NULL`)
      .all({ ids: JSON.stringify(ids) }) as { id: number; embedding: Uint8Array }[];
    return new Map(rows.map((r) => [r.id, r.embedding]));
  }

  /** Embedded chunks after `afterId`, in id order: how the vector index catches up. */
  async embeddedAfter(afterId: number, limit: number): Promise<{ id: number; embedding: Uint8Array }[]> {
    return this.db
      .query(`SELECT id, embedding FROM chunks WHERE id > $afterId AND embedding IS NOT NULL ORDER BY id LIMIT $limit`)
      .all({ afterId, limit }) as { id: number; embedding: Uint8Array }[];
  }

  async embeddingsIn(ranges: Float64Array): Promise<{ id: number; embedding: Uint8Array }[]> {
    const q = this.db.query(`SELECT id, embedding FROM chunks WHERE id BETWEEN $first AND $last AND embedding IS NOT NULL ORDER BY id`);
    const out: { id: number; embedding: Uint8Array }[] = [];
    for (let i = 0; i < ranges.length; i += 2) for (const r of q.all({ first: ranges[i]!, last: ranges[i + 1]! }) as { id: number; embedding: Uint8Array }[]) out.push(r);
    return out;
  }

  async fileChunks(fileId: string, offset: number, limit: number) {
    const rows = this.db
      .query(`SELECT idx AS "index", text, location, tokens FROM chunks WHERE file_id = $fileId AND cut = 'auto' ORDER BY idx LIMIT $limit OFFSET $offset`)
      .all({ fileId, limit, offset }) as { index: number; text: string; location: string; tokens: number }[];
    const total = (this.db.query(`SELECT COUNT(*) AS n FROM chunks WHERE file_id = $fileId AND cut = 'auto'`).get({ fileId }) as { n: number }).n;
    return { rows, total };
  }

  async chunkCount(): Promise<number> {
    return (this.db.query(`SELECT COUNT(*) AS n FROM chunks`).get() as { n: number }).n;
  }

  async getMeta(key: string): Promise<string | null> {
    const r = this.db.query(`SELECT value FROM meta WHERE key = $key`).get({ key }) as { value: string } | null;
    return r?.value ?? null;
  }

  async setMeta(key: string, value: string) {
    this.db.query(`INSERT INTO meta (key, value) VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run({ key, value });
  }
}
