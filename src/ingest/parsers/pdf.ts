import { EmbeddedCanvasFactory } from "./pdf-env";
import { PDFParse } from "pdf-parse";
import { decodeImage, ImageError, ocrRaster } from "../../ocr/engine";
import { ParseError, scansWithoutText, type Block, type ParseInput, type ParsedDocument } from "../types";

// A split first range on a document shorter than this many times its length is read whole:
// the other ranges would cost a process start and a load of the document for little.
const SPLIT_WORTH = 1.5;

// A process reading one range after another of the same file keeps the document open.
let kept: { key: string; parser: PDFParse } | null = null;

/** Whether this process holds the document kept under `key` (its bytes need not be read again). */
export const keepsPdf = (key: string) => kept?.key === key;

export async function closeKeptPdf() {
  const k = kept;
  kept = null;
  await k?.parser.destroy().catch(() => {});
}

/** PDF through pdf.js (pdf-parse), one page at a time so progress and memory stay bounded. */
export async function parsePdf(input: ParseInput): Promise<ParsedDocument> {
  const keep = input.pages && input.keepOpen;
  if (kept && kept.key !== keep) await closeKeptPdf();
  const parser = kept?.parser ?? new PDFParse({ data: input.bytes, verbosity: 0, isEvalSupported: false, CanvasFactory: EmbeddedCanvasFactory } as ConstructorParameters<typeof PDFParse>[0]);
  let keeping = false;
  try {
    let pages: number;
    try {
      // getInfo loads the document once; later getText calls reuse it.
      pages = (await parser.getInfo()).total;
    } catch (e) {
      throw pdfError(e);
    }
    let from = 1;
    let to = pages;
    const range = input.pages;
    const part = !!range && (!range.split || pages > range.to * SPLIT_WORTH);
    if (range?.split) input.splitting?.(pages, part);
    if (part) {
      from = range.from;
      to = Math.min(pages, range.to);
    }
    const blocks: Block[] = [];
    let scanned = 0;
    for (let page = from; page <= to; page++) {
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
    if (part) {
      if (keep) {
        kept = { key: keep, parser };
        keeping = true;
      }
      return { format: "pdf", blocks, part: { pages, scanned } };
    }
    if (!blocks.length && scanned) throw scansWithoutText(input.ocr.enabled);
    return { format: "pdf", blocks, pages } as ParsedDocument;
  } finally {
    if (!keeping) {
      if (kept?.parser === parser) kept = null;
      await parser.destroy().catch(() => {});
    }
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
