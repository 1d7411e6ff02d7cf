import { BlobMissing, type BlobStore, type BlobWriter } from "../storage/blobs";
import { isDiskFull, type DiskSpace } from "../storage/disk-space";
import { listPage } from "./pagination";
import { nowSeconds } from "../util/time";
import type { FileRow, FilesRepo } from "../storage/repos";
import { contentTypeFor, extensionOf, sniffImage, typeNeedsHead } from "../util/content-type";
import { isFileId, newFileId } from "../util/ids";
import { formatSize } from "../util/size";
import { bytesMissingMessage, fail, notFound, RagdError } from "../errors";
import { log } from "../util/log";

export const PURPOSES = ["knowledge_base", "assistants", "user_data", "batch", "fine-tune", "evals", "vision"] as const;
export type Purpose = (typeof PURPOSES)[number];
/** Purposes of files OpenAI's own services write (a batch's results, say): ragd writes none, so listing by them finds nothing. */
export const OUTPUT_PURPOSES = ["assistants_output", "batch_output", "fine-tune-results"] as const;
/** Purposes whose files are parsed, embedded and join the project's knowledge base. */
export const EMBEDDABLE: ReadonlySet<string> = new Set(["knowledge_base", "assistants", "user_data"]);
const JSONL_PURPOSES: ReadonlySet<string> = new Set(["batch", "fine-tune", "evals"]);

/** A file or an upload's part refused by the project's quota, with what is left when known (a refusal at commit, on a race, knows it not). */
export function overQuota(what: "File" | "The part", quota: number, param: string, left?: number) {
  const room = left === undefined ? "" : `; ${formatSize(left)} left`;
  return fail("quota_exceeded", `${what} would exceed the project's storage quota of ${formatSize(quota)} (uploads' parts count until completed${room}). Delete files, cancel uploads, or raise --project-quota.`, param);
}

export const EXPIRES_MIN = 3600;
export const EXPIRES_MAX = 2592000;
const BATCH_DEFAULT_EXPIRY = 30 * 86400;
const MAX_FILENAME_BYTES = 255;
const ORPHAN_SWEEP_STEP = 256;

export interface FileObject {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: FileRow["status"];
  status_details: string | null;
  expires_at: number | null;
}

export const toFileObject = (r: FileRow): FileObject => ({
  id: r.id,
  object: "file",
  bytes: r.bytes,
  created_at: r.createdAt,
  filename: r.filename,
  purpose: r.purpose,
  status: r.status,
  status_details: r.statusDetails,
  expires_at: r.expiresAt,
});

export interface Upload {
  id: string;
  writer: BlobWriter;
  /** The most bytes this upload may have: the file size limit or what is left of the quota. */
  limit: number;
  /** The error an upload past the limit gets. */
  overLimit: () => RagdError;
  /** The upload is over (its row committed, or it failed or was aborted): its blob is no longer in flight. */
  ended: () => void;
}

export interface CreateInput {
  filename: string;
  declaredType?: string;
  purpose?: string;
  expiresAfter?: { anchor: unknown; seconds: unknown };
}

export interface ListParams {
  purpose?: string;
  after?: string;
  limit: number;
  offset: number;
  order: "asc" | "desc";
  /** Answer `total` too (offset listing). */
  withTotal?: boolean;
}

export interface Limits {
  maxFileSize: number;
  projectQuota: number;
}

/** What the ingestion pipeline needs to hear from the files service. */
export interface IngestHooks {
  /** A job was committed with a file: look for work now rather than at the next poll. */
  wake(): void;
  cancel(fileId: string): void;
}

// Pages kept between writes; a burst of clients reading the same lists fits, a crawl does not evict it for long.
const PAGE_CACHE_ENTRIES = 512;

export class FilesService {
  private ingest: IngestHooks | null = null;
  // Listing pages as sent, while nothing was written since (the repository's change token).
  private pages = new Map<string, string>();
  private pagesToken = "";

  constructor(
    private readonly repo: FilesRepo,
    private readonly blobs: BlobStore,
    private readonly limits: Limits,
    private readonly disk: DiskSpace | null = null,
    private readonly now: () => number = nowSeconds,
  ) {}

  /**
   * Blobs whose row this process is changing: uploads between their blob's creation and their
   * end, deletes between the row's and the blob's. Never orphans: an upload's row is not
   * there yet, and a deleted row is visible to reads before its commit is synced (a crash
   * then would bring the row back, so its blob must stay until the delete is answered).
   */
  private readonly inFlight = new Map<string, number>();
  /** For each row lookup of the orphan sweep under way, the marks that ended during it. */
  private readonly lookups = new Set<Set<string>>();

  /** Marks a blob in flight; the answer ends this mark, once however often it is called. */
  private begin(id: string) {
    // counted: a delete of the same id from another project ends its own mark, not the owner's
    this.inFlight.set(id, (this.inFlight.get(id) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const n = this.inFlight.get(id)! - 1;
      if (n > 0) this.inFlight.set(id, n);
      else this.inFlight.delete(id);
      for (const l of this.lookups) l.add(id);
    };
  }

  attachIngest(hooks: IngestHooks) {
    this.ingest = hooks;
  }

  /**
   * Opens a blob for an incoming file; nothing is visible until `create` commits it. A full
   * disk (or a declared size that cannot fit beside the reserve) is refused before any byte is read.
   */
  async beginUpload(projectId: string, declaredBytes = 0, id = newFileId(), ownParts = 0): Promise<Upload> {
    let limit = this.limits.maxFileSize;
    let overLimit = () => fail("file_too_large", `File is larger than the ${formatSize(this.limits.maxFileSize)} limit per file.`, "file");
    if (this.limits.projectQuota > 0) {
      // (`ownParts`: an upload's complete, whose parts the file replaces)
      const left = Math.max(0, this.limits.projectQuota - (await this.repo.usedBytes(projectId)) + ownParts);
      if (left < limit) {
        limit = left;
        overLimit = () => overQuota("File", this.limits.projectQuota, "file", left);
      }
    }
    // Past the limit the upload gets its 413 from the receiver; within it, space decides.
    if (declaredBytes <= limit) this.disk?.admit(declaredBytes);
    return this.openBlob(id, limit, overLimit);
  }

  /**
   * Opens a blob for a part of an upload (/v1/uploads), named by the part's id: at most `limit`
   * bytes, refused before any byte is read on a full disk. The part's row is the caller's.
   */
  async beginPart(partId: string, declaredBytes: number, limit: number, overLimit: () => RagdError): Promise<Upload> {
    if (declaredBytes <= limit) this.disk?.admit(declaredBytes);
    return this.openBlob(partId, limit, overLimit);
  }

  /** Deletes blobs whose rows are gone (an upload's parts once it ended); a failure leaves an orphan the sweep removes. */
  async deleteBlobs(keys: string[]) {
    for (const key of keys) {
      const ended = this.begin(key);
      try {
        await this.blobs.delete(key);
      } catch {
        // the orphan sweep removes it later
      } finally {
        ended();
      }
    }
  }

  /** The bytes of a blob this service does not list as a file (an upload's part). */
  async blobStream(key: string): Promise<ReadableStream<Uint8Array>> {
    const body = await this.blobs.read(key);
    return body instanceof ReadableStream ? body : body.stream();
  }

  /** Rows other than files' that may name a blob (an upload's parts): the orphan sweep keeps theirs. */
  attachBlobOwner(owns: (key: string) => Promise<boolean>) {
    this.otherOwners.push(owns);
  }

  private readonly otherOwners: ((key: string) => Promise<boolean>)[] = [];

  private async openBlob(id: string, limit: number, overLimit: () => RagdError): Promise<Upload> {
    const ended = this.begin(id);
    let writer: BlobWriter;
    try {
      writer = await this.blobs.create(id);
    } catch (e) {
      ended();
      throw e;
    }
    // Every path that gives up on an upload aborts its writer: that ends it too.
    const tracked: BlobWriter = {
      get bytes() {
        return writer.bytes;
      },
      write: (chunk) => writer.write(chunk),
      stream: () => writer.stream(),
      commit: () => writer.commit(),
      abort: () => writer.abort().finally(ended),
    };
    return { id, writer: tracked, limit, overLimit, ended };
  }

  /**
   * What `create` would refuse in a file's name, purpose and expiry, checked before any byte
   * arrives (an upload's create, whose request names them: `filename`, `mime_type`).
   */
  checkInput(input: CreateInput & { mimeType: string }): { filename: string } {
    const purpose = this.checkPurpose(input.purpose);
    const filename = checkFilename(input.filename, "filename");
    checkJsonlName(filename, purpose, "filename");
    if (purpose === "vision" && !/^image\//i.test(input.mimeType))
      throw fail("invalid_file_format", `Files with purpose 'vision' must be images: give the upload an image mime_type (image/png, image/jpeg, image/gif, image/webp, image/bmp or image/tiff), not '${input.mimeType}'.`, "mime_type");
    this.expiry(purpose, this.now(), input.expiresAfter);
    return { filename };
  }

  /** What the project may still store under its quota (Infinity without one). */
  async quotaLeft(projectId: string): Promise<number> {
    if (this.limits.projectQuota <= 0) return Infinity;
    return Math.max(0, this.limits.projectQuota - (await this.repo.usedBytes(projectId)));
  }

  get projectQuota() {
    return this.limits.projectQuota;
  }

  /** Whether a file row holds this id (live or expired, any project). */
  exists(id: string) {
    return this.repo.exists(id);
  }

  /**
   * Validates a fully received upload and commits blob then row. On any failure the blob is gone.
   * `insert`: how the row is written, when not by FilesRepo.insert alone (an upload's complete
   * writes it with the upload's own end, UploadsRepo.complete); false means refused by the quota.
   */
  async create(projectId: string, up: Upload, input: CreateInput, insert?: (row: FileRow, quota: number, nowMs: number) => Promise<boolean>): Promise<FileObject> {
    try {
      const purpose = this.checkPurpose(input.purpose);
      const filename = checkFilename(input.filename);
      if (up.writer.bytes === 0) throw fail("empty_file", "The file is empty. Upload a file with content.", "file");
      const createdAt = this.now();
      const expiresAt = this.expiry(purpose, createdAt, input.expiresAfter);
      const status: FileRow["status"] = EMBEDDABLE.has(purpose) ? "uploaded" : "processed";
      if (JSONL_PURPOSES.has(purpose)) await checkJsonl(filename, purpose, up.writer);
      const head = typeNeedsHead(filename, input.declaredType, purpose === "vision") ? await firstBytes(up.writer) : undefined;
      if (purpose === "vision" && !sniffImage(head ?? new Uint8Array()))
        throw fail("invalid_file_format", "Files with purpose 'vision' must be images (PNG, JPEG, GIF, WebP, BMP or TIFF).", "file");
      const { sha256 } = await up.writer.commit();
      const row: FileRow = {
        id: up.id,
        projectId,
        bytes: up.writer.bytes,
        createdAt,
        filename,
        purpose,
        status,
        statusDetails: null,
        expiresAt,
        contentType: contentTypeFor(filename, input.declaredType, head, purpose === "vision"),
        sha256,
      };
      if (!(await (insert ?? ((r, q, n) => this.repo.insert(r, q, n)))(row, this.limits.projectQuota, Date.now()))) {
        await this.blobs.delete(up.id);
        throw overQuota("File", this.limits.projectQuota, "file");
      }
      if (status === "uploaded") this.ingest?.wake();
      return toFileObject(row);
    } catch (e) {
      await up.writer.abort();
      throw e;
    } finally {
      up.ended();
    }
  }

  async list(projectId: string, p: ListParams) {
    if (p.purpose !== undefined && !(OUTPUT_PURPOSES as readonly string[]).includes(p.purpose)) this.checkPurpose(p.purpose, "purpose");
    let afterSeq: number | undefined;
    if (p.after !== undefined) {
      const seq = isFileId(p.after) ? await this.repo.cursorSeq(projectId, p.after) : null;
      if (seq === null) throw fail("invalid_cursor", `No file with id '${p.after}' to list after. Pass the id of a file from a previous page (a deleted file's id serves for a week).`, "after");
      afterSeq = seq;
    }
    // The SDKs keep every query parameter when they follow `after`, so an offset applies
    // only to the first page; otherwise auto-pagination would skip files on every page.
    const offset = afterSeq === undefined ? p.offset : 0;
    const now = this.now();
    const { rows, hasMore } = await this.repo.list(projectId, { purpose: p.purpose, afterSeq, offset, limit: p.limit, order: p.order }, now);
    const page = listPage(rows.map(toFileObject), hasMore);
    // Offset paging (a ragd extension) also says how many files match, to draw page numbers.
    return p.withTotal ? { ...page, total: await this.repo.count(projectId, p.purpose, now) } : page;
  }

  /**
   * A listing page as JSON text. The same page is read by many clients at once (a console, SDK
   * pollers), so it is kept until the next write: the database is read and the page serialized
   * once per change instead of once per request.
   */
  async listJson(projectId: string, p: ListParams): Promise<string> {
    const token = await this.repo.changeToken();
    if (token !== this.pagesToken) {
      this.pages.clear();
      this.pagesToken = token;
    }
    // Expiry hides files as seconds pass: a page is good for the second it was read in.
    const key = JSON.stringify([projectId, p.purpose, p.after, p.limit, p.offset, p.order, p.withTotal, this.now()]);
    const hit = this.pages.get(key);
    if (hit !== undefined) return hit;
    const json = JSON.stringify(await this.list(projectId, p));
    if (this.pagesToken === token) {
      if (this.pages.size >= PAGE_CACHE_ENTRIES) this.pages.clear();
      this.pages.set(key, json);
    }
    return json;
  }

  async get(projectId: string, id: string): Promise<FileRow> {
    const row = isFileId(id) ? await this.repo.get(projectId, id, this.now()) : null;
    if (!row) throw notFound("File object", id);
    return row;
  }

  async content(projectId: string, id: string, range?: { start: number; end: number }) {
    const row = await this.get(projectId, id);
    try {
      return { row, body: await this.blobs.read(row.id, range) };
    } catch (e) {
      if (!(e instanceof BlobMissing)) throw e;
      // (deleted while this read: not found, as it would be a moment later)
      await this.get(projectId, id);
      log.error("a file's bytes are missing from the file store", { file_id: row.id });
      throw fail("stored_bytes_missing", bytesMissingMessage(`file ${row.id}`, "Delete the file and upload it again."));
    }
  }

  async delete(projectId: string, id: string) {
    if (!isFileId(id)) throw notFound("File object", id);
    const ended = this.begin(id);
    try {
      const now = this.now();
      const row = await this.whenFullReleaseReserve(() => this.repo.remove(projectId, id, now));
      if (!row) throw notFound("File object", id);
      // Its job, text and chunks went with the row (one transaction); stop a parse in flight.
      this.ingest?.cancel(row.id);
      // The row goes first: a crash before the unlink leaves an orphan blob that the sweep
      // after the next start removes, never a listed file without bytes.
      await this.blobs.delete(row.id);
      // An expired file the sweep had not reached yet is gone now, as it already was to GET.
      if (row.expiresAt !== null && row.expiresAt <= now) throw notFound("File object", id);
      return { id: row.id, object: "file" as const, deleted: true as const };
    } finally {
      ended();
    }
  }

  /**
   * Deleting is how space is freed, so it must work on a full disk: SQLite needs room to log
   * the delete, which the released reserve gives it.
   */
  private async whenFullReleaseReserve<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (e) {
      if (!this.disk || !isDiskFull(e)) throw e;
      this.disk.releaseReserve(String((e as Error)?.message ?? e));
      return write();
    }
  }

  /** Deletes files whose expiry has passed. Reads already hide them; this frees the space. */
  async sweepExpired(): Promise<number> {
    let n = 0;
    for (;;) {
      const batch = await this.repo.expired(this.now(), 500);
      for (const f of batch) {
        const ended = this.begin(f.id);
        try {
          if (await this.whenFullReleaseReserve(() => this.repo.remove(f.projectId, f.id, this.now()))) {
            this.ingest?.cancel(f.id);
            await this.blobs.delete(f.id);
          }
        } finally {
          ended();
        }
        n++;
      }
      if (batch.length < 500) return n;
    }
  }

  /** After a crash: this process's half-written uploads (and, with a bucket, its local copies). */
  removeIncomplete() {
    return this.blobs.removeIncomplete();
  }

  /**
   * Blobs no row names: a crash between a blob's commit and its row's. Runs beside requests
   * (its cost grows with the files stored, so a start does not wait for it): a blob whose row
   * this process is changing is in flight, not an orphan, whatever the clock says, and other
   * processes' recent blobs are left by the store's own keys().
   */
  async removeOrphans(signal?: AbortSignal) {
    let orphans = 0;
    let seen = 0;
    for await (const key of this.blobs.keys()) {
      if (signal?.aborted) break;
      // a macrotask now and then, so requests are answered while a large store is swept
      if (++seen % ORPHAN_SWEEP_STEP === 0) await new Promise((r) => setImmediate(r));
      if (this.inFlight.has(key)) continue;
      const ended = new Set<string>();
      this.lookups.add(ended);
      let named = false;
      try {
        named = await this.repo.exists(key);
        for (const owns of this.otherOwners) named ||= await owns(key);
      } finally {
        this.lookups.delete(ended);
      }
      // An upload that ended during the lookup committed its row or removed its own blob.
      if (named || this.inFlight.has(key) || ended.has(key)) continue;
      await this.blobs.delete(key);
      orphans++;
    }
    return orphans;
  }

  private checkPurpose(purpose: string | undefined, param = "purpose"): Purpose {
    if (purpose === undefined) return "knowledge_base";
    if (purpose === "") throw fail("invalid_purpose", `purpose is empty. Use one of: ${PURPOSES.join(", ")} (or leave it out for knowledge_base).`, param);
    if (!(PURPOSES as readonly string[]).includes(purpose))
      throw fail("invalid_purpose", `'${purpose}' is not a valid purpose. Use one of: ${PURPOSES.join(", ")}.`, param);
    return purpose as Purpose;
  }

  private expiry(purpose: string, createdAt: number, ea: CreateInput["expiresAfter"]): number | null {
    if (!ea) return purpose === "batch" ? createdAt + BATCH_DEFAULT_EXPIRY : null;
    if (ea.anchor !== "created_at")
      throw fail("invalid_value", `expires_after.anchor must be 'created_at', got ${JSON.stringify(ea.anchor ?? null)}.`, "expires_after.anchor");
    const s = ea.seconds;
    if (typeof s !== "number" || !Number.isInteger(s) || s < EXPIRES_MIN || s > EXPIRES_MAX)
      throw fail("invalid_value", `expires_after.seconds must be a whole number of seconds between ${EXPIRES_MIN} (1 hour) and ${EXPIRES_MAX} (30 days), got ${JSON.stringify(s ?? null)}.`, "expires_after.seconds");
    return createdAt + s;
  }
}

function checkFilename(raw: string, param = "file"): string {
  // Clients may send a path; only its last part names the file. It never reaches the disk.
  // The name is kept in NFC (macOS sends NFD: the same name, the same bytes whoever sent it)
  // and well-formed (a lone surrogate is stored as U+FFFD, so it is answered as stored); the
  // checks apply to the name as kept.
  const name = (raw.split(/[/\\]/).pop() ?? "").normalize("NFC").toWellFormed();
  if (name === "" || name === "." || name === "..")
    throw fail("invalid_filename", "The uploaded file has no filename. Send the file part with a filename.", param);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name))
    throw fail("invalid_filename", "The filename contains control characters. Rename the file and upload again.", param);
  if (Buffer.byteLength(name) > MAX_FILENAME_BYTES)
    throw fail("invalid_filename", `The filename is longer than ${MAX_FILENAME_BYTES} bytes. Use a shorter name.`, param);
  return name;
}

/** A batch, fine-tune or evals file is JSONL, named so: an upload's create checks the name before any byte, a file's upload with its bytes. */
function checkJsonlName(filename: string, purpose: string, param: string) {
  if (JSONL_PURPOSES.has(purpose) && extensionOf(filename) !== "jsonl")
    throw fail("invalid_file_format", `Files with purpose '${purpose}' must be JSONL: name the file with a .jsonl extension.`, param);
}

async function checkJsonl(filename: string, purpose: string, w: BlobWriter) {
  checkJsonlName(filename, purpose, "file");
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let pending = "";
  let line = 0;
  let objects = 0;
  const check = (text: string) => {
    line++;
    if (text.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw fail("invalid_file_format", `Line ${line} of the JSONL file is not valid JSON.`, "file");
    }
    if (v === null || typeof v !== "object" || Array.isArray(v))
      throw fail("invalid_file_format", `Line ${line} of the JSONL file is not a JSON object.`, "file");
    objects++;
  };
  try {
    for await (const chunk of w.stream()) {
      const text = decoder.decode(chunk, { stream: true });
      // (a line's end is looked for in the new text only: a line of 100 MB was searched again
      // from its start with each piece that arrived)
      let nl = text.indexOf("\n");
      if (nl < 0) {
        pending += text;
        continue;
      }
      check(pending + text.slice(0, nl));
      let start = nl + 1;
      while ((nl = text.indexOf("\n", start)) >= 0) {
        check(text.slice(start, nl));
        start = nl + 1;
      }
      pending = text.slice(start);
    }
    pending += decoder.decode();
  } catch (e) {
    if (e instanceof RagdError) throw e;
    throw fail("invalid_file_format", `The JSONL file is not valid UTF-8 (near line ${line + 1}).`, "file");
  }
  if (pending !== "") check(pending);
  if (objects === 0) throw fail("invalid_file_format", "The JSONL file holds no JSON objects.", "file");
}

/** The first bytes written (one read), for what a file's opening says of it. */
async function firstBytes(w: BlobWriter): Promise<Uint8Array> {
  const reader = w.stream().getReader();
  const { value } = await reader.read();
  await reader.cancel();
  return value ?? new Uint8Array();
}
