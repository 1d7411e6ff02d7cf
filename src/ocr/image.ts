import type { Sharp, SharpOptions } from "sharp";
import { loadSharp } from "../native/sharp";
import { BmpError, decodeBmp } from "./bmp";
import type { Raster } from "./raster";
import { decodeTiffFallback, type TiffPage } from "./tiff";

/** An image the reader refuses, with a sentence for the user. */
export class ImageError extends Error {}

export interface DecodedImage {
  format: string;
  /** Pages of a multi-page TIFF; animations (GIF, WebP) count as one. */
  pages: number;
  /** Of the first page. */
  width: number;
  height: number;
  page(index: number): Promise<Raster>;
}

/**
 * Opens an image for OCR: PNG, JPEG, WebP, GIF, TIFF (each page) through libvips, BMP through
 * our own reader. Pixels come out as 8-bit sRGB, turned upright by the EXIF orientation,
 * transparent areas on white (dark text on a transparent background stays readable), whatever
 * the source's bit depth or colour space (grayscale, CMYK, 16-bit). The pixel count is checked
 * from the header before decoding, so a decompression bomb costs nothing.
 */
export async function openImage(bytes: Uint8Array, maxPixels: number, sharpDir: string | null): Promise<DecodedImage> {
  const checkSize = (width: number, height: number) => {
    if (width * height > maxPixels)
      throw new ImageError(
        `the image is too large to read: ${width}×${height} is ${(width * height / 1e6).toFixed(1)} megapixels, over the limit of ${(maxPixels / 1e6).toFixed(1)} (--ocr-max-megapixels)`,
      );
  };
  if (bytes[0] === 0x42 && bytes[1] === 0x4d) {
    try {
      const raster = decodeBmp(bytes, checkSize);
      return { format: "bmp", pages: 1, width: raster.width, height: raster.height, page: async () => raster };
    } catch (e) {
      if (e instanceof BmpError) throw new ImageError(`the BMP image could not be read: ${e.message}`);
      throw e;
    }
  }
  const sharp = await loadSharp(sharpDir);
  // failOn "error": a slightly damaged photo still reads; only unreadable data fails.
  const base: SharpOptions = { limitInputPixels: maxPixels, failOn: "error" };
  let meta;
  try {
    // The header alone, with no pixel limit, so an oversized image gets its own message.
    meta = await sharp(bytes, { ...base, limitInputPixels: false }).metadata();
  } catch (e) {
    const fallback = tiffFallback(bytes, checkSize, (jpeg) => rasterOf(sharp(jpeg, base), 0));
    if (fallback) return fallback;
    throw new ImageError(`the image could not be read; it may be corrupt or truncated (${message(e)})`);
  }
  if (!meta.width || !meta.height) throw new ImageError("the image has no pixels");
  checkSize(meta.width, meta.pageHeight ?? meta.height);
  const format = meta.format ?? "image";
  const pages = format === "tiff" ? Math.max(1, meta.pages ?? 1) : 1;
  return {
    format,
    pages,
    width: meta.width,
    height: meta.pageHeight ?? meta.height,
    async page(index: number) {
      try {
        return await rasterOf(sharp(bytes, { ...base, page: index, pages: 1 }), index);
      } catch (e) {
        // libvips reads some TIFF headers whose pixels it cannot decode (old-style JPEG).
        const fallback = format === "tiff" ? tiffFallback(bytes, checkSize, (jpeg) => rasterOf(sharp(jpeg, base), index)) : null;
        if (fallback && index < fallback.pages) return fallback.page(index);
        throw e;
      }
    },
  };

  async function rasterOf(img: Sharp, index: number): Promise<Raster> {
    try {
      const { data, info } = await img.rotate().flatten({ background: "#ffffff" }).toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`unexpected ${info.channels} channels`);
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    } catch (e) {
      if (/pixel limit/i.test(message(e)))
        throw new ImageError(`the image is too large to read: page ${index + 1} is over the limit of ${(maxPixels / 1e6).toFixed(1)} megapixels (--ocr-max-megapixels)`);
      throw new ImageError(`the image could not be decoded; it may be corrupt or truncated (${message(e)})`);
    }
  }
}

/**
 * TIFF layouts libvips refuses (bilevel with an alpha sample, old-style JPEG), read by our own
 * reader (an old-style JPEG page's stream goes to `jpeg`); null when it cannot read them either.
 */
function tiffFallback(bytes: Uint8Array, checkSize: (w: number, h: number) => void, jpeg: (stream: Uint8Array) => Promise<Raster>): DecodedImage | null {
  const tiff = (bytes[0] === 0x49 && bytes[1] === 0x49 && bytes[2] === 42) || (bytes[0] === 0x4d && bytes[1] === 0x4d && bytes[3] === 42);
  if (!tiff) return null;
  let pages: TiffPage[];
  try {
    pages = decodeTiffFallback(bytes, checkSize);
  } catch (e) {
    if (e instanceof ImageError) throw e; // too large: that message stands
    return null;
  }
  return {
    format: "tiff",
    pages: pages.length,
    width: pages[0]!.width,
    height: pages[0]!.height,
    page: async (i) => {
      const p = pages[i]!;
      return "jpeg" in p ? jpeg(p.jpeg) : p;
    },
  };
}

const message = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0]!.slice(0, 160);
