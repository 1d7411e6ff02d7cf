import { groupKey, type AttributeFilter, type ChunkChange, type ChunkHit, type ChunksRepo, type PlaceRun, type Scored } from "../repos";
import { dotEncoded } from "../vector-codec";
import type { Pg } from "./db";
import { visibleInStore } from "../sql-common";
import { filterSql, type CompiledFilter } from "./filter-sql";

const visibleIn = (filter: CompiledFilter) => visibleInStore(filter.sql);

const ID = `c.id::float8 AS id`;
const bytes = (b: Buffer | Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

export class PgChunksRepo implements ChunksRepo {
  /** `retainMs`: how long a change stays in the log for other processes' replicas to read. */
  constructor(
    private readonly db: Pg,
    private readonly retainMs: number,
  ) {}

  /** A filtered query's text is one of countless shapes: it goes unprepared. */
  private on(attributes: AttributeFilter | null) {
    return attributes ? this.db.adhoc : this.db;
  }

  async exact(storeId: string, attributes: AttributeFilter | null, now: number, query: Float32Array, k: number): Promise<Scored[]> {
    const filter = filterSql(attributes);
    const rows = await this.on(attributes).all<{ id: number; embedding: Uint8Array }>(`SELECT ${ID}, c.embedding FROM chunks c ${visibleIn(filter)} AND c.embedding IS NOT NULL`, {
      storeId,
      now,
      ...filter.params,
    });
    return rows
      .map((r) => ({ id: r.id, score: dotEncoded(query, bytes(r.embedding)) }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
  }

  async visible(storeId: string, attributes: AttributeFilter | null, now: number, ids: number[]): Promise<Set<number>> {
    if (ids.length === 0) return new Set();
    const filter = filterSql(attributes);
    const rows = await this.on(attributes).all<{ id: number }>(`SELECT ${ID} FROM chunks c ${visibleIn(filter)} AND c.id = ANY($ids::bigint[])`, { storeId, now, ids, ...filter.params });
    return new Set(rows.map((r) => r.id));
  }

  async visibleIds(storeId: string, attributes: AttributeFilter | null, now: number): Promise<Set<number>> {
    const filter = filterSql(attributes);
    const rows = await this.on(attributes).all<{ id: number }>(`SELECT ${ID} FROM chunks c ${visibleIn(filter)}`, { storeId, now, ...filter.params });
    return new Set(rows.map((r) => r.id));
  }

  async visibleGroups(storeId: string, attributes: AttributeFilter | null, now: number, groups: { fileId: string; cut: string; key?: string }[]): Promise<Set<string>> {
    if (groups.length === 0) return new Set();
    const filter = filterSql(attributes);
    const rows = await this.on(attributes).all<{ fileId: string; cut: string }>(
      `SELECT c.file_id AS "fileId", c.cut FROM unnest($files::text[], $cuts::text[]) AS c(file_id, cut) ${visibleIn(filter)}`,
      { storeId, now, files: groups.map((g) => g.fileId), cuts: groups.map((g) => g.cut), ...filter.params },
    );
    return new Set(rows.map((r) => groupKey(r.fileId, r.cut)));
  }

  async storeGroups(storeId: string, attributes: AttributeFilter | null, now: number): Promise<Set<string>> {
    const filter = filterSql(attributes);
    const rows = await this.on(attributes).all<{ fileId: string; cut: string }>(
      `SELECT c.file_id AS "fileId", c.cut FROM (SELECT file_id, cut FROM vector_store_files WHERE store_id = $storeId) c ${visibleIn(filter)}`,
      { storeId, now, ...filter.params },
    );
    return new Set(rows.map((r) => groupKey(r.fileId, r.cut)));
  }

  placeRuns(after: { fileId: string; cut: string } | null, limit: number): Promise<PlaceRun[]> {
    return this.db.all<PlaceRun>(
      `SELECT c.file_id AS "fileId", c.cut, MIN(c.id)::float8 AS first, MAX(c.id)::float8 AS last, COUNT(*)::float8 AS count,
              MIN(c.id - c.idx)::float8 AS lo, MAX(c.id - c.idx)::float8 AS hi
       FROM chunks c WHERE (c.file_id, c.cut) > ($fileId::text, $cut::text) GROUP BY c.file_id, c.cut ORDER BY c.file_id, c.cut LIMIT $limit`,
      { fileId: after?.fileId ?? "", cut: after?.cut ?? "", limit },
    );
  }

  placesOf(fileId: string, cut: string) {
    return this.db.all<{ id: number; idx: number }>(`SELECT ${ID}, c.idx FROM chunks c WHERE c.file_id = $fileId AND c.cut = $cut ORDER BY c.id`, { fileId, cut });
  }

  async neighbours(ids: number[], radius: number): Promise<Map<number, number[]>> {
    const rows = await this.db.all<{ id: number; near: number }>(
      `SELECT ${ID}, n.id::float8 AS near FROM chunks c
       JOIN chunks n ON n.file_id = c.file_id AND n.cut = c.cut AND n.idx BETWEEN c.idx - $radius::int AND c.idx + $radius::int
       WHERE c.id = ANY($ids::bigint[])`,
      { ids, radius },
    );
    const out = new Map<number, number[]>();
    for (const { id, near } of rows) (out.get(id) ?? out.set(id, []).get(id)!).push(near);
    return out;
  }

  async texts(ids: number[]): Promise<Map<number, string>> {
    const rows = await this.db.all<{ id: number; text: string }>(`SELECT ${ID}, c.text FROM chunks c WHERE c.id = ANY($ids::bigint[])`, { ids });
    return new Map(rows.map((r) => [r.id, r.text]));
  }

  textsAfter(afterId: number, limit: number) {
    return this.db.all<{ id: number; text: string }>(`SELECT ${ID}, c.text FROM chunks c WHERE c.id > $afterId ORDER BY c.id LIMIT $limit`, { afterId, limit });
  }

  changesAfter(seq: number, limit: number): Promise<ChunkChange[]> {
    return this.db.all<ChunkChange>(
      `SELECT ch.seq::float8 AS seq, ch.chunk_id::float8 AS id, ch.op, COALESCE(ch.text, c.text) AS text, c.file_id AS "fileId", c.cut, c.idx
       FROM chunk_changes ch LEFT JOIN chunks c ON ch.op = 'add' AND c.id = ch.chunk_id
       WHERE ch.seq > $seq ORDER BY ch.seq LIMIT $limit`,
      { seq, limit },
    );
  }

  async chunkIdsIssued(): Promise<number> {
    const r = await this.db.get<{ n: number }>(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END::float8 AS n FROM chunks_id_seq`);
    return r?.n ?? 0;
  }

  async lastChange(): Promise<number> {
    return (await this.db.get<{ seq: number }>(`SELECT seq::float8 AS seq FROM chunk_log_head`))!.seq;
  }

  async changeLogReaches(seq: number): Promise<boolean> {
    const oldest = (await this.db.get<{ s: number | null }>(`SELECT MIN(seq)::float8 AS s FROM chunk_changes`))!.s;
    // The log's numbers are contiguous (schema.ts), so a gap was pruned.
    return oldest === null ? (await this.lastChange()) <= seq : oldest <= seq + 1;
  }

  async pruneChanges(seq: number) {
    // Other processes read the same log; one that lags past what is kept finds a gap and
    // rebuilds its replica (search/keyword-search.ts).
    await this.db.run(`DELETE FROM chunk_changes WHERE seq <= $seq AND at <= now() - $retainMs::float8 * interval '1 millisecond'`, { seq, retainMs: this.retainMs });
  }

  async hits(storeId: string, ids: number[], attributes: AttributeFilter | null): Promise<Map<number, ChunkHit>> {
    const filter = filterSql(attributes);
    const rows = await this.on(attributes).all<ChunkHit>(
      `SELECT ${ID}, c.file_id AS "fileId", f.filename, c.text, c.location, vsf.attributes
       FROM chunks c JOIN files f ON f.id = c.file_id JOIN vector_store_files vsf ON vsf.file_id = c.file_id AND vsf.store_id = $storeId
       WHERE c.id = ANY($ids::bigint[]) AND ${filter.sql}`,
      { storeId, ids, ...filter.params },
    );
    return new Map(rows.map((r) => [r.id, r]));
  }

  async embeddings(ids: number[]): Promise<Map<number, Uint8Array>> {
    const rows = await this.db.all<{ id: number; embedding: Uint8Array }>(`SELECT ${ID}, c.embedding FROM chunks c WHERE c.id = ANY($ids::bigint[]) AND c.embedding IS NOT NULL`, { ids });
    return new Map(rows.map((r) => [r.id, bytes(r.embedding)]));
  }

  async embeddedAfter(afterId: number, limit: number) {
    const rows = await this.db.all<{ id: number; embedding: Uint8Array }>(
      `SELECT ${ID}, c.embedding FROM chunks c WHERE c.id > $afterId AND c.embedding IS NOT NULL ORDER BY c.id LIMIT $limit`,
      { afterId, limit },
    );
    return rows.map((r) => ({ id: r.id, embedding: bytes(r.embedding) }));
  }

  async embeddingsIn(ranges: Float64Array) {
    if (ranges.length === 0) return [];
    const firsts: number[] = [];
    const lasts: number[] = [];
    for (let i = 0; i < ranges.length; i += 2) firsts.push(ranges[i]!), lasts.push(ranges[i + 1]!);
    // one round trip for every range: a store of many small files is as many ranges
    const rows = await this.db.all<{ id: number; embedding: Uint8Array }>(
      `SELECT ${ID}, c.embedding FROM unnest($firsts::bigint[], $lasts::bigint[]) AS r(first, last)
       JOIN chunks c ON c.id BETWEEN r.first AND r.last WHERE c.embedding IS NOT NULL ORDER BY c.id`,
      { firsts, lasts },
    );
    return rows.map((r) => ({ id: r.id, embedding: bytes(r.embedding) }));
  }

  async fileChunks(fileId: string, offset: number, limit: number) {
    const rows = await this.db.all<{ index: number; text: string; location: string; tokens: number }>(
      `SELECT idx AS "index", text, location, tokens FROM chunks WHERE file_id = $fileId AND cut = 'auto' ORDER BY idx LIMIT $limit OFFSET $offset`,
      { fileId, limit, offset },
    );
    const total = (await this.db.get<{ n: number }>(`SELECT COUNT(*)::int AS n FROM chunks WHERE file_id = $fileId AND cut = 'auto'`, { fileId }))!.n;
    return { rows, total };
  }

  async chunkCount(): Promise<number> {
    return (await this.db.get<{ n: number }>(`SELECT COUNT(*)::int AS n FROM chunks`))!.n;
  }

  async getMeta(key: string): Promise<string | null> {
    return (await this.db.get<{ value: string }>(`SELECT value FROM meta WHERE key = $key`, { key }))?.value ?? null;
  }

  async setMeta(key: string, value: string) {
    await this.db.run(`INSERT INTO meta (key, value) VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, { key, value });
  }
}
