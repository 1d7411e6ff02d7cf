import { createHash } from "node:crypto";
import { decodeImage, ImageError, ocrRaster } from "../../ocr/engine";
import { sniffImage } from "../../util/content-type";
import type { Block, Location, ParseInput } from "../types";

// Pictures inside documents (a screenshot in a deck, a scanned page in a DOCX, an image in an
// e-mail) are read by the OCR that images already use, at the picture's place.

export interface Picture {
  bytes: Uint8Array;
  loc: Location;
}

// Icons, bullets and logos hold no sentence worth the time: a picture smaller than this in
// either direction, or in area, is passed over.
const MIN_SIDE = 20;
const MIN_AREA = 4000;
// All of a document's pictures together: beyond this, the rest are passed over.
const MAX_TOTAL_PIXELS = 250_000_000;

/**
 * A reader for one document's pictures: each call returns the blocks read from some of them
 * (a slide's, a chapter's), each at its picture's location. A picture seen before (a logo on
 * every slide) is read once, and the pixel budget is the document's.
 */
export function pictureReader(input: ParseInput): (pictures: Picture[]) => Promise<Block[]> {
  const seen = new Set<string>();
  let pixels = 0;
  let n = 0;
  return (pictures) => readPictures(input, pictures, seen, () => pixels, (add) => (pixels += add), () => ++n);
}

async function readPictures(input: ParseInput, pictures: Picture[], seen: Set<string>, used: () => number, use: (n: number) => void, count: () => number): Promise<Block[]> {
  if (!input.ocr.embedded || pictures.length === 0) return [];
  const blocks: Block[] = [];
  for (const p of pictures) {
    const n = count();
    // Vector formats (EMF, WMF, SVG) and anything else that is not a raster image are skipped.
    if (!sniffImage(p.bytes.subarray(0, 32))) continue;
    const hash = createHash("sha1").update(p.bytes).digest("hex");
    if (seen.has(hash)) continue;
    seen.add(hash);
    let image;
    try {
      image = await decodeImage(p.bytes, input.ocr, input.natives);
    } catch (e) {
      // One damaged or oversized picture does not cost the document.
      if (e instanceof ImageError) continue;
      throw e;
    }
    if (image.width < MIN_SIDE || image.height < MIN_SIDE || image.width * image.height < MIN_AREA) continue;
    if (used() + image.width * image.height > MAX_TOTAL_PIXELS) break;
    use(image.width * image.height);
    input.progress(`OCR picture ${n}`);
    let raster;
    try {
      raster = await image.page(0);
    } catch (e) {
      if (e instanceof ImageError) continue;
      throw e;
    }
    ocrRaster(raster, input.ocr, input.natives).forEach((text, i) => blocks.push({ text, loc: p.loc, ...(i === 0 ? { boundary: true } : {}) }));
  }
  return blocks;
}
