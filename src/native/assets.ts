/// <reference path="../embed/assets.d.ts" />
// Native libraries that cannot be loaded from the single binary's virtual filesystem: from
// source they load where npm put them; in the binary they are written out once (see
// extract.ts). models/stage-native.ts stages them under `.bin` names at build time.
import { dirname, join } from "node:path";
import { dlopen, FFIType } from "bun:ffi";
import { extractNative, IN_BINARY } from "./extract";
import manifest from "../../models/dist/native/manifest.json";
import ortBinding from "../../models/dist/native/onnxruntime_binding.node.bin" with { type: "file" };
import ortLibrary from "../../models/dist/native/libonnxruntime.so.1.bin" with { type: "file" };
import vipsLibrary from "../../models/dist/native/libvips-cpp.so.bin" with { type: "file" };
import sharpBinding from "../../models/dist/native/sharp.node.bin" with { type: "file" };
import usearchBinding from "../../models/dist/native/usearch.node.bin" with { type: "file" };
import canvasBinding from "../../models/dist/native/canvas.node.bin" with { type: "file" };

const real = manifest as Record<string, string>;

/**
 * The onnxruntime addon under its real name, beside libonnxruntime.so.1 (its RUNPATH is
 * $ORIGIN).
 */
export function onnxBindingPath(cacheDir: string): string {
  if (!IN_BINARY)
    return join(dirname(Bun.resolveSync("onnxruntime-node/package.json", import.meta.dir)), "bin", "napi-v6", process.platform, process.arch, "onnxruntime_binding.node");
  const dir = extractNative(cacheDir, "onnxruntime", {
    [real["onnxruntime_binding.node.bin"]!]: ortBinding,
    [real["libonnxruntime.so.1.bin"]!]: ortLibrary,
  });
  return join(dir, real["onnxruntime_binding.node.bin"]!);
}

/**
 * sharp's addon and libvips, written out in the binary; null from source (sharp finds its
 * own). Returns the directory holding both.
 */
export function sharpNativeDir(cacheDir: string): string | null {
  if (!IN_BINARY) return null;
  return extractNative(cacheDir, "sharp", { [real["libvips-cpp.so.bin"]!]: vipsLibrary, [real["sharp.node.bin"]!]: sharpBinding });
}

/**
 * usearch's addon, in the binary: the build replaced usearch's search for its build directory
 * with a read of `globalThis.__ragdUsearchBinding` (see src/build/compile.ts), set here.
 */
export function loadUsearchBinding(cacheDir: string) {
  if (!IN_BINARY) return;
  const g = globalThis as Record<string, unknown>;
  g.__ragdUsearchBinding ??= require(join(extractNative(cacheDir, "usearch", { "usearch.node": usearchBinding }), "usearch.node"));
}

/**
 * @napi-rs/canvas's addon (pdf.js draws with it), written out in the binary; null from
 * source. Bun would otherwise write it to /tmp itself, which a minimal container may lack.
 * The parse worker loads it into `globalThis.__ragdCanvasBinding` before pdf.js loads.
 */
export function canvasAddonPath(cacheDir: string): string | null {
  if (!IN_BINARY) return null;
  return join(extractNative(cacheDir, "canvas", { "skia.node": canvasBinding }), "skia.node");
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
