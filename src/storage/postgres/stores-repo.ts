import { newVectorStoreId } from "../../util/ids";
import { keyset, LIVE_FILE, MEMBER_STATUS, STORE_MEMBERS, storeUpdateSql, placeSql } from "../sql-common";
import { fileCountsOf, type BatchRow, type Chunking, type FileCounts, type Keyset, type StoreFileRow, type StoreFileStatus, type StoreRow, type StoresRepo } from "../repos";
import { lockChunkLog, type Pg } from "./db";
import { ensureCut, pruneCuts } from "./ingestion-repo";

const STORE_COLS = `id, project_id AS "projectId", name, is_default AS "isDefault", created_at::float8 AS "createdAt", last_active_at::float8 AS "lastActiveAt",
  metadata, expires_days AS "expiresDays", chunking`;
const FILE_COLS = `vsf.store_id AS "storeId", vsf.file_id AS "fileId", vsf.created_at::float8 AS "createdAt", vsf.attributes, vsf.chunking, vsf.cut, vsf.batch_id AS "batchId",
  ${MEMBER_STATUS} AS status,
  CASE WHEN f.status = 'error' THEN ja.error_code WHEN jc.state = 'failed' THEN jc.error_code END AS "errorCode",
  CASE WHEN f.status = 'error' THEN COALESCE(ja.error, f.status_details) WHEN jc.state = 'failed' THEN jc.error END AS error,
  COALESCE((SELECT cb.bytes FROM cut_bytes cb WHERE cb.file_id = vsf.file_id AND cb.cut = vsf.cut), 0)::float8 AS "usageBytes"`;

const defaultStoreId = async (db: Pg, projectId: string) =>
  (await db.get<{ id: string }>(`SELECT id FROM vector_stores WHERE project_id = $projectId AND is_default = 1`, { projectId }))?.id ?? null;

/** The project's default store, created on first use by whichever process gets there first. */
export async function ensureDefaultStore(tx: Pg, projectId: string, nowS: number): Promise<string> {
  const found = await defaultStoreId(tx, projectId);
  if (found) return found;
  await tx.run(
    `INSERT INTO vector_stores (id, project_id, name, is_default, created_at, last_active_at) VALUES ($id, $projectId, 'knowledge base', 1, $now, $now)
     ON CONFLICT (project_id) WHERE is_default = 1 DO NOTHING`,
    { id: newVectorStoreId(), projectId, now: nowS },
  );
  return (await defaultStoreId(tx, projectId))!;
}

export class PgStoresRepo implements StoresRepo {
  constructor(private readonly db: Pg) {}

  async ensureDefault(projectId: string, nowS: number) {
    return (await defaultStoreId(this.db, projectId)) ?? this.db.tx((tx) => ensureDefaultStore(tx, projectId, nowS));
  }

  adoptOrphans(purposes: readonly string[], nowS: number) {
    return this.db.tx(async (tx) => {
      const projects = await tx.all<{ projectId: string }>(
        `SELECT DISTINCT f.project_id AS "projectId" FROM files f
         WHERE f.purpose = ANY($purposes::text[]) AND NOT EXISTS (SELECT 1 FROM vector_store_files v WHERE v.file_id = f.id)`,
        { purposes: [...purposes] },
      );
      let n = 0;
      for (const { projectId } of projects) {
        const storeId = await ensureDefaultStore(tx, projectId, nowS);
        n += await tx.run(
          `INSERT INTO vector_store_files (store_id, file_id, created_at)
           SELECT $storeId, id, created_at FROM files f WHERE f.project_id = $projectId AND f.purpose = ANY($purposes::text[])
             AND NOT EXISTS (SELECT 1 FROM vector_store_files v WHERE v.file_id = f.id)
           ON CONFLICT DO NOTHING`,
          { storeId, projectId, purposes: [...purposes] },
        );
      }
      return n;
    });
  }

  async create(row: StoreRow, fileIds: string[], attributes: string, chunking: Chunking, nowMs: number) {
    await this.db.tx(async (tx) => {
      await tx.run(
        `INSERT INTO vector_stores (id, project_id, name, is_default, created_at, last_active_at, metadata, expires_days, chunking)
         VALUES ($id, $projectId, $name, 0, $createdAt, $lastActiveAt, $metadata, $expiresDays, $chunking)`,
        { id: row.id, projectId: row.projectId, name: row.name, createdAt: row.createdAt, lastActiveAt: row.lastActiveAt, metadata: row.metadata, expiresDays: row.expiresDays, chunking: row.chunking },
      );
      for (const fileId of fileIds) await attachOne(tx, row.id, fileId, row.createdAt, attributes, chunking, null, nowMs);
    });
  }

  get(projectId: string, id: string) {
    return this.db.get<StoreRow>(`SELECT ${STORE_COLS} FROM vector_stores WHERE id = $id AND project_id = $projectId`, { id, projectId });
  }

  async list(projectId: string, q: Keyset) {
    const k = keyset("seq", q);
    const where = [`project_id = $projectId`, ...k.where];
    const rows = await this.db.all<StoreRow>(`SELECT ${STORE_COLS} FROM vector_stores WHERE ${where.join(" AND ")} ORDER BY ${k.orderBy} LIMIT $limit`, { projectId, ...k.params });
    return k.page(rows);
  }

  async seq(projectId: string, id: string) {
    return (await this.db.get<{ seq: number }>(placeSql("vector_stores", "vector_store_tombstones", "id = $id AND project_id = $projectId", "seq::float8"), { id, projectId }))?.seq ?? null;
  }

  async update(id: string, fields: { name?: string | null; metadata?: string; expiresDays?: number | null; lastActiveAt?: number }) {
    const u = storeUpdateSql(id, fields);
    if (u) await this.db.run(u.sql, u.params);
  }

  remove(id: string) {
    return this.db.tx(async (tx) => {
      await lockChunkLog(tx);
      const fileIds = await memberIds(tx, `store_id = $id`, { id });
      const gone = (await tx.run(`DELETE FROM vector_stores WHERE id = $id`, { id })) > 0;
      await pruneCuts(tx, fileIds);
      return gone;
    });
  }

  async fileCounts(storeId: string, now: number, batchId?: string): Promise<FileCounts> {
    const rows = await this.db.all<{ status: StoreFileStatus; n: number }>(
      `SELECT ${MEMBER_STATUS} AS status, COUNT(*)::int AS n FROM ${STORE_MEMBERS}
       WHERE vsf.store_id = $storeId AND ${LIVE_FILE} ${batchId ? "AND vsf.batch_id = $batchId" : ""} GROUP BY 1`,
      { storeId, now, ...(batchId ? { batchId } : {}) },
    );
    return fileCountsOf(rows);
  }

  async usageBytes(storeId: string, now: number) {
    // What the store's chunks take, their text and their vectors: per file cut, kept by
    // triggers (see the migration that made cut_bytes).
    const r = await this.db.get<{ n: number }>(
      `SELECT COALESCE(SUM(cb.bytes), 0)::float8 AS n
       FROM vector_store_files vsf JOIN files f ON f.id = vsf.file_id JOIN cut_bytes cb ON cb.file_id = vsf.file_id AND cb.cut = vsf.cut
       WHERE vsf.store_id = $storeId AND vsf.cancelled = 0 AND ${LIVE_FILE}`,
      { storeId, now },
    );
    return r!.n;
  }

  async attach(storeId: string, files: { id: string; attributes: string | null; chunking?: Chunking }[], nowS: number, chunking: Chunking, batch: { id: string } | null, nowMs: number) {
    await this.db.tx(async (tx) => {
      await lockChunkLog(tx);
      if (batch) await tx.run(`INSERT INTO vector_store_file_batches (id, store_id, created_at) VALUES ($id, $storeId, $now)`, { id: batch.id, storeId, now: nowS });
      for (const f of files) await attachOne(tx, storeId, f.id, nowS, f.attributes, f.chunking ?? chunking, batch?.id ?? null, nowMs);
      await pruneCuts(tx, files.map((f) => f.id));
    });
  }

  getFile(storeId: string, fileId: string, now: number) {
    return this.db.get<StoreFileRow>(`SELECT ${FILE_COLS} FROM ${STORE_MEMBERS} WHERE vsf.store_id = $storeId AND vsf.file_id = $fileId AND ${LIVE_FILE}`, { storeId, fileId, now });
  }

  async listFiles(storeId: string, q: Keyset & { status?: StoreFileStatus; batchId?: string }, now: number) {
    const k = keyset("vsf.seq", q);
    const where = [`vsf.store_id = $storeId`, LIVE_FILE, ...k.where];
    if (q.status) where.push(`${MEMBER_STATUS} = $status`);
    if (q.batchId) where.push(`vsf.batch_id = $batchId`);
    const rows = await this.db.all<StoreFileRow>(`SELECT ${FILE_COLS} FROM ${STORE_MEMBERS} WHERE ${where.join(" AND ")} ORDER BY ${k.orderBy} LIMIT $limit`, {
      storeId,
      now,
      ...k.params,
      status: q.status ?? null,
      batchId: q.batchId ?? null,
    });
    return k.page(rows);
  }

  async fileSeq(storeId: string, fileId: string) {
    return (await this.db.get<{ seq: number }>(placeSql("vector_store_files", "store_file_tombstones", "store_id = $storeId AND file_id = $fileId", "seq::float8"), { storeId, fileId }))?.seq ?? null;
  }

  async updateAttributes(storeId: string, fileId: string, attributes: string) {
    return (await this.db.run(`UPDATE vector_store_files SET attributes = $attributes WHERE store_id = $storeId AND file_id = $fileId`, { storeId, fileId, attributes })) > 0;
  }

  detach(storeId: string, fileId: string) {
    return this.db.tx(async (tx) => {
      await lockChunkLog(tx);
      const gone = (await tx.run(`DELETE FROM vector_store_files WHERE store_id = $storeId AND file_id = $fileId`, { storeId, fileId })) > 0;
      await pruneCuts(tx, [fileId]);
      return gone;
    });
  }

  getBatch(storeId: string, id: string) {
    return this.db.get<BatchRow>(`SELECT id, store_id AS "storeId", created_at::float8 AS "createdAt", cancelled FROM vector_store_file_batches WHERE id = $id AND store_id = $storeId`, { id, storeId });
  }

  async cancelBatch(storeId: string, id: string) {
    await this.db.tx(async (tx) => {
      await lockChunkLog(tx);
      const fileIds = await memberIds(tx, `batch_id = $id AND store_id = $storeId`, { id, storeId });
      const stopped = await tx.run(
        `UPDATE vector_store_files SET cancelled = 1 WHERE batch_id = $id AND store_id = $storeId AND cancelled = 0
         AND file_id IN (SELECT vsf.file_id FROM ${STORE_MEMBERS} WHERE vsf.batch_id = $id AND vsf.store_id = $storeId AND ${MEMBER_STATUS} = 'in_progress')`,
        { id, storeId },
      );
      // A batch whose files had all ended stays as it ended (its counts say so).
      if (stopped) await tx.run(`UPDATE vector_store_file_batches SET cancelled = 1 WHERE id = $id AND store_id = $storeId`, { id, storeId });
      await pruneCuts(tx, fileIds);
    });
  }

  async documentText(fileId: string) {
    return (await this.db.get<{ text: string }>(`SELECT text FROM documents WHERE file_id = $fileId`, { fileId }))?.text ?? null;
  }

  async pruneTombstones(beforeS: number, limit: number) {
    // rows a store's delete (its trigger) holds now are left for the next sweep, not waited for
    const [r] = await this.db.all<{ n: number }>(
      `WITH s AS (DELETE FROM vector_store_tombstones WHERE id IN (SELECT id FROM vector_store_tombstones WHERE deleted_at < $before LIMIT $limit FOR UPDATE SKIP LOCKED) RETURNING 1),
            m AS (DELETE FROM store_file_tombstones WHERE (store_id, file_id) IN (SELECT store_id, file_id FROM store_file_tombstones WHERE deleted_at < $before LIMIT $limit FOR UPDATE SKIP LOCKED) RETURNING 1)
       SELECT (SELECT COUNT(*) FROM s)::int + (SELECT COUNT(*) FROM m)::int AS n`,
      { before: beforeS, limit },
    );
    return r?.n ?? 0;
  }

  async touch(storeId: string, nowS: number) {
    await this.db.run(`UPDATE vector_stores SET last_active_at = $now WHERE id = $storeId`, { storeId, now: nowS });
  }
}

async function memberIds(tx: Pg, where: string, params: Record<string, string>) {
  return (await tx.all<{ id: string }>(`SELECT file_id AS id FROM vector_store_files WHERE ${where}`, params)).map((r) => r.id);
}

async function attachOne(tx: Pg, storeId: string, fileId: string, nowS: number, attributes: string | null, chunking: Chunking, batchId: string | null, nowMs: number) {
  // Attaching again updates the attributes (when given) and chunking and revives a cancelled membership.
  await tx.run(
    `INSERT INTO vector_store_files (store_id, file_id, created_at, attributes, chunking, cut, batch_id) VALUES ($storeId, $fileId, $now, COALESCE($attributes::text, '{}'), $chunking, $cut, $batchId)
     ON CONFLICT (store_id, file_id) DO UPDATE SET attributes = COALESCE($attributes::text, vector_store_files.attributes), chunking = excluded.chunking, cut = excluded.cut, cancelled = 0,
       batch_id = COALESCE(excluded.batch_id, vector_store_files.batch_id)`,
    { storeId, fileId, now: nowS, attributes, chunking: chunking.json, cut: chunking.cut, batchId },
  );
  await ensureCut(tx, fileId, chunking.cut, nowMs);
}
