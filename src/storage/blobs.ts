import fs, { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { mkdir, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { storageError } from "./disk-space";
import { fileHasher, type FileHash } from "./file-hasher";
import { writeFileAtomic } from "../util/atomic-file";
import { randomBase62 } from "../util/ids";

/**
 * File bytes, addressed by a key the server made (a file id), never by user input.
 * Kept narrow so an S3 implementation can sit beside the disk one.
 */
export interface BlobStore {
  /** Starts a write that becomes visible only on commit; abort leaves nothing behind. */
  create(key: string): Promise<BlobWriter>;
  /** The bytes in [start, end] (inclusive), or all of them: a file, or a stream from elsewhere; BlobMissing when the key holds none. */
  read(key: string, range?: { start: number; end: number }): Promise<Blob | ReadableStream<Uint8Array>>;
  /**
   * A path on this machine holding the committed bytes, for parsers running in another
   * process; `release` says the caller is done with it (a store that copied it may drop it).
   * BlobMissing when the key holds none.
   */
  localPath(key: string): Promise<string>;
  release(key: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every committed key, for reconciling with the database after a crash. */
  keys(): AsyncIterable<string>;
  /** Drops writes that never committed (a crash mid-upload). */
  removeIncomplete(): Promise<number>;
  /** The id of the database whose files these are (blob-owner.ts), null when unmarked. */
  owner(): Promise<string | null>;
  setOwner(databaseId: string): Promise<void>;
  /** Whether any committed blob is here. */
  isEmpty(): Promise<boolean>;
}

/** The store holding file bytes cannot take or give them now (a bucket out of reach): retryable. */
export class BlobStoreUnavailable extends Error {
  override name = "BlobStoreUnavailable";
}

/** No committed blob under the key: its bytes were removed outside ragd, or the disk lost them. */
export class BlobMissing extends Error {
  override name = "BlobMissing";
  constructor(readonly key: string) {
    super(`no stored bytes under ${key}`);
  }
}

export interface BlobWriter {
  readonly bytes: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Reads back what was written so far, before commit (validation of uploads). */
  stream(): ReadableStream<Uint8Array>;
  /** Makes the bytes durable and visible under the key; answers their SHA-256 (hex). */
  commit(): Promise<{ sha256: string }>;
  abort(): Promise<void>;
}

const KEY_RE = /^[A-Za-z0-9_-]{1,64}$/;

function checkKey(key: string) {
  // Defence in depth: keys are ids we generated, but nothing shaped like a path gets through.
  if (!KEY_RE.test(key)) throw new Error(`invalid blob key ${JSON.stringify(key)}`);
}

// In a directory shared by several ragd processes, another process may be mid-upload: its
// part file is being written, or its blob is committed a moment before its row. Only what
// has been left alone this long is taken for a crash's leftovers.
const SHARED_GRACE_MS = 60 * 60 * 1000;

export class DiskBlobStore implements BlobStore {
  private readonly objects: string;
  private readonly tmp: string;

  /** `shared`: other processes write to the same directory (a shared mount, `--blob-url file://`). */
  constructor(
    private readonly root: string,
    private readonly options: { shared?: boolean } = {},
  ) {
    this.objects = join(root, "objects");
    this.tmp = join(root, "tmp");
    mkdirSync(this.objects, { recursive: true });
    mkdirSync(this.tmp, { recursive: true });
  }

  private path(key: string) {
    checkKey(key);
    // Two levels of fan-out keep directories small at millions of files.
    const h = Bun.hash.wyhash(key).toString(16).padStart(16, "0");
    return { dir: join(this.objects, h.slice(0, 2), h.slice(2, 4)), file: key };
  }

  async create(key: string): Promise<BlobWriter> {
    const { dir, file } = this.path(key);
    const tmpPath = join(this.tmp, `${key}.${randomBase62(8)}.part`);
    let fd: number;
    try {
      fd = await fsOpen(tmpPath, "wx", 0o600);
    } catch (e) {
      throw storageError(e, this.tmp);
    }
    return new DiskBlobWriter(fd, tmpPath, dir, join(dir, file), fileHasher.start(tmpPath));
  }

  async localPath(key: string): Promise<string> {
    const { dir, file } = this.path(key);
    const path = join(dir, file);
    if (!existsSync(path)) throw new BlobMissing(key);
    return path;
  }

  async release(_key: string) {}

  async owner() {
    const marker = join(this.root, "database-id");
    return existsSync(marker) ? readFileSync(marker, "utf8").trim() : null;
  }

  async setOwner(databaseId: string) {
    writeFileAtomic(join(this.root, "database-id"), `${databaseId}\n`);
  }

  async isEmpty() {
    return readdirSync(this.objects).length === 0;
  }

  /** Whether the committed blob is here. */
  has(key: string) {
    const { dir, file } = this.path(key);
    return existsSync(join(dir, file));
  }

  async read(key: string, range?: { start: number; end: number }): Promise<Blob> {
    const { dir, file } = this.path(key);
    // Bun.file opens lazily: without this a lost blob fails later, mid-answer. ENOENT alone
    // is "missing" (a stale NFS handle or EIO may pass, and is rethrown); off the event loop,
    // as a shared mount's stat can be slow.
    await stat(join(dir, file)).catch((e: NodeJS.ErrnoException) => {
      throw e.code === "ENOENT" ? new BlobMissing(key) : e;
    });
    const f = Bun.file(join(dir, file));
    return range ? f.slice(range.start, range.end + 1) : f;
  }

  async delete(key: string): Promise<void> {
    const { dir, file } = this.path(key);
    try {
      await unlink(join(dir, file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }

  async *keys(): AsyncIterable<string> {
    for (const a of readdirSync(this.objects)) {
      for (const b of readdirSync(join(this.objects, a))) {
        for (const k of readdirSync(join(this.objects, a, b))) if (this.settled(join(this.objects, a, b, k))) yield k;
      }
    }
  }

  async removeIncomplete(): Promise<number> {
    const names = readdirSync(this.tmp).filter((n) => this.settled(join(this.tmp, n)));
    for (const n of names) rmSync(join(this.tmp, n), { force: true });
    return names.length;
  }

  private settled(path: string) {
    if (!this.options.shared) return true;
    try {
      return Date.now() - statSync(path).mtimeMs > SHARED_GRACE_MS;
    } catch {
      return false;
    }
  }
}

// Network chunks are small (often 64 KiB); gathering them into one 1 MiB writev saves
// syscalls, and handing the chunks themselves to the kernel saves copying them.
const WRITE_BUFFER = 1 << 20;

// Numeric descriptors through the callback API (run on the thread pool, off the event loop).
// A FileHandle that is garbage-collected while open ends the whole process under Bun, so
// none is ever created here; every path below closes its descriptor exactly once.
const fsOpen = promisify(fs.open);
const fsWritev = (fd: number, bufs: Uint8Array[]) => new Promise<number>((resolve, reject) => fs.writev(fd, bufs, (e, n) => (e ? reject(e) : resolve(n))));
const fsFsync = promisify(fs.fsync);
const fsClose = promisify(fs.close);

/** fsync a directory so a rename inside it survives a crash, off the event loop. */
async function fsyncDir(dir: string) {
  const fd = await fsOpen(dir, "r");
  try {
    await fsFsync(fd);
  } finally {
    await fsClose(fd);
  }
}

class DiskBlobWriter implements BlobWriter {
  bytes = 0;
  private state: "open" | "committing" | "committed" | "aborted" = "open";
  private fdOpen = true;
  private renamed = false;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private written = 0;
  private committing: Promise<unknown> | null = null;

  constructor(
    private readonly fd: number,
    private readonly tmpPath: string,
    private readonly dir: string,
    private readonly finalPath: string,
    private readonly hash: FileHash,
  ) {}

  async write(chunk: Uint8Array) {
    if (this.state !== "open") throw new Error(`blob write after ${this.state}`);
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= WRITE_BUFFER) await this.flush();
  }

  private async flush() {
    let bufs = this.pending;
    if (bufs.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      while (bufs.length) {
        let n = await fsWritev(this.fd, bufs);
        this.written += n;
        // A short write: go on from the first byte not taken.
        let i = 0;
        while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
        bufs = bufs.slice(i);
        if (n > 0) bufs[0] = bufs[0]!.subarray(n);
      }
    } catch (e) {
      throw storageError(e, this.dir);
    }
    this.hash.advance(this.written);
  }

  /** Callers read back only after the last write, so flushing here makes the file whole. */
  stream() {
    const path = this.tmpPath;
    const flushed = this.flush();
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    return new ReadableStream<Uint8Array>({
      start: () => flushed,
      async pull(ctrl) {
        reader ??= Bun.file(path).stream().getReader();
        const { done, value } = await reader.read();
        if (done) ctrl.close();
        else ctrl.enqueue(value);
      },
      cancel: () => reader?.cancel(),
    });
  }

  /**
   * fsync the data, rename into place, fsync the directory: a crash leaves all or nothing.
   * A failure at any step aborts, so the descriptor is closed and no temp file stays.
   */
  async commit() {
    if (this.state !== "open") throw new Error(`blob commit after ${this.state}`);
    this.state = "committing";
    const committed = this.commitNow();
    this.committing = committed;
    return committed;
  }

  private async commitNow() {
    try {
      await this.flush();
      const [sha256] = await Promise.all([
        this.hash.finish(this.written),
        fsFsync(this.fd).catch((e) => {
          throw storageError(e, this.dir);
        }),
      ]);
      // The hashing thread's descriptor outlives the rename, so the pages go whatever the name.
      this.hash.evict();
      await this.closeFd();
      await mkdir(this.dir, { recursive: true });
      await rename(this.tmpPath, this.finalPath);
      this.renamed = true;
      await fsyncDir(this.dir);
      this.state = "committed";
      return { sha256 };
    } catch (e) {
      this.state = "open";
      await this.discard();
      throw storageError(e, this.dir);
    }
  }

  /**
   * Drops the write: closes the descriptor and removes what was written. Safe to call at any
   * time, any number of times; during a commit it waits for it (its descriptor is in use, and
   * a number closed under a write could be reused by another file), and a committed blob stays.
   */
  async abort() {
    await this.committing?.catch(() => {});
    await this.discard();
  }

  private async discard() {
    if (this.state === "committed" || this.state === "aborted") return;
    this.state = "aborted";
    this.pending = [];
    this.hash.drop();
    await this.closeFd().catch(() => {});
    await unlink(this.tmpPath).catch(() => {});
    if (this.renamed) await unlink(this.finalPath).catch(() => {});
  }

  private async closeFd() {
    if (!this.fdOpen) return;
    this.fdOpen = false;
    await fsClose(this.fd);
  }
}
