/// <reference path="./assets.d.ts" />
// What the bundled embedder needs on disk, as `type: "file"` imports: from source these are
// the real paths; in the single binary (`bun build --compile`) they are embedded and read
// through Bun's virtual filesystem. Only the int8 model is carried; fp32 comes from
// models/dist (RAGD_MODELS_DIR) when run from source.
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import int8Model from "../../models/dist/use-lite-int8.onnx" with { type: "file" };
import { sha256Hex, writeFileAtomic } from "../util/atomic-file";
import vocabFile from "../../models/dist/use-lite-vocab.json" with { type: "file" };
import ortBinding from "../../models/dist/native/onnxruntime_binding.node.bin" with { type: "file" };
import ortLibrary from "../../models/dist/native/libonnxruntime.so.1.bin" with { type: "file" };

// `type: "file"` yields a path; TypeScript only knows JSON imports as their content.
const vocab = vocabFile as unknown as string;

export const BUNDLED = { int8Model, vocab };

/**
 * The onnxruntime addon under its real name, beside libonnxruntime.so.1 (its RUNPATH is
 * $ORIGIN): native code cannot be loaded from the binary's virtual filesystem. The
 * pair is written once to a directory named by its hash, atomically, so concurrent starts
 * are safe and later starts reuse it after checking it.
 */
export function onnxBindingPath(cacheDir: string): string {
  // From source the addon loads where npm put it.
  if (!import.meta.url.includes("$bunfs"))
    return join(dirname(Bun.resolveSync("onnxruntime-node/package.json", import.meta.dir)), "bin", "napi-v6", process.platform, process.arch, "onnxruntime_binding.node");
  const files = [ortBinding, ortLibrary].map((p) => ({ name: realName(p), bytes: readFileSync(p) }));
  const digest = sha256Hex(files.map((f) => `${f.name}:${sha256Hex(f.bytes)}`).join("\n"));
  const dir = join(cacheDir, `onnxruntime-${digest.slice(0, 16)}`);
  for (const f of files) {
    const target = join(dir, f.name);
    if (!existsSync(target) || !sameBytes(target, f.bytes)) writeFileAtomic(target, f.bytes, 0o755);
  }
  return join(dir, realName(ortBinding));
}

// Embedded files may carry a content hash in their name (onnxruntime_binding-abc123.node.bin).
function realName(p: string) {
  return basename(p).startsWith("libonnxruntime") ? "libonnxruntime.so.1" : "onnxruntime_binding.node";
}

function sameBytes(path: string, bytes: Buffer) {
  const have = readFileSync(path);
  return have.length === bytes.length && have.equals(bytes);
}
