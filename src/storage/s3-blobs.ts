import { S3Client } from "bun";
import { BlobMissing, BlobStoreUnavailable, DiskBlobStore, type BlobStore, type BlobWriter } from "./blobs";

/** Where the bytes go: `s3://bucket/prefix` and how to reach the service. */
export interface S3Settings {
  bucket: string;
  prefix: string;
  endpoint: string | null;
  region: string | null;
  accessKeyId: string | null;
  secretAccessKey: string | null;
}

/** `s3://bucket/some/prefix` -> bucket and prefix ("some/prefix/"). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const u = new URL(url);
  const prefix = decodeURIComponent(u.pathname.replace(/^\/+/, ""));
  return { bucket: u.hostname, prefix: prefix && !prefix.endsWith("/") ? `${prefix}/` : prefix };
}

// Parts of 8 MiB, two in flight: an upload holds at most ~24 MiB whatever its size.
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;
// Objects newer than this may be another process's upload whose row is about to commit.
const SWEEP_GRACE_MS = 60 * 60 * 1000;

/**
 * File bytes in an S3-compatible bucket, shared by every process. An upload streams to a
 * multipart upload while a local spool (in the data directory) keeps what the server reads
 * back before commit (validation, the SHA-256 on the hashing thread); the object is complete
 * before the file's row commits, and the spool is dropped. Parsers, which need a path, get a
 * local copy that lives while someone uses it.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly users = new Map<string, number>();
  private readonly dropping = new Map<string, Promise<void>>();

  constructor(
    private readonly settings: S3Settings,
    /** The data directory's spool and copies for parsers. */
    private readonly local: DiskBlobStore,
  ) {
    this.client = new S3Client({
      bucket: settings.bucket,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.region ? { region: settings.region } : {}),
      ...(settings.accessKeyId ? { accessKeyId: settings.accessKeyId } : {}),
      ...(settings.secretAccessKey ? { secretAccessKey: settings.secretAccessKey } : {}),
    });
  }

  private object(key: string) {
    return this.client.file(this.settings.prefix + key);
  }

  /** Fails with the service's own words when the bucket cannot be reached or written. */
  async check() {
    const probe = this.client.file(`${this.settings.prefix}.ragd-check`);
    await probe.write("ok");
    await probe.delete();
  }

  async create(key: string): Promise<BlobWriter> {
    const spool = await this.local.create(key);
    const sink = this.object(key).writer({ partSize: PART_SIZE, queueSize: PARTS_IN_FLIGHT, retry: 3 });
    // The spool goes once the object is whole: any process may be the one that ingests the
    // file, and fetches its own copy then (localPath).
    return new S3BlobWriter(spool, sink, {
      committed: async () => {
        if (!this.users.has(key)) await this.local.delete(key);
      },
      size: async () => (await this.object(key).stat()).size,
      aborted: async () => {
        await this.local.delete(key);
        await this.object(key).delete().catch(() => {});
      },
    });
  }

  async read(key: string, range?: { start: number; end: number }) {
    if (this.local.has(key)) {
      try {
        return await this.local.read(key, range);
      } catch (e) {
        // (a parser's copy dropped since: the bucket has the bytes)
        if (!(e instanceof BlobMissing)) throw e;
      }
    }
    // A stream, not the S3 file itself: a Response of an S3 file redirects the client to the
    // bucket, which the client may not reach and should not see.
    const o = this.object(key);
    // The first bytes are awaited here, so a bucket out of reach is an error answer, not a
    // 200 whose body breaks off.
    const reader = (range ? o.slice(range.start, range.end + 1) : o).stream().getReader();
    const first = await reader.read().catch((e) => {
      // (only the key: a bucket gone or out of reach is the store's fault, not lost bytes)
      throw (e as { code?: unknown })?.code === "NoSuchKey" ? new BlobMissing(key) : e;
    });
    return new ReadableStream<Uint8Array>({
      start(ctrl) {
        if (first.done) ctrl.close();
        else ctrl.enqueue(first.value);
      },
      async pull(ctrl) {
        const { done, value } = await reader.read();
        if (done) ctrl.close();
        else ctrl.enqueue(value);
      },
      cancel: (why) => reader.cancel(why),
    });
  }

  async localPath(key: string) {
    this.users.set(key, (this.users.get(key) ?? 0) + 1);
    try {
      // A copy being dropped by the last user before this one is gone first, not handed out.
      await this.dropping.get(key);
      if (!this.local.has(key)) {
        const copy = await this.local.create(key);
        try {
          for await (const chunk of this.object(key).stream()) await copy.write(chunk);
          await copy.commit();
        } catch (e) {
          await copy.abort();
          throw (e as { code?: unknown })?.code === "NoSuchKey" ? new BlobMissing(key) : e;
        }
      }
      return await this.local.localPath(key);
    } catch (e) {
      await this.release(key);
      throw e;
    }
  }

  async release(key: string) {
    const n = (this.users.get(key) ?? 1) - 1;
    if (n > 0) return void this.users.set(key, n);
    this.users.delete(key);
    const drop = this.local.delete(key).finally(() => {
      if (this.dropping.get(key) === drop) this.dropping.delete(key);
    });
    this.dropping.set(key, drop);
    await drop;
  }

  async delete(key: string) {
    await this.object(key).delete();
    this.users.delete(key);
    await this.local.delete(key);
  }

  async *keys(): AsyncIterable<string> {
    const cutoff = Date.now() - SWEEP_GRACE_MS;
    let continuationToken: string | undefined;
    do {
      const page = await this.client.list({ prefix: this.settings.prefix, maxKeys: 1000, ...(continuationToken ? { continuationToken } : {}) });
      for (const o of page.contents ?? []) {
        const key = o.key.slice(this.settings.prefix.length);
        // Another process's upload may be between its object and its row.
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(key) || !o.lastModified || Date.parse(String(o.lastModified)) > cutoff) continue;
        yield key;
      }
      continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (continuationToken);
  }

  async owner() {
    const marker = this.client.file(`${this.settings.prefix}.ragd-database-id`);
    return (await marker.exists()) ? (await marker.text()).trim() : null;
  }

  async setOwner(databaseId: string) {
    await this.client.write(`${this.settings.prefix}.ragd-database-id`, `${databaseId}\n`);
  }

  async isEmpty() {
    // Every page, not the first few keys: other objects under the prefix may sort first.
    let continuationToken: string | undefined;
    do {
      const page = await this.client.list({ prefix: this.settings.prefix, maxKeys: 1000, ...(continuationToken ? { continuationToken } : {}) });
      if ((page.contents ?? []).some((o) => /^[A-Za-z0-9_-]{1,64}$/.test(o.key.slice(this.settings.prefix.length)))) return false;
      continuationToken = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (continuationToken);
    return true;
  }

  /**
   * The local spool and parser copies a crash left (nothing uses them at start); on S3 an
   * upload a crash cut never completed (a bucket lifecycle rule clears its parts).
   */
  async removeIncomplete() {
    let n = await this.local.removeIncomplete();
    for await (const key of this.local.keys()) {
      if (this.users.has(key)) continue;
      await this.local.delete(key);
      n++;
    }
    return n;
  }
}

class S3BlobWriter implements BlobWriter {
  private ended = false;
  private committed = false;

  constructor(
    private readonly spool: BlobWriter,
    private readonly sink: ReturnType<ReturnType<S3Client["file"]>["writer"]>,
    private readonly after: { committed: () => Promise<void>; aborted: () => Promise<void>; size: () => Promise<number> },
  ) {}

  private unflushed = 0;
  private flushing: Promise<void> = Promise.resolve();
  private failed: { error: unknown } | null = null;

  get bytes() {
    return this.spool.bytes;
  }

  async write(chunk: Uint8Array) {
    await this.spool.write(chunk);
    const sent = this.sink.write(chunk);
    if (typeof sent !== "number") await sent;
    // Bun's writer may queue every part in memory without ever pushing back (seen with Bun
    // 1.4.5: a 256 MB write held 371 MB while a slow bucket took it): each full part is
    // flushed, and the one before it waited for, so two parts are in flight and an upload
    // holds about two parts.
    this.unflushed += chunk.byteLength;
    if (this.unflushed >= PART_SIZE) {
      this.unflushed = 0;
      await this.flushing;
      if (this.failed) throw this.failed.error;
      const flushed = this.sink.flush();
      if (typeof flushed !== "number")
        this.flushing = Promise.resolve(flushed).then(
          () => {},
          (error: unknown) => void (this.failed = { error }),
        );
    }
  }

  stream() {
    return this.spool.stream();
  }

  async commit() {
    // The object is whole on S3 before the row that names it commits.
    // a part that failed fails the upload; abort() then ends and deletes what was sent
    await this.flushing;
    if (this.failed) throw this.failed.error;
    this.ended = true;
    const [digest] = await Promise.all([this.spool.commit(), this.sink.end()]);
    // Bun's writer can lose a part's failure: a part that failed between two writes leaves
    // end() answering 0 bytes, and no error. The object is checked before anyone is told.
    const stored = await this.after.size().catch(() => -1);
    if (stored !== this.spool.bytes) {
      await this.spool.abort();
      await this.after.aborted();
      throw new BlobStoreUnavailable(`the bucket holds ${stored < 0 ? "no" : `${stored} of ${this.spool.bytes}`} bytes of the upload`);
    }
    this.committed = true;
    await this.after.committed();
    return digest;
  }

  /**
   * Bun's writer has no abort: ending it completes the object, which is then deleted (no row
   * ever named it; a crash in between leaves it to the sweep).
   */
  async abort() {
    // Once committed the object may be named by a row whose commit's answer was lost: it is
    // never deleted here (a caller that knows no row names it deletes it; else the sweep does).
    if (this.committed) return;
    await this.spool.abort();
    if (!this.ended) {
      this.ended = true;
      await Promise.resolve(this.sink.end()).catch(() => {});
    }
    await this.after.aborted();
  }
}
