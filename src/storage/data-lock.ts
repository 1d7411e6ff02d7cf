import { dlopen, FFIType } from "bun:ffi";
import { closeSync, mkdirSync, openSync, readFileSync, ftruncateSync, writeSync } from "node:fs";
import { join } from "node:path";

const LOCK_EX = 2;
const LOCK_NB = 4;

export class DataDirLocked extends Error {}

/**
 * One server per data directory: two processes writing one SQLite file and one blob tree
 * would each believe they own the queue and the indexes. An flock on `ragd.lock` is held for
 * the process's life; the kernel drops it when the process dies, even by kill -9.
 */
export function lockDataDir(dataDir: string): { release(): void } {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "ragd.lock");
  const fd = openSync(path, "a+", 0o600);
  const libc = dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
  if (libc.symbols.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    let holder = "";
    try {
      holder = readFileSync(path, "utf8").trim();
    } catch {}
    closeSync(fd);
    libc.close();
    throw new DataDirLocked(`the data directory ${dataDir} is in use by another ragd${holder ? ` (pid ${holder})` : ""}; stop it first, or start with another --data-dir`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, String(process.pid));
  return {
    release() {
      closeSync(fd);
      libc.close();
    },
  };
}
