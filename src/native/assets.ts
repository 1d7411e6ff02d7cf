/// <reference path="../embed/assets.d.ts" />
// Native libraries that cannot be loaded from the single binary's virtual filesystem: from
// source they load where npm put them; in the binary they are written out once (see
// extract.ts). models/stage-native.ts stages them under `.bin` names at build time.
import { dirname, join } from "node:path";
import { dlopen } from "bun:ffi";
import { extractNative, IN_BINARY } from "./extract";
import manifest from "../../models/dist/native/manifest.json";
import ortBinding from "../../models/dist/native/onnxruntime_binding.node.bin" with { type: "file" };
import ortLibrary from "../../models/dist/native/libonnxruntime.so.1.bin" with { type: "file" };
import vipsLibrary from "../../models/dist/native/libvips-cpp.so.bin" with { type: "file" };

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

/** libvips for sharp, written out in the binary; null from source (sharp finds its own). */
export function libvipsPath(cacheDir: string): string | null {
  if (!IN_BINARY) return null;
  const name = real["libvips-cpp.so.bin"]!;
  return join(extractNative(cacheDir, "libvips", { [name]: vipsLibrary }), name);
}

/**
 * sharp's addon finds libvips through a RUNPATH relative to node_modules, which the binary
 * does not have. A library already loaded under the soname the addon needs satisfies it, so
 * it is opened first, and stays open for the life of the process.
 */
export function preloadLibrary(path: string) {
  dlopen(path, {});
}
