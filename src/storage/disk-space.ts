import { closeSync, existsSync, fsyncSync, openSync, rmSync, statSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fail, RagdError } from "../errors";
import { log } from "../util/log";

/** A write failed because the volume holding `volume` has no space left. */
export const storageFull = (volume: string) =>
  fail(
    "insufficient_storage",
    `The disk holding ragd's data (${volume}) is full, so nothing new can be stored. Free space on that volume or delete files (DELETE /v1/files/{file_id} still works); ragd resumes by itself once space returns.`,
  );

/** ENOSPC/EDQUOT from the filesystem, SQLITE_FULL from SQLite: the same condition. */
export function isDiskFull(e: unknown): boolean {
  if (e instanceof RagdError) return e.code === "insufficient_storage";
  const err = e as { code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === "string" ? err.code : "";
  if (code === "ENOSPC" || code === "EDQUOT" || code === "SQLITE_FULL") return true;
  return typeof err?.message === "string" && /database or disk is full|no space left on device/i.test(err.message);
}

/** The error to raise for a failed write under `volume`: insufficient_storage when space ran out. */
export function storageError(e: unknown, volume: string): unknown {
  return isDiskFull(e) && !(e instanceof RagdError) ? storageFull(volume) : e;
}

const BALLAST = "reserve.ballast";
const RECHECK_MS = 2_000;
// How long one reading of the free space admits uploads for.
const SAMPLE_MS = 250;

/**
 * Keeps a reserve of disk space (a ballast file) for deletes, which SQLite must log before
 * they can free anything: a delete that meets a full volume releases the reserve and runs.
 * While the volume is full, uploads are refused at once and ingestion waits; when space
 * returns (the reserve fits again, twice over) the ballast is written back if it was
 * released, and everything resumes by itself.
 */
export class DiskSpace {
  private readonly ballast: string;
  private fullSince: number | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly listeners: (() => void)[] = [];
  private sample: { free: number; at: number; admitted: number } | null = null;

  constructor(
    readonly dataDir: string,
    private readonly reserveBytes: number,
  ) {
    this.ballast = join(dataDir, BALLAST);
  }

  /** Writes the reserve if there is room; a volume already full starts in the full state. */
  start() {
    if (this.reserveBytes === 0) return;
    if (existsSync(this.ballast) && statSync(this.ballast).size === this.reserveBytes) return;
    if (!this.writeBallast()) this.markFull("no room for the disk reserve at start");
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get full() {
    return this.fullSince !== null;
  }

  /** Bytes free for this process on the data directory's volume. */
  freeBytes(): number {
    const s = statfsSync(this.dataDir);
    return s.bavail * s.bsize;
  }

  /** Called when space comes back. */
  onRecovered(fn: () => void) {
    this.listeners.push(fn);
  }

  /** A write failed for lack of space: refuse new work and watch for space to return. Idempotent. */
  exhausted(reason: string) {
    if (this.full) return;
    this.markFull(reason);
  }

  /** A delete met a full volume: give it the reserve. */
  releaseReserve(reason: string) {
    this.exhausted(reason);
    rmSync(this.ballast, { force: true });
  }

  /** Throws StorageFullError when an upload of `bytes` cannot fit beside the reserve. */
  admit(bytes = 0) {
    if (this.full) throw storageFull(this.dataDir);
    if (bytes <= 0) return;
    // One statfs serves the uploads of a short while, less what each was admitted for: a
    // burst of uploads does not make a system call each, and does not overcommit either.
    const now = Date.now();
    if (!this.sample || now - this.sample.at > SAMPLE_MS) this.sample = { free: this.freeBytes(), at: now, admitted: 0 };
    if (bytes + this.reserveBytes > this.sample.free - this.sample.admitted) throw storageFull(this.dataDir);
    this.sample.admitted += bytes;
  }

  private markFull(reason: string) {
    this.fullSince = Date.now();
    this.sample = null;
    log.error("the data directory's disk is full: uploads are refused and ingestion waits until space is freed (DELETE /v1/files/{id} works)", {
      data_dir: this.dataDir,
      reason,
    });
    this.timer ??= setInterval(() => this.recheck(), RECHECK_MS);
    this.timer.unref?.();
  }

  private recheck() {
    let free: number;
    try {
      free = this.freeBytes();
    } catch {
      return;
    }
    if (free < this.reserveBytes * 2 + (1 << 20)) return;
    if (this.reserveBytes > 0 && !existsSync(this.ballast) && !this.writeBallast()) return;
    log.info("disk space is back: uploads and ingestion resume", { data_dir: this.dataDir, free_bytes: free, full_for_s: Math.round((Date.now() - this.fullSince!) / 1000) });
    this.fullSince = null;
    this.sample = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const fn of this.listeners) fn();
  }

  private writeBallast(): boolean {
    let fd: number | null = null;
    try {
      fd = openSync(this.ballast, "w", 0o600);
      const block = new Uint8Array(1 << 20);
      for (let left = this.reserveBytes; left > 0; ) {
        const n = writeSync(fd, block, 0, Math.min(block.length, left));
        left -= n;
      }
      fsyncSync(fd);
      return true;
    } catch (e) {
      if (fd !== null) closeSync(fd);
      fd = null;
      rmSync(this.ballast, { force: true });
      if (!isDiskFull(e)) log.warn("could not write the disk reserve", { path: this.ballast, error: String(e) });
      return false;
    } finally {
      if (fd !== null) closeSync(fd);
    }
  }
}
