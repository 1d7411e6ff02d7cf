// The Uploads API (/v1/uploads): a file sent in parts, each stored as a blob of its own as it
// arrives, then completed into one file that goes the way of any upload (checked, committed,
// queued for ingestion). What the SDKs use for files too large for one request.
import { createHash } from "node:crypto";
import { bytesMissingMessage, fail, notFound, RagdError } from "../errors";
import { BlobMissing } from "../storage/blobs";
import { UPLOAD_PARTS_SLACK, type UploadPartRow, type UploadRow, type UploadsRepo } from "../storage/repos";
import { TOMBSTONE_SECONDS } from "../storage/sql-common";
import { isPartId, isUploadId, newFileId, newPartId, newUploadId, randomBase62 } from "../util/ids";
import { log } from "../util/log";
import { formatSize } from "../util/size";
import { nowSeconds } from "../util/time";
import { overQuota, toFileObject, type CreateInput, type FileObject, type FilesService, type Upload } from "./files";

/** An upload is open for parts this long after its creation (OpenAI's hour). */
export const UPLOAD_SECONDS = 3600;
/** OpenAI's limit for one part. */
export const PART_MAX_BYTES = 64 * 1024 ** 2;
// Parts one upload may have: 8 GB (OpenAI's most for an upload) in parts of 1 MB.
const MAX_PARTS = 8192;
// Uploads whose parts (or rows) the expiry sweep drops in one step.
const SWEEP_STEP = 100;
// How long a complete's claim on its upload lasts; renewed after each part it reads, so only a
// process that died (or stalled this long) loses it.
const CLAIM_SECONDS = 600;

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
  /** Completes under way in this process, by upload: a second one for the same upload gets the first one's answer. */
  private readonly completing = new Map<string, Promise<UploadObject>>();
  /** Names this process's claims (UploadsRepo.claim). */
  private readonly claimant = `proc_${randomBase62(16)}`;

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
    // (the name as the file will have it: a path sent is cut to its last part)
    const { filename } = this.files.checkInput({ filename: input.filename, purpose: input.purpose, expiresAfter: input.expiresAfter, mimeType: input.mimeType });
    if (input.bytes > this.maxFileSize) throw fail("file_too_large", `The upload's ${formatSize(input.bytes)} is more than the ${formatSize(this.maxFileSize)} limit per file.`, "bytes");
    const createdAt = this.now();
    const row: UploadRow = {
      id: newUploadId(),
      projectId,
      filename,
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
    const u = await this.find(projectId, uploadId);
    // (refused before its bytes are read: the insert would refuse it after)
    if (this.held(u)) throw busy(u, this.now());
    this.pending(u);
    // A part is no larger than the upload; the parts together hold at most twice its bytes
    // (UPLOAD_PARTS_SLACK), and count against the project's quota until completed.
    const stored = (await this.repo.parts(uploadId)).reduce((n, p) => n + p.bytes, 0);
    const room = UPLOAD_PARTS_SLACK * u.bytes - stored;
    if (room <= 0) throw partsFull(u, stored);
    let limit = Math.min(PART_MAX_BYTES, u.bytes, room);
    const why = limit === PART_MAX_BYTES ? "64 MB a part" : limit === u.bytes ? "the upload's bytes" : "what is left of twice the upload's bytes, which its parts may hold";
    let overLimit = () => fail("file_too_large", `This part may hold at most ${formatSize(limit)} (${why}).`, "data");
    const quotaLeft = await this.files.quotaLeft(projectId);
    if (quotaLeft < limit) {
      limit = Math.max(0, quotaLeft);
      overLimit = () => this.partOverQuota(limit);
    }
    return this.files.beginPart(newPartId(), declaredBytes, limit, overLimit);
  }

  /**
   * Commits a received part's blob, then its row. A part refused, or failing before its row was
   * asked for, takes its blob with it; a row insert whose outcome is unknown (a connection lost
   * as it committed) leaves the blob to the orphan sweep, which keeps it if the row is there.
   */
  async addPart(projectId: string, uploadId: string, up: Upload): Promise<UploadPartObject> {
    let committed = false;
    let asking = false;
    try {
      if (up.writer.bytes === 0) throw fail("empty_file", "The part is empty. Send its bytes as the multipart 'data' part.", "data");
      await up.writer.commit();
      committed = true;
      const part: UploadPartRow = { id: up.id, uploadId, bytes: up.writer.bytes, createdAt: this.now() };
      asking = true;
      const added = await this.repo.addPart(part, this.now(), MAX_PARTS, this.files.projectQuota);
      asking = false;
      if (!added) await this.whyNoPart(projectId, uploadId, part.bytes);
      return { id: part.id, object: "upload.part", created_at: part.createdAt, upload_id: uploadId };
    } catch (e) {
      if (!committed) await up.writer.abort();
      else if (!asking) await this.files.deleteBlobs([up.id]);
      throw e;
    } finally {
      up.ended();
    }
  }

  private partOverQuota(left?: number) {
    return overQuota("The part", this.files.projectQuota, "data", left);
  }

  /** Why a part was refused, read after the fact (its insert checks it all at once). */
  private async whyNoPart(projectId: string, uploadId: string, bytes: number): Promise<never> {
    const u = this.pending(await this.find(projectId, uploadId));
    const parts = await this.repo.parts(uploadId);
    const held = parts.reduce((n, p) => n + p.bytes, 0);
    if (held + bytes > UPLOAD_PARTS_SLACK * u.bytes) throw partsFull(u, held);
    if (parts.length >= MAX_PARTS) throw fail("invalid_value", `An upload takes at most ${MAX_PARTS} parts.`, "data");
    if ((await this.files.quotaLeft(projectId)) < bytes)
      throw this.partOverQuota();
    throw busy(u, this.now());
  }

  /**
   * Joins the parts, in the order given, into one file. The upload is claimed first
   * (UploadsRepo.claim) under a file id of this attempt's own: while the claim lasts no other
   * request, on any process, adds a part, completes or cancels it, and the expiry sweep leaves
   * it. The file's row is written in the same transaction that ends the upload, and only while
   * this claim still holds it, so an attempt that lost its claim (stalled past it) makes no file
   * and touches no blob but its own. A complete of a completed upload answers it again, with its
   * file; one asked again while this process runs the first gets the first one's answer.
   */
  complete(projectId: string, uploadId: string, partIds: string[], md5?: string): Promise<UploadObject> {
    const key = `${projectId}\u0000${uploadId}`;
    const running = this.completing.get(key);
    if (running) return running;
    const run = this.completeOnce(projectId, uploadId, partIds, md5).finally(() => this.completing.delete(key));
    this.completing.set(key, run);
    return run;
  }

  private async completeOnce(projectId: string, uploadId: string, partIds: string[], md5?: string): Promise<UploadObject> {
    const u = await this.find(projectId, uploadId);
    if (u.status === "completed") return this.toObject(u);
    // (held by a complete elsewhere, even past its expiry: that one will make the file)
    if (this.held(u)) throw busy(u, this.now());
    this.pending(u);
    const fileId = newFileId();
    const claim = (until: number) => this.repo.claim(projectId, uploadId, this.claimant, this.now(), until, fileId);
    if (!(await claim(this.now() + CLAIM_SECONDS))) return this.refused(projectId, uploadId, true);
    let lost = false;
    let parts: UploadPartRow[] = [];
    try {
      const up = await this.assemble(projectId, u, fileId, partIds, md5, () => claim(this.now() + CLAIM_SECONDS));
      const expiresAfter = u.expiresAfter ? (JSON.parse(u.expiresAfter) as CreateInput["expiresAfter"]) : undefined;
      await this.files.create(projectId, up, { filename: u.filename, declaredType: u.mimeType, purpose: u.purpose, expiresAfter }, async (row, quota, nowMs) => {
        const r = await this.repo.complete(projectId, uploadId, this.claimant, row, quota, nowMs);
        if (r === "lost") lost = true;
        if (typeof r === "string") return false;
        parts = r;
        return true;
      });
    } catch (e) {
      if (lost || e instanceof ClaimLost) return this.refused(projectId, uploadId, true);
      // refused: the claim goes (the parts stay, for another complete or a cancel)
      await claim(this.now()).catch(() => {});
      throw e;
    }
    await this.files.deleteBlobs(parts.map((p) => p.id));
    return this.toObject({ ...u, status: "completed", fileId });
  }

  /**
   * The answer when the upload is not this request's to complete or cancel, read again to say
   * why: completed by another request (a complete answers it, with its file), ended, or held by
   * a complete under way (409: ask again).
   */
  private async refused(projectId: string, uploadId: string, completing = false): Promise<UploadObject> {
    const u = await this.find(projectId, uploadId);
    if (completing && u.status === "completed") return this.toObject(u);
    if (!this.held(u)) this.pending(u, true);
    throw busy(u, this.now());
  }

  /** A complete's claim holds the pending upload now. */
  private held(u: UploadRow) {
    return u.status === "pending" && (u.claimedUntil ?? 0) > this.now();
  }

  async cancel(projectId: string, uploadId: string): Promise<UploadObject> {
    const u = await this.find(projectId, uploadId);
    if (this.held(u)) throw busy(u, this.now());
    this.pending(u);
    const parts = await this.repo.cancel(projectId, uploadId, this.now());
    if (!parts) return this.refused(projectId, uploadId);
    await this.files.deleteBlobs(parts.map((p) => p.id));
    return this.toObject({ ...u, status: "cancelled" });
  }

  /** Drops the parts of uploads that expired pending, and forgets uploads a week past their expiry. */
  async sweepExpired(): Promise<number> {
    let dropped = 0;
    for (;;) {
      const now = this.now();
      const { parts, forgotten } = await this.repo.sweep(now, now - TOMBSTONE_SECONDS, SWEEP_STEP);
      await this.files.deleteBlobs(parts.map((p) => p.id));
      dropped += parts.length;
      if (parts.length === 0 && forgotten < SWEEP_STEP) return dropped;
    }
  }

  /** The parts listed, checked, streamed in order into a new blob of the file (the claim renewed after each part). */
  private async assemble(projectId: string, u: UploadRow, fileId: string, partIds: string[], md5: string | undefined, renew: () => Promise<boolean>): Promise<Upload> {
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
    // (the upload's own parts become the file: they count once, as the file, as its insert counts them)
    const own = [...parts.values()].reduce((n, p) => n + p.bytes, 0);
    const up = await this.files.beginUpload(projectId, total, fileId, own);
    const hash = md5 === undefined ? null : createHash("md5");
    try {
      for (const id of partIds) {
        try {
          for await (const chunk of await this.files.blobStream(id)) {
            if (up.writer.bytes + chunk.length > up.limit) throw up.overLimit();
            hash?.update(chunk);
            await up.writer.write(chunk);
          }
        } catch (e) {
          // (a part dropped by a cancel, a complete or the sweep after this attempt's claim lapsed)
          if (!(e instanceof RagdError) && !(await renew())) throw new ClaimLost();
          if (e instanceof BlobMissing) {
            log.error("an upload part's bytes are missing from the file store", { upload_id: u.id, part_id: id });
            throw fail("stored_bytes_missing", bytesMissingMessage(`part ${id} of upload ${u.id}`, "Cancel this upload and send the file again in a new one."), "part_ids");
          }
          throw e;
        }
        if (!(await renew())) throw new ClaimLost();
      }
      if (up.writer.bytes !== total) throw new Error(`the parts of upload ${u.id} held ${up.writer.bytes} bytes in storage, ${total} by their rows`);
      if (hash && hash.digest("hex") !== md5!.toLowerCase()) throw fail("checksum_mismatch", "The MD5 of the parts' bytes is not the md5 given. Send the parts again, or check how the checksum was computed.", "md5");
      return up;
    } catch (e) {
      await up.writer.abort();
      up.ended();
      throw e;
    }
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

/** The claim on an upload went to another request while this one read its parts. */
class ClaimLost extends Error {}

/**
 * Parts past twice the upload's bytes: room enough for every part sent twice (an SDK retries
 * a part whose answer was lost, and the copy it stored stays), a bound on what an upload holds.
 */
function partsFull(u: UploadRow, held: number) {
  return fail("upload_size_mismatch", `Upload ${u.id}'s parts already hold ${held} bytes, and its parts may hold at most twice its ${u.bytes}: complete it with the parts that make its bytes, or cancel it and send them again.`, "data");
}

/** 409 with retry-after: another complete holds the upload (the SDKs retry it, and then learn how it ended). */
function busy(u: UploadRow, now: number): RagdError {
  // (a few seconds, not the claim's whole length: a complete under way usually ends sooner)
  const wait = Math.min(5, Math.max(1, Math.ceil((u.claimedUntil ?? 0) - now)));
  return new RagdError("upload_busy", `Upload ${u.id} is being completed by another request. Ask again in a few seconds: a complete then answers with the upload and its file.`, null, { "retry-after": String(wait) });
}
