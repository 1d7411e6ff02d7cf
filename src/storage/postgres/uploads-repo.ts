import { UPLOAD_PARTS_SLACK, type FileRow, type UploadPartRow, type UploadRow, type UploadsRepo } from "../repos";
import type { Pg } from "./db";
import { foldBytes, insertFileIn, partBytesIn, usedBytes } from "./files-repo";

const COLUMNS = `id, project_id AS "projectId", filename, purpose, bytes::float8 AS bytes, mime_type AS "mimeType", expires_after AS "expiresAfter",
  created_at::float8 AS "createdAt", expires_at::float8 AS "expiresAt", status, file_id AS "fileId", claimed_until::float8 AS "claimedUntil"`;
const PART_COLUMNS = `id, upload_id AS "uploadId", bytes::float8 AS bytes, created_at::float8 AS "createdAt"`;
// No claim lasts at $now.
const UNCLAIMED = `(claimed_until IS NULL OR claimed_until <= $now)`;

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

  addPart(part: UploadPartRow, now: number, maxParts: number, quota: number) {
    // The upload's row locked first: parts added to it by other processes meanwhile, a claim
    // or a finish wait, and the totals read after the lock (a statement of its own, so it sees
    // what they committed) stay true until this commits.
    return this.db.tx(async (tx) => {
      const u = await tx.get<{ bytes: number; projectId: string }>(
        `SELECT bytes::float8 AS bytes, project_id AS "projectId" FROM uploads WHERE id = $uploadId AND status = 'pending' AND expires_at > $now AND ${UNCLAIMED} FOR UPDATE`,
        { uploadId: part.uploadId, now },
      );
      if (!u) return false;
      const have = (await tx.get<{ bytes: number; n: number }>(`SELECT COALESCE(SUM(bytes), 0)::float8 AS bytes, COUNT(*)::float8 AS n FROM upload_parts WHERE upload_id = $uploadId`, { uploadId: part.uploadId }))!;
      if (have.bytes + part.bytes > UPLOAD_PARTS_SLACK * u.bytes || have.n >= maxParts) return false;
      if (quota > 0) {
        // Under the project's quota lock, as a file's insert checks it (after the upload's row: the same order as a complete's)
        await tx.run(`SELECT pg_advisory_xact_lock(hashtextextended('quota:' || $projectId, 0))`, { projectId: u.projectId });
        await foldBytes(tx, u.projectId);
        if ((await usedBytes(tx, u.projectId)) + (await partBytesIn(tx, u.projectId)) + part.bytes > quota) return false;
      }
      await tx.run(`INSERT INTO upload_parts (id, upload_id, bytes, created_at) VALUES ($id, $uploadId, $bytes, $createdAt)`, { ...part });
      return true;
    });
  }

  parts(uploadId: string) {
    return this.db.all<UploadPartRow>(`SELECT ${PART_COLUMNS} FROM upload_parts WHERE upload_id = $uploadId`, { uploadId });
  }

  async claim(projectId: string, id: string, by: string, now: number, until: number, fileId: string) {
    const n = await this.db.run(
      `UPDATE uploads SET claimed_by = $by, claimed_until = $until, file_id = $fileId
       WHERE id = $id AND project_id = $projectId AND status = 'pending' AND (claimed_by = $by OR (${UNCLAIMED} AND expires_at > $now))`,
      { id, projectId, by, now, until, fileId },
    );
    return n > 0;
  }

  complete(projectId: string, id: string, by: string, file: FileRow, quota: number, nowMs: number) {
    return this.db.tx(async (tx): Promise<UploadPartRow[] | "lost" | "quota"> => {
      // (the upload's row locked: a claim, a cancel or the sweep elsewhere waits for this to end)
      const held = await tx.get(`SELECT 1 FROM uploads WHERE id = $id AND project_id = $projectId AND status = 'pending' AND claimed_by = $by AND file_id = $fileId FOR UPDATE`, {
        id,
        projectId,
        by,
        fileId: file.id,
      });
      if (!held) return "lost";
      if (!(await insertFileIn(tx, file, quota, nowMs, id))) return "quota";
      await tx.run(`UPDATE uploads SET status = 'completed', claimed_by = NULL, claimed_until = NULL WHERE id = $id`, { id });
      return tx.all<UploadPartRow>(`DELETE FROM upload_parts WHERE upload_id = $id RETURNING ${PART_COLUMNS}`, { id });
    });
  }

  cancel(projectId: string, id: string, now: number) {
    return this.db.tx(async (tx) => {
      const changed = await tx.run(
        `UPDATE uploads SET status = 'cancelled', claimed_by = NULL, claimed_until = NULL WHERE id = $id AND project_id = $projectId AND status = 'pending' AND ${UNCLAIMED}`,
        { id, projectId, now },
      );
      if (!changed) return null;
      return tx.all<UploadPartRow>(`DELETE FROM upload_parts WHERE upload_id = $id RETURNING ${PART_COLUMNS}`, { id });
    });
  }

  sweep(now: number, forgetBefore: number, limit: number) {
    return this.db.tx(async (tx) => {
      const parts = await tx.all<UploadPartRow>(
        `DELETE FROM upload_parts WHERE upload_id IN (
           SELECT id FROM uploads WHERE expires_at <= $now AND status = 'pending' AND ${UNCLAIMED} AND EXISTS (SELECT 1 FROM upload_parts p WHERE p.upload_id = uploads.id)
           ORDER BY expires_at LIMIT $limit FOR UPDATE SKIP LOCKED)
         RETURNING ${PART_COLUMNS}`,
        { now, limit },
      );
      const forgotten = await tx.run(
        `DELETE FROM uploads WHERE id IN (
           SELECT id FROM uploads WHERE expires_at < $forgetBefore AND ${UNCLAIMED} AND NOT EXISTS (SELECT 1 FROM upload_parts p WHERE p.upload_id = uploads.id)
           ORDER BY expires_at LIMIT $limit FOR UPDATE SKIP LOCKED)`,
        { now, forgetBefore, limit },
      );
      return { parts, forgotten };
    });
  }

  async partExists(id: string) {
    return (await this.db.get(`SELECT 1 FROM upload_parts WHERE id = $id`, { id })) !== null;
  }

}
