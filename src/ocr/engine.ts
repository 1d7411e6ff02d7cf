import { readFileSync } from "node:fs";
import { openImage, ImageError, type DecodedImage } from "./image";
import { OCR_MODEL_FILES } from "./assets";
import { PaddleOcr } from "./paddle";
import type { Raster } from "./raster";
import type { NativePaths } from "../native/assets";
import { NativeLoadError } from "../native/sharp";

/** How a parse worker runs OCR; decided by the server, sent with each file. */
export interface OcrSettings {
  enabled: boolean;
  /** Also read pictures inside documents (DOCX, PPTX, XLSX, ODF, EPUB, HTML, e-mail). */
  embedded: boolean;
  threads: number;
  maxPixels: number;
}

const engines = new Map<string, PaddleOcr>();

/** The models load on the first page that needs them, once per worker. */
function paddle(s: OcrSettings, natives: NativePaths): PaddleOcr {
  const key = `${natives.onnxruntime}:${s.threads}`;
  let engine = engines.get(key);
  if (engine) return engine;
  try {
    engine = PaddleOcr.open(
      natives.onnxruntime,
      { det: readFileSync(OCR_MODEL_FILES.det), rec: readFileSync(OCR_MODEL_FILES.rec), keys: readFileSync(OCR_MODEL_FILES.keys, "utf8") },
      s.threads,
    );
  } catch (e) {
    throw new NativeLoadError(`the OCR models could not be loaded: ${String((e as Error)?.message ?? e).split("\n")[0]}`);
  }
  engines.set(key, engine);
  return engine;
}

export { ImageError };

export function decodeImage(bytes: Uint8Array, s: OcrSettings, natives: NativePaths): Promise<DecodedImage> {
  return openImage(bytes, s.maxPixels, natives.sharp);
}

let pagesRead = 0;
/** Pages and pictures this process has read, for /metrics (the parse process reports its share). */
export const ocrPagesRead = () => pagesRead;

/** Paragraphs read from one page, in reading order. */
export function ocrRaster(raster: Raster, s: OcrSettings, natives: NativePaths): string[] {
  pagesRead++;
  return paddle(s, natives)
    .read(raster)
    .text.split(/\n{2,}/)
    .map((p) => p.trim())
    .filter(Boolean);
}
