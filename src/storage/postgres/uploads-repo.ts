import type { UploadPartRow, UploadRow, UploadsRepo } from "../repos";
import type { Pg } from "./db";

const COLUMNS = `id, project_id AS "projectId", filename, purpose, bytes::float8 AS bytes, mime_type AS "mimeType", expires_after AS "expiresAfter",
  created_at::float8 AS "createdAt", expires_at::float8 AS "expiresAt", status, file_id AS "fileId"`;
const PART_COLUMNS = `id, upload_id AS "uploadId", bytes::float8 AS bytes, created_at::float8 AS "createdAt"`;

export class PgUploadsRepo implements UploadsRepo {
  constructor(private readonly db: Pg) {}

  async insert(r: UploadRow) {
    await this.db.run(
      `INSERT INTO uploads (id, project_id, filename, purpose, bytes, mime_type, expires_after, created_at, expires_at, status, file_id)
       VALUES ($id, $projectId, $filename, $purpose, $bytes, $mimeType, $expiresAfter, $createdAt, $expiresAt, $status, $fileId)`,
      { ...r },
    );
  }

  get(projectId: string, id: string) {
    return this.db.get<UploadRow>(`SELECT ${COLUMNS} FROM uploads WHERE id = $id AND project_id = $projectId`, { id, projectId });
  }

  async addPart(part: UploadPartRow, now: number) {
    // (the upload's row is locked by the insert's foreign key check: a finish waits for it, or it for the finish)
    const n = await this.db.run(
      `INSERT INTO upload_parts (id, upload_id, bytes, created_at)
       SELECT $id, id, $bytes, $createdAt FROM uploads WHERE id = $uploadId AND status = 'pending' AND expires_at > $now FOR UPDATE`,
      { ...part, now },
    );
    return n > 0;
  }

  parts(uploadId: string) {
    return this.db.all<UploadPartRow>(`SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id = $uploadId`, { uploadId });
  }

  finish(projectId: string, id: string, status: "completed" | "cancelled") {
    return this.db.tx(async (tx) => {
      const changed = await tx.run(`UPDATE uploads SET status = $status WHERE id = $id AND project_id = $projectId AND status = 'pending'`, { id, projectId, status });
      if (!changed) return null;
      return tx.all<UploadPartRow>(`DELETE FROM upload_parts WHERE upload_id = $id RETURNING ${PART_COLUMNS}`, { id });
    });
  }

  sweep(now: number, forgetBefore: number, limit: number) {
    return this.db.tx(async (tx) => {
      const parts = await tx.all<UploadPartRow>(
        `DELETE FROM upload_parts WHERE upload_id IN (
           SELECT id FROM uploads WHERE expires_at <= $now AND status = 'pending' AND EXISTS (SELECT 1 FROM upload_parts p WHERE p.upload_id = uploads.id)
           ORDER BY expires_at LIMIT $limit FOR UPDATE SKIP LOCKED)
         RETURNING ${PART_COLUMNS}`,
        { now, limit },
      );
      await tx.run(`DELETE FROM uploads WHERE id IN (SELECT id FROM uploads WHERE expires_at < $forgetBefore ORDER BY expires_at LIMIT $limit FOR UPDATE SKIP LOCKED)`, { forgetBefore, limit });
      return parts;
    });
  }

  async partExists(id: string) {
    return (await this.db.get(`SELECT 1 FROM upload_parts WHERE id = $id`, { id })) !== null;
  }

  async partBytes(projectId: string) {
    return (await this.db.get<{ n: number }>(`SELECT COALESCE(SUM(p.bytes), 0)::float8 AS n FROM uploads u JOIN upload_parts p ON p.upload_id = u.id WHERE u.project_id = $projectId`, { projectId }))!.n;
  }
}
