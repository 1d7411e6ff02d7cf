import { createHash, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, writeFileSync } from "node:fs";
import { mkdir, open, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

export const sha256Hex = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

/** A file's size and SHA-256, read in slices: a vector index of a million chunks is over a gigabyte. */
export function sha256File(path: string): { bytes: number; sha256: string } {
  const hash = createHash("sha256");
  const buf = new Uint8Array(8 << 20);
  const fd = openSync(path, "r");
  let bytes = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; bytes += n) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** fsync on the thread pool. */
export async function fsyncFile(path: string) {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Temp file, fsync, rename, fsync the directory: a crash leaves the old file or the new one, whole. */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644) {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  // Unique per writer: workers of one process may write the same file at once.
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  writeFileSync(tmp, data, { mode });
  fsyncPath(tmp);
  renameSync(tmp, path);
  fsyncPath(dir);
}

/** As writeFileAtomic, with every step on the thread pool: for files written while the server serves. */
export async function writeFileAtomicAsync(path: string, data: Uint8Array | string, mode = 0o644) {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  await writeFile(tmp, data, { mode });
  await fsyncFile(tmp);
  await rename(tmp, path);
  await fsyncFile(dir);
}

/** Makes an already written file (or a directory's entries) durable. */
export function fsyncPath(path: string) {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
