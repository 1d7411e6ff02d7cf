import type { Database } from "bun:sqlite";
import { newVectorStoreId } from "../../util/ids";
import { fileCountsOf, type BatchRow, type Chunking, type FileCounts, type Keyset, type StoreFileRow, type StoreFileStatus, type StoreRow, type StoresRepo } from "../repos";
import { ensureCut, pruneCuts } from "./ingestion-repo";
import { keyset, LIVE_FILE, MEMBER_STATUS, STORE_MEMBERS, storeUpdateSql, placeSql } from "../sql-common";

const STORE_COLS = `id, project_id AS projectId, name, is_default AS isDefault, created_at AS createdAt, last_active_at AS lastActiveAt,
  metadata, expires_days AS expiresDays, chunking`;
const FILE_COLS = `vsf.store_id AS storeId, vsf.file_id AS fileId, vsf.created_at AS createdAt, vsf.attributes, vsf.chunking, vsf.cut, vsf.batch_id AS batchId,
  ${MEMBER_STATUS} AS status,
  CASE WHEN f.status = 'error' THEN ja.error_code WHEN jc.state = 'failed' THEN jc.error_code END AS errorCode,
  CASE WHEN f.status = 'error' THEN COALESCE(ja.error, f.status_details) WHEN jc.state = 'failed' THEN jc.error END AS error,
  COALESCE((SELECT cb.bytes FROM cut_bytes cb WHERE cb.file_id = vsf.file_id AND cb.cut = vsf.cut), 0) AS usageBytes`;

const defaultStoreId = (db: Database, projectId: string) =>
  (db.query(`SELECT id FROM vector_stores WHERE project_id = $projectId AND is_default = 1`).get({ projectId }) as { id: string } | null)?.id ?? null;

/** The project's default store, created on first use; callable inside another transaction. */
export function ensureDefaultStore(db: Database, projectId: string, nowS: number): string {
  const found = defaultStoreId(db, projectId);
  if (found) return found;
  const id = newVectorStoreId();
  db.query(
    `INSERT INTO vector_stores (id, project_id, name, is_default, created_at, last_active_at) VALUES ($id, $projectId, 'knowledge base', 1, $now, $now)`,
  ).run({ id, projectId, now: nowS });
  return id;
}

export class SqliteStoresRepo implements StoresRepo {
  constructor(private readonly db: Database) {}

  async ensureDefault(projectId: string, nowS: number) {
    // A read first: only a project's first visit takes the write lock.
    return defaultStoreId(this.db, projectId) ?? this.db.transaction(() => ensureDefaultStore(this.db, projectId, nowS)).immediate();
  }

  /** Files ingested before stores existed join their project's default store. */
  async adoptOrphans(purposes: readonly string[], nowS: number) {
    return this.db.transaction(() => {
      const projects = this.db
        .query(
          `SELECT DISTINCT f.project_id AS projectId FROM files f
           WHERE f.purpose IN (SELECT value FROM json_each($purposes)) AND NOT EXISTS (SELECT 1 FROM vector_store_files v WHERE v.file_id = f.id)`,
        )
        .all({ purposes: JSON.stringify(purposes) }) as { projectId: string }[];
      let n = 0;
      for (const { projectId } of projects) {
        const storeId = ensureDefaultStore(this.db, projectId, nowS);
        n += this.db
          .query(
            `INSERT OR IGNORE INTO vector_store_files (store_id, file_id, created_at)
             SELECT $storeId, id, created_at FROM files f WHERE f.project_id = $projectId AND f.purpose IN (SELECT value FROM json_each($purposes))
               AND NOT EXISTS (SELECT 1 FROM vector_store_files v WHERE v.file_id = f.id)`,
          )
          .run({ storeId, projectId, purposes: JSON.stringify(purposes) }).changes;
      }
      return n;
    }).immediate();
  }

  async create(row: StoreRow, fileIds: string[], attributes: string, chunking: Chunking, nowMs: number) {
    this.db.transaction(() => {
      this.db
        .query(
          `INSERT INTO vector_stores (id, project_id, name, is_default, created_at, last_active_at, metadata, expires_days, chunking)
           VALUES ($id, $projectId, $name, 0, $createdAt, $lastActiveAt, $metadata, $expiresDays, $chunking)`,
        )
        .run({
          id: row.id,
          projectId: row.projectId,
          name: row.name,
          createdAt: row.createdAt,
          lastActiveAt: row.lastActiveAt,
          metadata: row.metadata,
          expiresDays: row.expiresDays,
          chunking: row.chunking,
        });
      for (const fileId of fileIds) this.attachSync(row.id, fileId, row.createdAt, attributes, chunking, null, nowMs);
    }).immediate();
  }

  async get(projectId: string, id: string) {
    return (this.db.query(`SELECT ${STORE_COLS} FROM vector_stores WHERE id = $id AND project_id = $projectId`).get({ id, projectId }) as StoreRow | null) ?? null;
  }

  async list(projectId: string, q: Keyset) {
    const k = keyset("seq", q);
    const where = [`project_id = $projectId`, ...k.where];
    const rows = this.db
      .query(`SELECT ${STORE_COLS} FROM vector_stores WHERE ${where.join(" AND ")} ORDER BY ${k.orderBy} LIMIT $limit`)
      .all({ projectId, ...k.params } as never) as StoreRow[];
    return k.page(rows);
  }

  async seq(projectId: string, id: string) {
    const r = this.db
      .query(placeSql("vector_stores", "vector_store_tombstones", "id = $id AND project_id = $projectId"))
      .get({ id, projectId }) as { seq: number } | null;
    return r?.seq ?? null;
  }

  async update(id: string, fields: { name?: string | null; metadata?: string; expiresDays?: number | null; lastActiveAt?: number }) {
    const u = storeUpdateSql(id, fields);
    if (u) this.db.query(u.sql).run(u.params as never);
  }

  async remove(id: string) {
    return this.db.transaction(() => {
      const fileIds = this.memberIds(`store_id = $id`, { id });
      const gone = this.db.query(`DELETE FROM vector_stores WHERE id = $id`).run({ id }).changes > 0;
      pruneCuts(this.db, fileIds);
      return gone;
    }).immediate();
  }

  private memberIds(where: string, params: Record<string, string>) {
    return (this.db.query(`SELECT file_id AS id FROM vector_store_files WHERE ${where}`).all(params as never) as { id: string }[]).map((r) => r.id);
  }

  async fileCounts(storeId: string, now: number, batchId?: string): Promise<FileCounts> {
    // A batch's own members (as many as one request attached), or a store's while more files
    // are past their expiry than it has members (see keptIsCheaper): summed over the members.
    if (batchId || !this.keptIsCheaper(storeId, now)) {
      const rows = this.db
        .query(
          `SELECT ${MEMBER_STATUS} AS status, COUNT(*) AS n FROM ${STORE_MEMBERS}
           WHERE vsf.store_id = $storeId AND ${LIVE_FILE} ${batchId ? "AND vsf.batch_id = $batchId" : ""} GROUP BY 1`,
        )
        .all({ storeId, now, ...(batchId ? { batchId } : {}) } as never) as { status: StoreFileStatus; n: number }[];
      return fileCountsOf(rows);
    }
    // Kept per store by triggers (the migration that made store_file_counts), less the files
    // past their expiry that the sweeper has not deleted yet: read from those files, through
    // files_expires (the planner, left to itself, walks every member of the store instead).
    // One statement, so a sweep committing meanwhile is seen by both sides or by neither.
    const rows = this.db
      .query(
        `SELECT k.status, k.n - COALESCE(e.n, 0) AS n FROM store_file_counts k LEFT JOIN (
           SELECT vsf.counted AS status, COUNT(*) AS n FROM files f INDEXED BY files_expires CROSS JOIN vector_store_files vsf ON vsf.store_id = $storeId AND vsf.file_id = f.id
           WHERE f.expires_at IS NOT NULL AND f.expires_at <= $now AND vsf.counted IS NOT NULL GROUP BY 1
         ) e ON e.status = k.status
         WHERE k.store_id = $storeId`,
      )
      .all({ storeId, now }) as { status: StoreFileStatus; n: number }[];
    return fileCountsOf(rows);
  }

  async usageBytes(storeId: string, now: number) {
    // What the store's chunks take, their text and their vectors: per file cut (cut_bytes) and
    // per store (store_bytes), kept by triggers, less the files past their expiry not swept yet;
    // or summed over the members, as fileCounts.
    const r = this.keptIsCheaper(storeId, now)
      ? this.db
          .query(
            `SELECT COALESCE((SELECT bytes FROM store_bytes WHERE store_id = $storeId), 0) - (
               SELECT COALESCE(SUM(cb.bytes), 0) FROM files f INDEXED BY files_expires CROSS JOIN vector_store_files vsf ON vsf.store_id = $storeId AND vsf.file_id = f.id
                 JOIN cut_bytes cb ON cb.file_id = vsf.file_id AND cb.cut = vsf.cut
               WHERE f.expires_at IS NOT NULL AND f.expires_at <= $now AND vsf.cancelled = 0) AS n`,
          )
          .get({ storeId, now })
      : this.db
          .query(
            `SELECT COALESCE(SUM(cb.bytes), 0) AS n
             FROM vector_store_files vsf JOIN files f ON f.id = vsf.file_id JOIN cut_bytes cb ON cb.file_id = vsf.file_id AND cb.cut = vsf.cut
             WHERE vsf.store_id = $storeId AND vsf.cancelled = 0 AND ${LIVE_FILE}`,
          )
          .get({ storeId, now });
    return (r as { n: number }).n;
  }

  /**
   * Whether the kept totals, less the expired files, cost less to read than the sums over the
   * store's members: not while more files in all are past their expiry than the store has
   * members (a bulk expiry the sweeper is still deleting).
   */
  private keptIsCheaper(storeId: string, now: number) {
    const members = (this.db.query(`SELECT COALESCE(SUM(n), 0) AS n FROM store_file_counts WHERE store_id = $storeId`).get({ storeId }) as { n: number }).n;
    const expired = this.db
      .query(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM files INDEXED BY files_expires WHERE expires_at IS NOT NULL AND expires_at <= $now LIMIT $limit)`)
      .get({ now, limit: members + 1 }) as { n: number };
    return expired.n <= members;
  }

  private attachSync(storeId: string, fileId: string, nowS: number, attributes: string | null, chunking: Chunking, batchId: string | null, nowMs: number) {
    // Attaching again updates the attributes (when given) and chunking and revives a cancelled
    // membership; the caller prunes a chunk set no store uses any more.
    this.db
      .query(
        `INSERT INTO vector_store_files (store_id, file_id, created_at, attributes, chunking, cut, batch_id) VALUES ($storeId, $fileId, $now, COALESCE($attributes, '{}'), $chunking, $cut, $batchId)
         ON CONFLICT (store_id, file_id) DO UPDATE SET attributes = COALESCE($attributes, attributes), chunking = excluded.chunking, cut = excluded.cut, cancelled = 0,
           batch_id = COALESCE(excluded.batch_id, batch_id)`,
      )
      .run({ storeId, fileId, now: nowS, attributes, chunking: chunking.json, cut: chunking.cut, batchId });
    ensureCut(this.db, fileId, chunking.cut, nowMs);
  }

  async attach(storeId: string, files: { id: string; attributes: string | null; chunking?: Chunking }[], nowS: number, chunking: Chunking, batch: { id: string } | null, nowMs: number) {
    this.db.transaction(() => {
      if (batch)
        this.db.query(`INSERT INTO vector_store_file_batches (id, store_id, created_at) VALUES ($id, $storeId, $now)`).run({ id: batch.id, storeId, now: nowS });
      for (const f of files) this.attachSync(storeId, f.id, nowS, f.attributes, f.chunking ?? chunking, batch?.id ?? null, nowMs);
      pruneCuts(this.db, files.map((f) => f.id));
    }).immediate();
  }

  async getFile(storeId: string, fileId: string, now: number) {
    return (this.db
      .query(`SELECT ${FILE_COLS} FROM ${STORE_MEMBERS} WHERE vsf.store_id = $storeId AND vsf.file_id = $fileId AND ${LIVE_FILE}`)
      .get({ storeId, fileId, now }) as StoreFileRow | null) ?? null;
  }

  async listFiles(storeId: string, q: Keyset & { status?: StoreFileStatus; batchId?: string }, now: number) {
    const k = keyset("vsf.seq", q);
    const where = [`vsf.store_id = $storeId`, LIVE_FILE, ...k.where];
    if (q.status) where.push(`${MEMBER_STATUS} = $status`);
    if (q.batchId) where.push(`vsf.batch_id = $batchId`);
    const rows = this.db
      .query(`SELECT ${FILE_COLS} FROM ${STORE_MEMBERS} WHERE ${where.join(" AND ")} ORDER BY ${k.orderBy} LIMIT $limit`)
      .all({ storeId, now, ...k.params, status: q.status ?? null, batchId: q.batchId ?? null } as never) as StoreFileRow[];
    return k.page(rows);
  }

  async fileSeq(storeId: string, fileId: string) {
    const r = this.db
      .query(placeSql("vector_store_files", "store_file_tombstones", "store_id = $storeId AND file_id = $fileId"))
      .get({ storeId, fileId }) as { seq: number } | null;
    return r?.seq ?? null;
  }

  async updateAttributes(storeId: string, fileId: string, attributes: string) {
    return this.db.query(`UPDATE vector_store_files SET attributes = $attributes WHERE store_id = $storeId AND file_id = $fileId`).run({ storeId, fileId, attributes }).changes > 0;
  }

  async detach(storeId: string, fileId: string) {
    return this.db.transaction(() => {
      const gone = this.db.query(`DELETE FROM vector_store_files WHERE store_id = $storeId AND file_id = $fileId`).run({ storeId, fileId }).changes > 0;
      pruneCuts(this.db, [fileId]);
      return gone;
    }).immediate();
  }

  async getBatch(storeId: string, id: string) {
    return (this.db
      .query(`SELECT id, store_id AS storeId, created_at AS createdAt, cancelled FROM vector_store_file_batches WHERE id = $id AND store_id = $storeId`)
      .get({ id, storeId }) as BatchRow | null) ?? null;
  }

  /** Files of the batch still in progress become cancelled; finished ones keep their status. */
  async cancelBatch(storeId: string, id: string) {
    this.db.transaction(() => {
      const fileIds = this.memberIds(`batch_id = $id AND store_id = $storeId`, { id, storeId });
      const stopped = this.db
        .query(
          `UPDATE vector_store_files SET cancelled = 1 WHERE batch_id = $id AND store_id = $storeId AND cancelled = 0
           AND file_id IN (SELECT vsf.file_id FROM ${STORE_MEMBERS} WHERE vsf.batch_id = $id AND vsf.store_id = $storeId AND ${MEMBER_STATUS} = 'in_progress')`,
        )
        .run({ id, storeId }).changes;
      // A batch whose files had all ended stays as it ended (its counts say so).
      if (stopped) this.db.query(`UPDATE vector_store_file_batches SET cancelled = 1 WHERE id = $id AND store_id = $storeId`).run({ id, storeId });
      // A cut only this batch wanted stops being made.
      pruneCuts(this.db, fileIds);
    }).immediate();
  }

  async documentText(fileId: string) {
    const r = this.db.query(`SELECT text FROM documents WHERE file_id = $fileId`).get({ fileId }) as { text: string } | null;
    return r?.text ?? null;
  }

  async pruneTombstones(beforeS: number, limit: number) {
    const args = { before: beforeS, limit };
    return this.db.transaction(
      () =>
        this.db.query(`DELETE FROM vector_store_tombstones WHERE id IN (SELECT id FROM vector_store_tombstones WHERE deleted_at < $before LIMIT $limit)`).run(args).changes +
        this.db
          .query(`DELETE FROM store_file_tombstones WHERE (store_id, file_id) IN (SELECT store_id, file_id FROM store_file_tombstones WHERE deleted_at < $before LIMIT $limit)`)
          .run(args).changes,
    )();
  }

  async touch(storeId: string, nowS: number) {
    this.db.query(`UPDATE vector_stores SET last_active_at = $now WHERE id = $storeId`).run({ storeId, now: nowS });
  }
}
