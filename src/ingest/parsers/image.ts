import { decodeImage, ImageError, ocrRaster } from "../../ocr/engine";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";

/** Images through OCR, page by page (multi-page TIFF); each page is a location. */
export async function parseImage(input: ParseInput): Promise<ParsedDocument> {
  const ocr = input.ocr;
  if (!ocr.enabled) throw new ParseError("no text found; OCR is disabled", "no_text");
  let image;
  try {
    image = await decodeImage(input.bytes, ocr, input.natives);
  } catch (e) {
    if (e instanceof ImageError) throw new ParseError(e.message);
    throw e;
  }
  const blocks: Block[] = [];
  for (let i = 0; i < image.pages; i++) {
    input.progress(`OCR page ${i + 1} of ${image.pages}`);
    let raster;
    try {
      raster = await image.page(i);
    } catch (e) {
      if (e instanceof ImageError) throw new ParseError(image.pages > 1 ? `page ${i + 1}: ${e.message}` : e.message);
      throw e;
    }
    ocrRaster(raster, ocr, input.natives).forEach((text, j) => blocks.push({ text, loc: { page: i + 1 }, boundary: j === 0 }));
  }
  if (!blocks.length) throw new ParseError(`no text found: OCR read no text in the ${image.format.toUpperCase()} image`, "no_text");
  return { format: "image", blocks, pages: image.pages } as ParsedDocument;
}
