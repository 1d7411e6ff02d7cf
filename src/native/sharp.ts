import type SharpModule from "sharp";
import { preloadLibrary } from "./assets";

let loading: Promise<typeof SharpModule> | null = null;

/**
 * sharp, loaded once per thread. `libvips` is the extracted library inside the single binary
 * (null from source). One libvips thread: parse workers already run side by side.
 */
export function loadSharp(libvips: string | null): Promise<typeof SharpModule> {
  loading ??= (async () => {
    if (libvips) preloadLibrary(libvips);
    const sharp = (await import("sharp")).default;
    sharp.concurrency(1);
    sharp.cache(false);
    return sharp;
  })();
  return loading;
}
