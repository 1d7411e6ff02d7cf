import { EmbeddedCanvasFactory } from "./pdf-env";
import { PDFParse } from "pdf-parse";
import { decodeImage, ImageError, ocrRaster } from "../../ocr/engine";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";

/** PDF through pdf.js (pdf-parse), one page at a time so progress and memory stay bounded. */
export async function parsePdf(input: ParseInput): Promise<ParsedDocument> {
  const parser = new PDFParse({ data: input.bytes, verbosity: 0, isEvalSupported: false, CanvasFactory: EmbeddedCanvasFactory } as ConstructorParameters<typeof PDFParse>[0]);
  try {
    let pages: number;
    try {
      // getInfo loads the document once; later getText calls reuse it.
      pages = (await parser.getInfo()).total;
    } catch (e) {
      throw pdfError(e);
    }
    const blocks: Block[] = [];
    let scanned = 0;
    for (let page = 1; page <= pages; page++) {
      input.progress(`parsing page ${page} of ${pages}`);
      let text: string;
      try {
        text = (await parser.getText({ partial: [page], lineEnforce: true })).pages[0]?.text ?? "";
      } catch (e) {
        // One damaged page does not cost the whole document.
        if (page === 1 && pages === 1) throw pdfError(e);
        continue;
      }
      text = text
        .replace(/(\p{Ll})-\n(\p{Ll})/gu, "$1$2")
        .replace(/[ \t]+\n/g, "\n")
        .trim();
      if (hasTextLayer(text)) {
        blocks.push({ text, loc: { page }, boundary: true });
        continue;
      }
      // A page without a text layer (or with a stray page number only) is a scan.
      scanned++;
      if (!input.ocr.enabled) {
        if (text) blocks.push({ text, loc: { page }, boundary: true });
        continue;
      }
      input.progress(`OCR page ${page} of ${pages}`);
      const read = await ocrPage(parser, page, input);
      (read.length ? read : text ? [text] : []).forEach((t, i) => blocks.push({ text: t, loc: { page }, boundary: i === 0 }));
    }
    if (!blocks.length && scanned)
      throw new ParseError(
        input.ocr.enabled ? "no text found: the PDF's pages are images and OCR read no text in them" : "no text found; OCR is disabled (the PDF's pages are images without a text layer)",
        "no_text",
      );
    return { format: "pdf", blocks, pages } as ParsedDocument;
  } finally {
    await parser.destroy().catch(() => {});
  }
}

// Fewer letters and digits than this and the page is treated as having no text layer.
const MIN_TEXT_LAYER = 20;

function hasTextLayer(text: string): boolean {
  return (text.match(/[\p{L}\p{N}]/gu)?.length ?? 0) >= MIN_TEXT_LAYER;
}

// Rendered so that a letter-size page is about 2000 pixels tall (about 180 dpi): small print
// stays legible to the recogniser. Larger pages are drawn smaller, so that a page with a
// huge media box cannot make pdf.js allocate a canvas past the OCR pixel limit.
const RENDER_SCALE = 2.5;

async function ocrPage(parser: PDFParse, page: number, input: ParseInput): Promise<string[]> {
  let png: Uint8Array;
  try {
    const size = ((await parser.getInfo({ parsePageInfo: true, partial: [page] })) as unknown as { pages: { width: number; height: number }[] }).pages[0];
    const area = Math.max(1, (size?.width ?? 612) * (size?.height ?? 792));
    const scale = Math.min(RENDER_SCALE, Math.sqrt((Math.min(input.ocr.maxPixels, 16e6) * 0.95) / area));
    const shot = await parser.getScreenshot({ partial: [page], scale, imageBuffer: true, imageDataUrl: false });
    png = shot.pages[0]!.data;
  } catch {
    // A page pdf.js cannot draw is skipped like a page it cannot read.
    return [];
  }
  try {
    const image = await decodeImage(png, input.ocr, input.natives);
    return ocrRaster(await image.page(0), input.ocr, input.natives);
  } catch (e) {
    if (e instanceof ImageError) return [];
    throw e;
  }
}

function pdfError(e: unknown): ParseError {
  const name = (e as Error)?.name ?? "";
  const msg = String((e as Error)?.message ?? e);
  if (name === "PasswordException" || /password/i.test(msg)) return new ParseError("the file is password-protected");
  return new ParseError(`the PDF is corrupt or truncated and could not be read (${msg.slice(0, 120)})`);
}
