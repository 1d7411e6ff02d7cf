// The Uploads API (/v1/uploads): a file sent in parts, each stored as a blob of its own as it
// arrives, then completed into one file that goes the way of any upload (checked, committed,
// queued for ingestion). What the SDKs use for files too large for one request.
import { createHash } from "node:crypto";
import { fail, notFound, type RagdError } from "../errors";
import type { UploadPartRow, UploadRow, UploadsRepo } from "../storage/repos";
import { TOMBSTONE_SECONDS } from "../storage/sql-common";
import { isPartId, isUploadId, newFileId, newPartId, newUploadId } from "../util/ids";
import { formatSize } from "../util/size";
import { nowSeconds } from "../util/time";
import { toFileObject, type CreateInput, type FileObject, type FilesService, type Upload } from "./files";

/** An upload is open for parts this long after its creation (OpenAI's hour). */
export const UPLOAD_SECONDS = 3600;
/** OpenAI's limit for one part. */
export const PART_MAX_BYTES = 64 * 1024 ** 2;
// Parts one upload may have: 8 GB (OpenAI's most for an upload) in parts of 1 MB.
const MAX_PARTS = 8192;
// Uploads whose parts (or rows) the expiry sweep drops in one step.
const SWEEP_STEP = 100;

export interface UploadObject {
  id: string;
  object: "upload";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: "pending" | "completed" | "cancelled" | "expired";
  expires_at: number;
  file: FileObject | null;
}

export interface UploadPartObject {
  id: string;
  object: "upload.part";
  created_at: number;
  upload_id: string;
}

export interface CreateUploadInput {
  filename: string;
  purpose: string;
  bytes: number;
  mimeType: string;
  expiresAfter?: CreateInput["expiresAfter"];
}

export class UploadsService {
  /** Uploads this process is completing: a second complete or a cancel meanwhile is refused. */
  private readonly completing = new Set<string>();

  constructor(
    private readonly repo: UploadsRepo,
    private readonly files: FilesService,
    private readonly maxFileSize: number,
    private readonly now: () => number = nowSeconds,
  ) {
    // A part's blob is named by its row, not a file's: the orphan sweep must keep it.
    files.attachBlobOwner((key) => (isPartId(key) ? repo.partExists(key) : Promise.resolve(false)));
  }

  async create(projectId: string, input: CreateUploadInput): Promise<UploadObject> {
    this.files.checkInput({ filename: input.filename, purpose: input.purpose, expiresAfter: input.expiresAfter });
    if (input.bytes > this.maxFileSize) throw fail("file_too_large", `The upload's ${formatSize(input.bytes)} is more than the ${formatSize(this.maxFileSize)} limit per file.`, "bytes");
    const createdAt = this.now();
    const row: UploadRow = {
      id: newUploadId(),
      projectId,
      filename: input.filename,
      purpose: input.purpose,
      bytes: input.bytes,
      mimeType: input.mimeType,
      expiresAfter: input.expiresAfter ? JSON.stringify(input.expiresAfter) : null,
      createdAt,
      expiresAt: createdAt + UPLOAD_SECONDS,
      status: "pending",
      fileId: newFileId(),
    };
    await this.repo.insert(row);
    return this.toObject(row);
  }

  /** Opens the blob of a part about to arrive; `addPart` records it once its bytes are in. */
  async beginPart(projectId: string, uploadId: string, declaredBytes: number): Promise<Upload> {
    const u = this.pending(await this.find(projectId, uploadId));
    // The parts never hold more than the upload's bytes, and count against the project's quota until completed.
    const stored = (await this.repo.parts(uploadId)).reduce((n, p) => n + p.bytes, 0);
    const room = u.bytes - stored;
    if (room <= 0) throw fail("upload_size_mismatch", `Upload ${uploadId}'s parts already hold its ${u.bytes} bytes: complete it, or cancel it and create one for the bytes you send.`, "data");
    let limit = Math.min(PART_MAX_BYTES, room);
    let overLimit = () => fail("file_too_large", `This part may hold at most ${formatSize(limit)} (${limit === PART_MAX_BYTES ? "64 MB a part" : "what is left of the upload's bytes"}).`, "data");
    const quotaLeft = (await this.files.quotaLeft(projectId)) - (await this.repo.partBytes(projectId));
    if (quotaLeft < limit) {
      limit = Math.max(0, quotaLeft);
      overLimit = () => fail("quota_exceeded", `The part would exceed the project's storage quota of ${formatSize(this.files.projectQuota)} (uploads' parts count until completed; ${formatSize(limit)} left).`, "data");
    }
    return this.files.beginPart(newPartId(), declaredBytes, limit, overLimit);
  }

  /** Commits a received part's blob, then its row; on any failure the blob is gone. */
  async addPart(projectId: string, uploadId: string, up: Upload): Promise<UploadPartObject> {
    try {
      if (up.writer.bytes === 0) throw fail("empty_file", "The part is empty. Send its bytes as the multipart 'data' part.", "data");
      await up.writer.commit();
      const part: UploadPartRow = { id: up.id, uploadId, bytes: up.writer.bytes, createdAt: this.now() };
      if ((await this.repo.parts(uploadId)).length >= MAX_PARTS) throw fail("invalid_value", `An upload takes at most ${MAX_PARTS} parts.`, "data");
      if (this.completing.has(uploadId)) throw fail("upload_not_pending", `Upload ${uploadId} is being completed and takes no more parts.`);
      // (pending and unexpired checked again in the insert: a complete or cancel elsewhere may have ended it meanwhile)
      if (!(await this.repo.addPart(part, this.now()))) this.pending(await this.find(projectId, uploadId), true);
      return { id: part.id, object: "upload.part", created_at: part.createdAt, upload_id: uploadId };
    } catch (e) {
      await up.writer.abort();
      await this.files.deleteBlobs([up.id]);
      throw e;
    } finally {
      up.ended();
    }
  }

  /**
   * Joins the parts, in the order given, into the upload's file. The file's id was chosen when
   * the upload was created: a complete cut short by a crash after the file's row was committed
   * finds it there when tried again, rather than making a second file.
   */
  async complete(projectId: string, uploadId: string, partIds: string[], md5?: string): Promise<UploadObject> {
    const u = this.pending(await this.find(projectId, uploadId));
    if (this.completing.has(uploadId)) throw fail("upload_not_pending", `Upload ${uploadId} is already being completed.`);
    this.completing.add(uploadId);
    try {
      if (!(await this.files.exists(u.fileId))) await this.assemble(projectId, u, partIds, md5);
      const parts = await this.repo.finish(projectId, uploadId, "completed");
      // (ended meanwhile by another process: the file stands, as that process's answer said nothing of it)
      if (parts) await this.files.deleteBlobs(parts.map((p) => p.id));
      return this.toObject({ ...u, status: "completed" });
    } finally {
      this.completing.delete(uploadId);
    }
  }

  async cancel(projectId: string, uploadId: string): Promise<UploadObject> {
    const u = this.pending(await this.find(projectId, uploadId));
    if (this.completing.has(uploadId)) throw fail("upload_not_pending", `Upload ${uploadId} is being completed and can no longer be cancelled.`);
    const parts = await this.repo.finish(projectId, uploadId, "cancelled");
    if (!parts) this.pending(await this.find(projectId, uploadId), true);
    await this.files.deleteBlobs(parts!.map((p) => p.id));
    return this.toObject({ ...u, status: "cancelled" });
  }

  /** Drops the parts of uploads that expired pending, and forgets uploads a week past their expiry. */
  async sweepExpired(): Promise<number> {
    let dropped = 0;
    for (;;) {
      const now = this.now();
      const parts = await this.repo.sweep(now, now - TOMBSTONE_SECONDS, SWEEP_STEP);
      await this.files.deleteBlobs(parts.map((p) => p.id));
      dropped += parts.length;
      if (parts.length === 0) return dropped;
    }
  }

  private async assemble(projectId: string, u: UploadRow, partIds: string[], md5: string | undefined) {
    if (!Array.isArray(partIds) || partIds.length === 0) throw fail("invalid_value", "part_ids must list the upload's parts, in order.", "part_ids");
    const parts = new Map((await this.repo.parts(u.id)).map((p) => [p.id, p]));
    const seen = new Set<string>();
    let total = 0;
    for (const [i, id] of partIds.entries()) {
      const p = typeof id === "string" ? parts.get(id) : undefined;
      if (!p) throw fail("invalid_value", `part_ids[${i}] (${JSON.stringify(id)}) is not a part of upload ${u.id}.`, "part_ids");
      if (seen.has(id)) throw fail("invalid_value", `part_ids lists ${id} twice.`, "part_ids");
      seen.add(id);
      total += p.bytes;
    }
    if (total !== u.bytes)
      throw fail("upload_size_mismatch", `The parts listed hold ${total} bytes, but upload ${u.id} was created for ${u.bytes}. List every part, or create the upload with the bytes you send.`, "part_ids");
    const up = await this.files.beginUpload(projectId, total, u.fileId);
    const hash = md5 === undefined ? null : createHash("md5");
    try {
      for (const id of partIds) {
        for await (const chunk of await this.files.blobStream(id)) {
          if (up.writer.bytes + chunk.length > up.limit) throw up.overLimit();
          hash?.update(chunk);
          await up.writer.write(chunk);
        }
      }
      if (up.writer.bytes !== total) throw new Error(`the parts of upload ${u.id} held ${up.writer.bytes} bytes in storage, ${total} by their rows`);
      if (hash && hash.digest("hex") !== md5!.toLowerCase()) throw fail("checksum_mismatch", "The MD5 of the parts' bytes is not the md5 given. Send the parts again, or check how the checksum was computed.", "md5");
    } catch (e) {
      await up.writer.abort();
      up.ended();
      throw e;
    }
    const expiresAfter = u.expiresAfter ? (JSON.parse(u.expiresAfter) as CreateInput["expiresAfter"]) : undefined;
    await this.files.create(projectId, up, { filename: u.filename, declaredType: u.mimeType, purpose: u.purpose, expiresAfter });
  }

  private async find(projectId: string, uploadId: string): Promise<UploadRow> {
    const u = isUploadId(uploadId) ? await this.repo.get(projectId, uploadId) : null;
    if (!u) throw notFound("Upload", uploadId);
    return u;
  }

  /** The upload if it still takes parts; else the error saying what it is now (`always`: whatever it says). */
  private pending(u: UploadRow, always = false): UploadRow {
    const status = this.statusOf(u);
    if (status === "pending" && !always) return u;
    const why: Record<string, string> = {
      pending: "changed while this request ran; retry",
      completed: "is already completed",
      cancelled: "was cancelled",
      expired: `expired an hour after its creation (at ${new Date(u.expiresAt * 1000).toISOString()}); create a new upload`,
    };
    throw fail("upload_not_pending", `Upload ${u.id} ${why[status]}.`) as RagdError;
  }

  private statusOf(u: UploadRow): UploadObject["status"] {
    return u.status === "pending" && u.expiresAt <= this.now() ? "expired" : u.status;
  }

  private async toObject(u: UploadRow): Promise<UploadObject> {
    let file: FileObject | null = null;
    if (u.status === "completed") file = await this.files.get(u.projectId, u.fileId).then(toFileObject, () => null);
    return { id: u.id, object: "upload", bytes: u.bytes, created_at: u.createdAt, filename: u.filename, purpose: u.purpose, status: this.statusOf(u), expires_at: u.expiresAt, file };
  }
}
