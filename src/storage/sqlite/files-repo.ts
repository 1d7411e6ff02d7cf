import type { Database } from "bun:sqlite";
import type { FileRow, FilesRepo, ListFilesQuery } from "../repos";
import { enqueueFile } from "./ingestion-repo";
import { keyset, placeSql } from "../sql-common";
import { ensureDefaultStore } from "./stores-repo";

const COLS = `id, project_id AS projectId, bytes, created_at AS createdAt, filename, purpose, status,
  status_details AS statusDetails, expires_at AS expiresAt, content_type AS contentType, sha256`;

const LIVE = `(expires_at IS NULL OR expires_at > $now)`;

/**
 * This process's writes, counted by sqlite/index.ts around every call to the writer thread.
 * Only the server holding the data directory's lock writes, so what was read while no write
 * was under way stays true until the next write starts. The file rows follow every write;
 * the visibility kept by chunks-repo.ts has a clock of its own, moved only by writes that may
 * change what a search sees (writes.ts, KEEPS_VISIBILITY).
 */
export interface WriteClock {
  generation: number;
  inflight: number;
}

// Rows kept between writes: retrieving a file (a hot path for pollers) skips SQLite, whose
// cheapest statement costs about 7 µs here, a third of what a request costs.
const RECENT_ROWS = 10_000;

export class SqliteFilesRepo implements FilesRepo {
  private readonly recent = new Map<string, FileRow>();
  private recentGeneration = -1;

  constructor(
    private readonly db: Database,
    private readonly clock: WriteClock | null = null,
  ) {}

  async insert(row: FileRow, quota: number, nowMs: number): Promise<boolean> {
    return this.db.transaction(() => insertFileIn(this.db, row, quota, nowMs)).immediate();
  }

  async changeToken() {
    // data_version moves with commits by other connections (the writer thread, other
    // processes); total_changes with this connection's own.
    return (this.db.query(`SELECT (SELECT data_version FROM pragma_data_version()) || ':' || total_changes() AS t`).get() as { t: string }).t;
  }

  async get(projectId: string, id: string, now: number) {
    const clock = this.clock;
    const steady = clock !== null && clock.inflight === 0;
    if (steady && this.recentGeneration === clock.generation) {
      const hit = this.recent.get(id);
      if (hit && hit.projectId === projectId) return hit.expiresAt === null || hit.expiresAt > now ? hit : null;
    }
    const row = (this.db
      .query(`SELECT ${COLS} FROM files WHERE id = $id AND project_id = $projectId AND ${LIVE}`)
      .get({ id, projectId, now }) as FileRow | null) ?? null;
    if (steady && row) {
      if (this.recentGeneration !== clock.generation || this.recent.size >= RECENT_ROWS) {
        this.recent.clear();
        this.recentGeneration = clock.generation;
      }
      // shared by every caller from now on
      this.recent.set(id, Object.freeze(row));
    }
    return row;
  }

  async list(projectId: string, q: ListFilesQuery, now: number) {
    const k = keyset("seq", q);
    const where = [`project_id = $projectId`, LIVE, ...k.where];
    if (q.purpose !== undefined) where.push(`purpose = $purpose`);
    const rows = this.db
      .query(`SELECT ${COLS} FROM files WHERE ${where.join(" AND ")} ORDER BY ${k.orderBy} LIMIT $limit OFFSET $offset`)
      .all({ projectId, now, offset: q.offset, purpose: q.purpose ?? null, ...k.params } as never) as FileRow[];
    return k.page(rows);
  }

  async count(projectId: string, purpose: string | undefined, now: number) {
    const where = [`project_id = $projectId`, LIVE];
    if (purpose !== undefined) where.push(`purpose = $purpose`);
    return (this.db.query(`SELECT COUNT(*) AS n FROM files WHERE ${where.join(" AND ")}`).get({ projectId, now, purpose: purpose ?? null } as never) as { n: number }).n;
  }

  async cursorSeq(projectId: string, id: string) {
    const r = this.db
      .query(placeSql("files", "file_tombstones", "id = $id AND project_id = $projectId"))
      .get({ id, projectId }) as { seq: number } | null;
    return r?.seq ?? null;
  }

  async remove(projectId: string, id: string, now: number) {
    return this.db.transaction(() => {
      const row = this.db
        .query(`SELECT seq, ${COLS} FROM files WHERE id = $id AND project_id = $projectId`)
        .get({ id, projectId }) as (FileRow & { seq: number }) | null;
      if (!row) return null;
      this.db.query(`DELETE FROM files WHERE id = $id`).run({ id });
      this.db
        .query(`INSERT OR REPLACE INTO file_tombstones (id, project_id, seq, deleted_at) VALUES ($id, $projectId, $seq, $now)`)
        .run({ id, projectId, seq: row.seq, now });
      const { seq: _seq, ...file } = row;
      return file as FileRow;
    }).immediate();
  }

  async pruneTombstones(beforeS: number, limit: number) {
    return this.db
      .query(`DELETE FROM file_tombstones WHERE id IN (SELECT id FROM file_tombstones WHERE deleted_at < $before LIMIT $limit)`)
      .run({ before: beforeS, limit }).changes;
  }

  /** SQLite's triggers keep each project's row whole (one writer: no row to queue on). */
  async foldTotals() {}

  async bytesByProject() {
    return this.db.query(`SELECT project_id AS project, bytes FROM project_bytes ORDER BY project_id`).all() as { project: string; bytes: number }[];
  }

  async usedBytes(projectId: string) {
    return this.usedBytesSync(projectId) + partBytesIn(this.db, projectId);
  }

  private usedBytesSync(projectId: string): number {
    const r = this.db.query(`SELECT bytes FROM project_bytes WHERE project_id = $projectId`).get({ projectId }) as { bytes: number } | null;
    return r?.bytes ?? 0;
  }

  async expired(now: number, limit: number) {
    return this.db
      .query(`SELECT id, project_id AS projectId FROM files WHERE expires_at IS NOT NULL AND expires_at <= $now LIMIT $limit`)
      .all({ now, limit }) as { projectId: string; id: string }[];
  }

  async exists(id: string) {
    return this.db.query(`SELECT 1 FROM files WHERE id = $id`).get({ id }) !== null;
  }
}

/** Bytes held by the parts of a project's uploads (until completed), less those of upload `except`. */
export function partBytesIn(db: Database, projectId: string, except: string | null = null): number {
  // From the parts (few: only pending uploads hold any) to their uploads by key; the other way
  // round scans every upload row kept (a week past expiry), 8.7 ms at 200,000 in a review's probe.
  return (db.query(`SELECT COALESCE(SUM(p.bytes), 0) AS n FROM upload_parts p CROSS JOIN uploads u ON u.id = p.upload_id WHERE u.project_id = $projectId AND u.id IS NOT $except`).get({ projectId, except }) as { n: number }).n;
}

/**
 * A file's row inside the caller's transaction, unless the project would exceed `quota`
 * (false): queued for ingestion and in its knowledge base when `uploaded` (FilesRepo.insert).
 * The quota counts the project's files and its uploads' parts; `completing` names the upload
 * whose parts become this file (counted once, as the file).
 */
export function insertFileIn(db: Database, row: FileRow, quota: number, nowMs: number, completing: string | null = null): boolean {
  if (quota > 0) {
    const used = (db.query(`SELECT bytes FROM project_bytes WHERE project_id = $projectId`).get({ projectId: row.projectId }) as { bytes: number } | null)?.bytes ?? 0;
    if (used + partBytesIn(db, row.projectId, completing) + row.bytes > quota) return false;
  }
  db.query(
    `INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, status_details, expires_at, content_type, sha256)
     VALUES ($id, $projectId, $bytes, $createdAt, $filename, $purpose, $status, $statusDetails, $expiresAt, $contentType, $sha256)`,
  ).run({ ...row });
  if (row.status === "uploaded") {
    enqueueFile(db, row.id, nowMs);
    // Every ingested file joins the project's knowledge base.
    const storeId = ensureDefaultStore(db, row.projectId, row.createdAt);
    db.query(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ($storeId, $id, $now)`).run({ storeId, id: row.id, now: row.createdAt });
  }
  return true;
}
