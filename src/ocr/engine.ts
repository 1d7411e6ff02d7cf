import { readFileSync } from "node:fs";
import { openImage, ImageError, type DecodedImage } from "./image";
import { OCR_MODEL_FILES } from "./assets";
import { PaddleOcr } from "./paddle";
import type { Raster } from "./raster";

/** How a parse worker runs OCR; decided by the server, sent with each file. */
export interface OcrSettings {
  enabled: boolean;
  /** onnxruntime's addon, where the embedder loads it from. */
  bindingPath: string;
  /** sharp's addon and libvips inside the single binary; null from source. */
  sharpDir: string | null;
  threads: number;
  maxPixels: number;
}

let engine: PaddleOcr | null = null;

/** The models load on the first page that needs them, once per worker. */
function paddle(s: OcrSettings): PaddleOcr {
  engine ??= PaddleOcr.open(
    s.bindingPath,
    { det: readFileSync(OCR_MODEL_FILES.det), rec: readFileSync(OCR_MODEL_FILES.rec), keys: readFileSync(OCR_MODEL_FILES.keys, "utf8") },
    s.threads,
  );
  return engine;
}

export { ImageError };

export function decodeImage(bytes: Uint8Array, s: OcrSettings): Promise<DecodedImage> {
  return openImage(bytes, s.maxPixels, s.sharpDir);
}

/** Paragraphs read from one page, in reading order. */
export function ocrRaster(raster: Raster, s: OcrSettings): string[] {
  return paddle(s)
    .read(raster)
    .text.split(/\n{2,}/)
    .map((p) => p.trim())
    .filter(Boolean);
}
