import type { Database } from "bun:sqlite";
import type { UploadPartRow, UploadRow, UploadsRepo } from "../repos";

const COLUMNS = `id, project_id AS projectId, filename, purpose, bytes, mime_type AS mimeType, expires_after AS expiresAfter,
  created_at AS createdAt, expires_at AS expiresAt, status, file_id AS fileId`;
const PART_COLUMNS = `id, upload_id AS uploadId, bytes, created_at AS createdAt`;

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

  async addPart(part: UploadPartRow, now: number) {
    return (
      this.db
        .query(
          `INSERT INTO upload_parts (id, upload_id, bytes, created_at)
           SELECT $id, id, $bytes, $createdAt FROM uploads WHERE id = $uploadId AND status = 'pending' AND expires_at > $now`,
        )
        .run({ ...part, now }).changes > 0
    );
  }

  async parts(uploadId: string) {
    return this.db.query(`SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id = $uploadId`).all({ uploadId }) as UploadPartRow[];
  }

  async finish(projectId: string, id: string, status: "completed" | "cancelled") {
    return this.db.transaction(() => {
      const changed = this.db.query(`UPDATE uploads SET status = $status WHERE id = $id AND project_id = $projectId AND status = 'pending'`).run({ id, projectId, status }).changes;
      if (!changed) return null;
      const parts = this.db.query(`SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id = $id`).all({ id }) as UploadPartRow[];
      this.db.query(`DELETE FROM upload_parts WHERE upload_id = $id`).run({ id });
      return parts;
    }).immediate();
  }

  async sweep(now: number, forgetBefore: number, limit: number) {
    return this.db.transaction(() => {
      const parts = this.db
        .query(
          `SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id IN (
             SELECT id FROM uploads WHERE expires_at <= $now AND status = 'pending' AND EXISTS (SELECT 1 FROM upload_parts p WHERE p.upload_id = uploads.id)
             ORDER BY expires_at LIMIT $limit)`,
        )
        .all({ now, limit }) as UploadPartRow[];
      this.db.query(`DELETE FROM upload_parts WHERE id IN (SELECT value FROM json_each($ids))`).run({ ids: JSON.stringify(parts.map((p) => p.id)) });
      this.db.query(`DELETE FROM uploads WHERE id IN (SELECT id FROM uploads WHERE expires_at < $forgetBefore ORDER BY expires_at LIMIT $limit)`).run({ forgetBefore, limit });
      return parts;
    }).immediate();
  }

  async partExists(id: string) {
    return this.db.query(`SELECT 1 FROM upload_parts WHERE id = $id`).get({ id }) !== null;
  }

  async partBytes(projectId: string) {
    return (this.db.query(`SELECT COALESCE(SUM(p.bytes), 0) AS n FROM uploads u JOIN upload_parts p ON p.upload_id = u.id WHERE u.project_id = $projectId`).get({ projectId }) as { n: number }).n;
  }
}
