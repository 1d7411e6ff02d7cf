import type { FileRow, FilesRepo, ListFilesQuery } from "../repos";
import { keyset, placeSql } from "../sql-common";
import { lockChunkLog, type Pg } from "./db";
import { enqueueFile } from "./ingestion-repo";
import { ensureDefaultStore } from "./stores-repo";

const COLS = `id, project_id AS "projectId", bytes::float8 AS bytes, created_at::float8 AS "createdAt", filename, purpose, status,
  status_details AS "statusDetails", expires_at::float8 AS "expiresAt", content_type AS "contentType", sha256`;

const LIVE = `(expires_at IS NULL OR expires_at > $now)`;

export class PgFilesRepo implements FilesRepo {
  constructor(private readonly db: Pg) {}

  /** Each project's knowledge base, once known: it is never deleted, nor is a project. */
  private readonly defaultStores = new Map<string, string>();

  async insert(row: FileRow, quota: number, nowMs: number): Promise<boolean> {
    const storeId = this.defaultStores.get(row.projectId);
    if (quota === 0 && storeId) {
      // The common upload as one statement (one round trip): the file, its job and its
      // knowledge-base membership, all or none.
      const embed = row.status === "uploaded";
      await this.db.run(
        `WITH f AS (INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, status_details, expires_at, content_type, sha256)
                    VALUES ($id, $projectId, $bytes, $createdAt, $filename, $purpose, $status, $statusDetails, $expiresAt, $contentType, $sha256) RETURNING id)
         ${embed ? `, j AS (INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) SELECT id, 'auto', 'queued', $nowMs::bigint, $nowMs::bigint FROM f)
         , v AS (INSERT INTO vector_store_files (store_id, file_id, created_at) SELECT $storeId, id, $createdAt::bigint FROM f)` : ""}
         SELECT 1`,
        { ...row, ...(embed ? { nowMs, storeId } : {}) },
      );
      return true;
    }
    const ok = await this.insertInTransaction(row, quota, nowMs);
    if (ok && !storeId) {
      const found = await this.db.get<{ id: string }>(`SELECT id FROM vector_stores WHERE project_id = $projectId AND is_default = 1`, { projectId: row.projectId });
      if (found) this.defaultStores.set(row.projectId, found.id);
    }
    return ok;
  }

  private insertInTransaction(row: FileRow, quota: number, nowMs: number): Promise<boolean> {
    return this.db.tx((tx) => insertFileIn(tx, row, quota, nowMs));
  }

  async changeToken() {
    // A snapshot (xmin:xmax:in-progress ids) changes once any transaction that wrote, in any
    // process, has committed, and stays as it is while nothing writes (reads take no id).
    return (await this.db.get<{ t: string }>(`SELECT pg_current_snapshot()::text AS t`))!.t;
  }

  get(projectId: string, id: string, now: number) {
    return this.db.get<FileRow>(`SELECT ${COLS} FROM files WHERE id = $id AND project_id = $projectId AND ${LIVE}`, { id, projectId, now });
  }

  async list(projectId: string, q: ListFilesQuery, now: number) {
    const k = keyset("seq", q);
    const where = [`project_id = $projectId`, LIVE, ...k.where];
    if (q.purpose !== undefined) where.push(`purpose = $purpose`);
    const rows = await this.db.all<FileRow>(`SELECT ${COLS} FROM files WHERE ${where.join(" AND ")} ORDER BY ${k.orderBy} LIMIT $limit OFFSET $offset`, {
      projectId,
      now,
      offset: q.offset,
      purpose: q.purpose ?? null,
      ...k.params,
    });
    return k.page(rows);
  }

  async count(projectId: string, purpose: string | undefined, now: number) {
    const where = [`project_id = $projectId`, LIVE];
    if (purpose !== undefined) where.push(`purpose = $purpose`);
    return (await this.db.get<{ n: number }>(`SELECT COUNT(*)::int AS n FROM files WHERE ${where.join(" AND ")}`, { projectId, now, purpose: purpose ?? null }))!.n;
  }

  async cursorSeq(projectId: string, id: string) {
    const r = await this.db.get<{ seq: number }>(placeSql("files", "file_tombstones", "id = $id AND project_id = $projectId", "seq::float8"), { id, projectId });
    return r?.seq ?? null;
  }

  remove(projectId: string, id: string, now: number) {
    return this.db.tx(async (tx) => {
      await lockChunkLog(tx);
      const row = await tx.get<FileRow & { seq: number }>(`SELECT seq::float8 AS seq, ${COLS} FROM files WHERE id = $id AND project_id = $projectId FOR UPDATE`, { id, projectId });
      if (!row) return null;
      await tx.run(`DELETE FROM files WHERE id = $id`, { id });
      await tx.run(
        `INSERT INTO file_tombstones (id, project_id, seq, deleted_at) VALUES ($id, $projectId, $seq, $now)
         ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, seq = excluded.seq, deleted_at = excluded.deleted_at`,
        { id, projectId, seq: row.seq, now },
      );
      const { seq: _seq, ...file } = row;
      return file as FileRow;
    });
  }

  async pruneTombstones(beforeS: number, limit: number) {
    // rows a delete's upsert holds now are left for the next sweep, not waited for
    const [r] = await this.db.all<{ n: number }>(
      `WITH d AS (DELETE FROM file_tombstones WHERE id IN (SELECT id FROM file_tombstones WHERE deleted_at < $before LIMIT $limit FOR UPDATE SKIP LOCKED) RETURNING 1)
       SELECT COUNT(*)::int AS n FROM d`,
      { before: beforeS, limit },
    );
    return r?.n ?? 0;
  }

  async bytesByProject() {
    await this.foldTotals();
    return this.db.all<{ project: string; bytes: number }>(
      `SELECT project_id AS project, SUM(bytes)::float8 AS bytes
       FROM (SELECT project_id, files, bytes FROM project_bytes UNION ALL SELECT project_id, files, bytes FROM project_bytes_deltas) t
       GROUP BY project_id HAVING SUM(files) > 0 ORDER BY project_id`,
    );
  }

  async foldTotals() {
    await this.db.tx((tx) => foldBytes(tx, null));
  }

  async usedBytes(projectId: string) {
    return (await usedBytes(this.db, projectId)) + (await partBytesIn(this.db, projectId));
  }

  expired(now: number, limit: number) {
    return this.db.all<{ projectId: string; id: string }>(
      `SELECT id, project_id AS "projectId" FROM files WHERE expires_at IS NOT NULL AND expires_at <= $now LIMIT $limit`,
      { now, limit },
    );
  }

  async exists(id: string) {
    return (await this.db.get(`SELECT 1 FROM files WHERE id = $id`, { id })) !== null;
  }
}

export async function usedBytes(db: Pg, projectId: string) {
  return (await db.get<{ used: number }>(
    `SELECT (COALESCE((SELECT bytes FROM project_bytes WHERE project_id = $projectId), 0)
           + COALESCE((SELECT SUM(bytes) FROM project_bytes_deltas WHERE project_id = $projectId), 0))::float8 AS used`,
    { projectId },
  ))!.used;
}

/**
 * Moves a project's deltas (every project's, for null) into its row. Folds running at once
 * each move a delta once: a delta another fold deleted is skipped after its commit.
 */
export async function foldBytes(tx: Pg, projectId: string | null) {
  await tx.run(
    `WITH moved AS (DELETE FROM project_bytes_deltas ${projectId === null ? "" : "WHERE project_id = $projectId"} RETURNING project_id, files, bytes)
     INSERT INTO project_bytes (project_id, files, bytes)
       SELECT project_id, SUM(files), SUM(bytes) FROM moved GROUP BY project_id ORDER BY project_id
     ON CONFLICT (project_id) DO UPDATE SET files = project_bytes.files + excluded.files, bytes = project_bytes.bytes + excluded.bytes`,
    projectId === null ? {} : { projectId },
  );
}

/** Bytes held by the parts of a project's uploads (until completed), less those of upload `except`. */
export async function partBytesIn(db: Pg, projectId: string, except: string | null = null) {
  return (await db.get<{ n: number }>(
    `SELECT COALESCE(SUM(p.bytes), 0)::float8 AS n FROM uploads u JOIN upload_parts p ON p.upload_id = u.id WHERE u.project_id = $projectId AND u.id IS DISTINCT FROM $except`,
    { projectId, except },
  ))!.n;
}

/**
 * A file's row inside the caller's transaction, unless the project would exceed `quota`
 * (false): queued for ingestion and in its knowledge base when `uploaded` (FilesRepo.insert).
 * The quota counts the project's files and its uploads' parts; `completing` names the upload
 * whose parts become this file (counted once, as the file).
 */
export async function insertFileIn(tx: Pg, row: FileRow, quota: number, nowMs: number, completing: string | null = null): Promise<boolean> {
  if (quota > 0) {
    // Uploads to one project, on any process, check its quota one at a time (parts too: addPart takes the same lock).
    await tx.run(`SELECT pg_advisory_xact_lock(hashtextextended('quota:' || $projectId, 0))`, { projectId: row.projectId });
    // The deltas since the project's last upload (one, with a quota) go into its row first.
    await foldBytes(tx, row.projectId);
    if ((await usedBytes(tx, row.projectId)) + (await partBytesIn(tx, row.projectId, completing)) + row.bytes > quota) return false;
  }
  await tx.run(
    `INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, status_details, expires_at, content_type, sha256)
     VALUES ($id, $projectId, $bytes, $createdAt, $filename, $purpose, $status, $statusDetails, $expiresAt, $contentType, $sha256)`,
    { ...row },
  );
  if (row.status === "uploaded") {
    await enqueueFile(tx, row.id, nowMs);
    // Every ingested file joins the project's knowledge base.
    const storeId = await ensureDefaultStore(tx, row.projectId, row.createdAt);
    await tx.run(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ($storeId, $id, $now)`, { storeId, id: row.id, now: row.createdAt });
  }
  return true;
}
