import type SharpModule from "sharp";
import { join } from "node:path";
import { preloadLibvips, sharpFiles } from "./assets";

/** A native library failed to load: a fault of this installation, not of the file. */
export class NativeLoadError extends Error {}

let loading: Promise<typeof SharpModule> | null = null;

/**
 * sharp, loaded once per thread. `nativeDir` holds its addon and libvips inside the single
 * binary (null from source). There, the build replaced sharp's own addon loader with a read
 * of `globalThis.__ragdSharpBinding` (see src/build/compile.ts). One libvips thread: parse
 * workers already run side by side.
 */
export function loadSharp(nativeDir: string | null): Promise<typeof SharpModule> {
  loading ??= (async () => {
    try {
      if (nativeDir) {
        const files = sharpFiles();
        preloadLibvips(join(nativeDir, files.libvips));
        (globalThis as Record<string, unknown>).__ragdSharpBinding = require(join(nativeDir, files.addon));
      }
      const sharp = (await import("sharp")).default;
      sharp.concurrency(1);
      sharp.cache(false);
      return sharp;
    } catch (e) {
      throw new NativeLoadError(`the image decoder (sharp/libvips) could not be loaded: ${String((e as Error)?.message ?? e).split("\n")[0]}`);
    }
  })();
  return loading;
}
