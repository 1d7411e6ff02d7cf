/// <reference path="../embed/assets.d.ts" />
// Native libraries that cannot be loaded from the single binary's virtual filesystem: from
// source they load where npm put them; in the binary they are written out once (see
// extract.ts). models/stage-native.ts stages them under `.bin` names at build time.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { dlopen, FFIType } from "bun:ffi";
import { extractNative, IN_BINARY } from "./extract";
import manifest from "../../models/dist/native/manifest.json";
import ortBinding from "../../models/dist/native/onnxruntime_binding.node.bin" with { type: "file" };
import ortLibrary from "../../models/dist/native/libonnxruntime.so.1.bin" with { type: "file" };
import vipsLibrary from "../../models/dist/native/libvips-cpp.so.bin" with { type: "file" };
import sharpBinding from "../../models/dist/native/sharp.node.bin" with { type: "file" };
import usearchBinding from "../../models/dist/native/usearch.node.bin" with { type: "file" };
import kernelsLibrary from "../../models/dist/native/libragd_kernels.so.bin" with { type: "file" };

const staged = manifest as Record<string, { name: string; bytes: number; checksum: string }>;
const real = Object.fromEntries(Object.entries(staged).map(([file, m]) => [file, m.name]));
/** An embedded file under its real name, with what the build recorded of it. */
const embedded = (file: string, src: string, as = real[file]!) => ({ [as]: { src, bytes: staged[file]!.bytes, checksum: staged[file]!.checksum } });

/** Where each native library loads from in this process. */
export interface NativePaths {
  /** onnxruntime's addon, beside libonnxruntime.so.1 (its RUNPATH is $ORIGIN). */
  onnxruntime: string;
  /** The directory holding sharp's addon and libvips; null from source (sharp finds its own). */
  sharp: string | null;
  /** usearch's addon (the index talks to it directly: src/storage/usearch-addon.ts). */
  usearch: string;
  /** ragd's kernels (src/search/bm25-kernel.c, int8-dot.c); null when the build had no C compiler. */
  kernels: string | null;
}

/**
 * From source: where npm put the libraries, nothing written. In the binary: every native
 * library written out once under `cacheDir` (see extract.ts), then reused. Called once at start;
 * the paths travel to the workers.
 */
export function nativePaths(cacheDir: string): NativePaths {
  if (!IN_BINARY)
    return {
      onnxruntime: join(dirname(Bun.resolveSync("onnxruntime-node/package.json", import.meta.dir)), "bin", "napi-v6", process.platform, process.arch, "onnxruntime_binding.node"),
      sharp: null,
      usearch: sourceUsearchPath(),
      kernels: sourceKernelsPath(),
    };
  const ort = extractNative(cacheDir, "onnxruntime", { ...embedded("onnxruntime_binding.node.bin", ortBinding), ...embedded("libonnxruntime.so.1.bin", ortLibrary) });
  return {
    onnxruntime: join(ort, real["onnxruntime_binding.node.bin"]!),
    sharp: extractNative(cacheDir, "sharp", { ...embedded("libvips-cpp.so.bin", vipsLibrary), ...embedded("sharp.node.bin", sharpBinding) }),
    usearch: join(extractNative(cacheDir, "usearch", embedded("usearch.node.bin", usearchBinding, "usearch.node")), "usearch.node"),
    kernels: builtKernels() ? join(extractNative(cacheDir, "kernels", embedded("libragd_kernels.so.bin", kernelsLibrary)), real["libragd_kernels.so.bin"]!) : null,
  };
}

// An empty staged library means the build found no C compiler (models/stage-native.ts).
const builtKernels = () => (staged["libragd_kernels.so.bin"]?.bytes ?? 0) > 0;

/**
 * usearch's addon where npm put it, found as usearch's own loader would: a local build first,
 * then the prebuilt one (models/stage-native.ts stages the latter for the binary).
 */
export function sourceUsearchPath() {
  if (IN_BINARY) throw new Error("in the binary, usearch's addon is the copy nativePaths() writes out");
  const dir = dirname(Bun.resolveSync("usearch/package.json", import.meta.dir));
  const candidates = [join(dir, "build", "Release", "usearch.node"), join(dir, "prebuilds", `${process.platform}-${process.arch}`, "usearch.node")];
  if (process.platform === "darwin") candidates.push(join(dir, "prebuilds", "darwin-arm64+x64", "usearch.node"));
  return candidates.find((p) => existsSync(p)) ?? candidates[1]!;
}

/** From source, the kernels load from their staged copy (the loader ignores the `.bin`). */
export const sourceKernelsPath = () => (builtKernels() ? kernelsLibrary : null);

/**
 * The vector index finds usearch's addon in a global (src/storage/usearch-addon.ts); each
 * thread sets it before it is used. sharp's addon loads later, on the first image (sharp.ts).
 */
export function installBindings(p: NativePaths) {
  const g = globalThis as Record<string, unknown>;
  if (p.usearch) g.__ragdUsearchBinding ??= require(p.usearch);
}

export const sharpFiles = () => ({ libvips: real["libvips-cpp.so.bin"]!, addon: real["sharp.node.bin"]! });

/**
 * sharp's addon finds libvips through a RUNPATH relative to node_modules, which the binary
 * does not have. A library already loaded under the soname the addon needs satisfies it, so
 * it is opened first, and stays open for the life of the thread's process.
 */
export function preloadLibvips(path: string) {
  // bun:ffi wants at least one symbol; the handle is never closed.
  dlopen(path, { vips_version: { args: [FFIType.i32], returns: FFIType.i32 } });
}
