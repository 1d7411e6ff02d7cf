import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex, writeFileAtomic } from "../util/atomic-file";
import { fileChecksumSync } from "../util/file-checksum";

/** True inside the single binary, where bundled files live in Bun's virtual filesystem. */
export const IN_BINARY = import.meta.url.includes("$bunfs");

/** An embedded file, with the size and checksum the build recorded for it (models/stage-native.ts). */
export interface Embedded {
  src: string;
  bytes: number;
  checksum: string;
}

/**
 * Writes native files that the single binary carries to `<cacheDir>/<name>-<hash>/`, where
 * the dynamic loader can open them (it cannot read Bun's virtual filesystem), and returns
 * that directory. `files` maps a path inside it to the embedded source. The directory is
 * named by the hash of every file's recorded checksum, each file is written atomically (temp,
 * fsync, rename) and checked against its recorded size and checksum when it already exists,
 * so concurrent starts are safe, later starts reuse the files, and a damaged copy is
 * replaced. The embedded bytes are read only to write a copy: every start used to read all
 * of them (about 100 MB) and hash them with SHA-256, a third of an idle start's time.
 */
export function extractNative(cacheDir: string, name: string, files: Record<string, Embedded>): string {
  const entries = Object.entries(files);
  const digest = sha256Hex(entries.map(([rel, f]) => `${rel}:${f.checksum}`).join("\n"));
  const dir = join(cacheDir, `${name}-${digest.slice(0, 16)}`);
  for (const [rel, f] of entries) {
    const target = join(dir, rel);
    if (!existsSync(target) || !intact(target, f)) writeFileAtomic(target, readFileSync(f.src), 0o755);
  }
  return dir;
}

function intact(path: string, f: Embedded) {
  const have = fileChecksumSync(path);
  return have.bytes === f.bytes && have.checksum === f.checksum;
}
