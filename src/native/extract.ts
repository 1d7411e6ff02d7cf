import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex, writeFileAtomic } from "../util/atomic-file";

/** True inside the single binary, where bundled files live in Bun's virtual filesystem. */
export const IN_BINARY = import.meta.url.includes("$bunfs");

/**
 * Writes native files that the single binary carries to `<cacheDir>/<name>-<hash>/`, where
 * the dynamic loader can open them (it cannot read Bun's virtual filesystem), and returns
 * that directory. `files` maps a path inside it to the embedded source. The directory is
 * named by the hash of every file, each file is written atomically (temp, fsync, rename) and
 * compared byte for byte when it already exists, so concurrent starts are safe, later
 * starts reuse the files, and a damaged copy is replaced.
 */
export function extractNative(cacheDir: string, name: string, files: Record<string, string>): string {
  const entries = Object.entries(files).map(([rel, src]) => ({ rel, bytes: readFileSync(src) }));
  const digest = sha256Hex(entries.map((f) => `${f.rel}:${sha256Hex(f.bytes)}`).join("\n"));
  const dir = join(cacheDir, `${name}-${digest.slice(0, 16)}`);
  for (const f of entries) {
    const target = join(dir, f.rel);
    if (!existsSync(target) || !sameBytes(target, f.bytes)) writeFileAtomic(target, f.bytes, 0o755);
  }
  return dir;
}

function sameBytes(path: string, bytes: Buffer) {
  const have = readFileSync(path);
  return have.length === bytes.length && have.equals(bytes);
}
