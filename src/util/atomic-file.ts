import { createHash, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export const sha256Hex = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

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

/** Makes an already written file (or a directory's entries) durable. */
export function fsyncPath(path: string) {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
