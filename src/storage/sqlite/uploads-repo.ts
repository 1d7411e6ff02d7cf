import type { Database } from "bun:sqlite";
import { UPLOAD_PARTS_SLACK, type FileRow, type UploadPartRow, type UploadRow, type UploadsRepo } from "../repos";
import { insertFileIn } from "./files-repo";

const COLUMNS = `id, project_id AS projectId, filename, purpose, bytes, mime_type AS mimeType, expires_after AS expiresAfter,
  created_at AS createdAt, expires_at AS expiresAt, status, file_id AS fileId, claimed_until AS claimedUntil`;
const PART_COLUMNS = `id, upload_id AS uploadId, bytes, created_at AS createdAt`;
// No claim lasts at $now.
const UNCLAIMED = `(claimed_until IS NULL OR claimed_until <= $now)`;

export class SqliteUploadsRepo implements UploadsRepo {
  constructor(private readonly db: Database) {}

  async insert(r: UploadRow) {
    this.db
      .query(
        `INSERT INTO uploads (id, project_id, filename, purpose, bytes, mime_type, expires_after, created_at, expires_at, status, file_id)
         VALUES ($id, $projectId, $filename, $purpose, $bytes, $mimeType, $expiresAfter, $createdAt, $expiresAt, $status, $fileId)`,
      )
      .run({ ...r });
  }

  async get(projectId: string, id: string) {
    return this.db.query(`SELECT ${COLUMNS} FROM uploads WHERE id = $id AND project_id = $projectId`).get({ id, projectId }) as UploadRow | null;
  }

  async addPart(part: UploadPartRow, now: number, maxParts: number, quota: number) {
    // (one statement on the writer thread: the totals it checks cannot change under it)
    return (
      this.db
        .query(
          `INSERT INTO upload_parts (id, upload_id, bytes, created_at)
           SELECT $id, u.id, $bytes, $createdAt FROM uploads u
           WHERE u.id = $uploadId AND u.status = 'pending' AND u.expires_at > $now AND ${UNCLAIMED}
             AND (SELECT COALESCE(SUM(p.bytes), 0) FROM upload_parts p WHERE p.upload_id = u.id) + $bytes <= ${UPLOAD_PARTS_SLACK} * u.bytes
             AND (SELECT COUNT(*) FROM upload_parts p WHERE p.upload_id = u.id) < $maxParts
             AND ($quota <= 0 OR COALESCE((SELECT b.bytes FROM project_bytes b WHERE b.project_id = u.project_id), 0)
               + (SELECT COALESCE(SUM(p.bytes), 0) FROM upload_parts p CROSS JOIN uploads v ON v.id = p.upload_id WHERE v.project_id = u.project_id)
               + $bytes <= $quota)`,
        )
        .run({ ...part, now, maxParts, quota }).changes > 0
    );
  }

  async parts(uploadId: string) {
    return this.db.query(`SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id = $uploadId`).all({ uploadId }) as UploadPartRow[];
  }

  async claim(projectId: string, id: string, by: string, now: number, until: number, fileId: string) {
    return (
      this.db
        .query(
          `UPDATE uploads SET claimed_by = $by, claimed_until = $until, file_id = $fileId
           WHERE id = $id AND project_id = $projectId AND status = 'pending' AND (claimed_by = $by OR (${UNCLAIMED} AND expires_at > $now))`,
        )
        .run({ id, projectId, by, now, until, fileId }).changes > 0
    );
  }

  async complete(projectId: string, id: string, by: string, file: FileRow, quota: number, nowMs: number) {
    return this.db.transaction((): UploadPartRow[] | "lost" | "quota" => {
      const held = this.db.query(`SELECT 1 FROM uploads WHERE id = $id AND project_id = $projectId AND status = 'pending' AND claimed_by = $by AND file_id = $fileId`).get({ id, projectId, by, fileId: file.id });
      if (!held) return "lost";
      if (!insertFileIn(this.db, file, quota, nowMs, id)) return "quota";
      this.db.query(`UPDATE uploads SET status = 'completed', claimed_by = NULL, claimed_until = NULL WHERE id = $id`).run({ id });
      return this.dropParts(id);
    }).immediate();
  }

  async cancel(projectId: string, id: string, now: number) {
    return this.db.transaction(() => {
      const changed = this.db
        .query(`UPDATE uploads SET status = 'cancelled', claimed_by = NULL, claimed_until = NULL WHERE id = $id AND project_id = $projectId AND status = 'pending' AND ${UNCLAIMED}`)
        .run({ id, projectId, now }).changes;
      return changed ? this.dropParts(id) : null;
    }).immediate();
  }

  private dropParts(uploadId: string) {
    const parts = this.db.query(`SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id = $uploadId`).all({ uploadId }) as UploadPartRow[];
    this.db.query(`DELETE FROM upload_parts WHERE upload_id = $uploadId`).run({ uploadId });
    return parts;
  }

  async sweep(now: number, forgetBefore: number, limit: number) {
    return this.db.transaction(() => {
      const parts = this.db
        .query(
          `SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id IN (
             SELECT id FROM uploads WHERE expires_at <= $now AND status = 'pending' AND ${UNCLAIMED} AND EXISTS (SELECT 1 FROM upload_parts p WHERE p.upload_id = uploads.id)
             ORDER BY expires_at LIMIT $limit)`,
        )
        .all({ now, limit }) as UploadPartRow[];
      this.db.query(`DELETE FROM upload_parts WHERE id IN (SELECT value FROM json_each($ids))`).run({ ids: JSON.stringify(parts.map((p) => p.id)) });
      const forgotten = this.db
        .query(
          `DELETE FROM uploads WHERE id IN (
             SELECT id FROM uploads WHERE expires_at < $forgetBefore AND ${UNCLAIMED} AND NOT EXISTS (SELECT 1 FROM upload_parts p WHERE p.upload_id = uploads.id)
             ORDER BY expires_at LIMIT $limit)`,
        )
        .run({ now, forgetBefore, limit }).changes;
      return { parts, forgotten };
    }).immediate();
  }

  async partExists(id: string) {
    return this.db.query(`SELECT 1 FROM upload_parts WHERE id = $id`).get({ id }) !== null;
  }

}
