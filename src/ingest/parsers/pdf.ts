import { ocrRaster } from "../../ocr/engine";
import { ParseError, scansWithoutText, StoredFileError, type Block, type ParseInput, type ParsedDocument } from "../types";
import { PdfDocument, PdfOpenError, type OutlineEntry } from "./pdfium";

// A split first range on a document shorter than this many times its length is read whole:
// the other ranges would cost a process start and a load of the document for little.
const SPLIT_WORTH = 1.5;

// A process reading one range after another of the same file keeps the document open (and
// the bytes PDFium reads it from).
let kept: { key: string; doc: PdfDocument } | null = null;

/** Whether this process holds the document kept under `key` (its bytes need not be read again). */
export const keepsPdf = (key: string) => kept?.key === key;

export async function closeKeptPdf() {
  const k = kept;
  kept = null;
  k?.doc.close();
}

/** PDF through PDFium (pdfium.ts), one page at a time so progress and memory stay bounded. */
export async function parsePdf(input: ParseInput): Promise<ParsedDocument> {
  const keep = input.pages && input.keepOpen;
  if (kept && kept.key !== keep) await closeKeptPdf();
  let doc: PdfDocument;
  try {
    doc = kept?.doc ?? (await PdfDocument.open(input.path ?? input.bytes));
  } catch (e) {
    throw e instanceof PdfOpenError ? pdfError(e) : e;
  }
  let keeping = false;
  try {
    const pages = doc.pages;
    if (pages <= 0) throw new ParseError("the PDF is corrupt or truncated and could not be read (it has no pages)");
    let from = 1;
    let to = pages;
    const range = input.pages;
    const part = !!range && (!range.split || pages > range.to * SPLIT_WORTH);
    if (range?.split) input.splitting?.(pages, part);
    if (part) {
      from = range.from;
      to = Math.min(pages, range.to);
    }
    const sections = sectionsByPage(doc, pages);
    const loc = (page: number, path = sections[page]!.top) => (path ? { page, headings: path } : { page });
    const blocks: Block[] = [];
    let scanned = 0;
    for (let page = from; page <= to; page++) {
      input.progress(`parsing page ${page} of ${pages}`);
      const raw = doc.text(page);
      // One damaged page does not cost the whole document.
      if (raw === null) {
        if (pages === 1) throw new ParseError("the PDF is corrupt or truncated and could not be read (its only page could not be loaded)");
        continue;
      }
      const text = cleanPageText(raw);
      if (hasTextLayer(text)) {
        for (const piece of splitAtSections(text, sections[page]!)) blocks.push({ text: piece.text, loc: loc(page, piece.path), boundary: true });
        continue;
      }
      // A page without a text layer (or with a stray page number only) is a scan, read by OCR
      // unless it draws nothing a scan could hold: a blank page, or one whose few characters
      // read as a page number (a short title's letters may be a font's codes, which OCR reads).
      scanned++;
      if (!input.ocr.enabled || (PAGE_NUMBER_AT_MOST.test(text) && doc.drawsLittleText(page, MIN_TEXT_LAYER))) {
        if (text) blocks.push({ text, loc: loc(page), boundary: true });
        continue;
      }
      input.progress(`OCR page ${page} of ${pages}`);
      const read = ocrPage(doc, page, input);
      (read.length ? read : text ? [text] : []).forEach((t, i) => blocks.push({ text: t, loc: loc(page), boundary: i === 0 }));
    }
    // Pages PDFium skipped because the file could not be read are not the document's doing.
    const unread = doc.readError();
    if (unread) throw new StoredFileError(unread);
    if (part) {
      if (keep) {
        kept = { key: keep, doc };
        keeping = true;
      }
      return { format: "pdf", blocks, part: { pages, scanned } };
    }
    if (!blocks.length && scanned) throw scansWithoutText(input.ocr.enabled);
    return { format: "pdf", blocks, pages } as ParsedDocument;
  } finally {
    if (!keeping) {
      if (kept?.doc === doc) kept = null;
      doc.close();
    }
  }
}

/**
 * PDFium ends lines with "\r\n" and marks a hyphen that breaks a word at a line's end with
 * U+FFFE (U+0002 when a page is read within its box), the line break itself dropped: the word
 * is joined when lower case goes on after it, as pdf.js's "-\n" was, and keeps a plain
 * hyphen otherwise.
 */
export function cleanPageText(raw: string): string {
  return raw
    .replace(/\r\n?/g, "\n")
    .replace(/(\p{L})[\uFFFE\u0002](\p{Ll})/gu, "$1$2")
    .replace(/[\uFFFE\u0002]/g, "-")
    .replace(/(\p{Ll})-\n(\p{Ll})/gu, "$1$2")
    // (a run of spaces is matched from its start only: tried from every space of a long run
    // that no line break ends, the pattern took time in the square of its length)
    .replace(/(?<![ \t])[ \t]+\n/g, "\n")
    .trim();
}

interface PageSections {
  /** The section in effect where the page begins (the last one opened before it). */
  before: string[] | undefined;
  /** The section the page's top is in (see sectionsByPage). */
  top: string[] | undefined;
  /** The outline's entries that open on this page, in outline order. */
  opening: OutlineEntry[];
}

/**
 * Each page's sections (index: page number). A page's top is in its first entry when that
 * opens in the page's top sixth, or in that entry's subsection when it opens there too (a
 * chapter and its first section); otherwise in the last section opened before the page.
 * Pages before the first entry are in none.
 */
function sectionsByPage(doc: PdfDocument, pages: number): PageSections[] {
  const opening = new Map<number, OutlineEntry[]>();
  for (const e of doc.outline()) {
    const list = opening.get(e.page);
    if (list) list.push(e);
    else opening.set(e.page, [e]);
  }
  // In reading order where every entry says where it opens (an outline may list a page's
  // sections in another order), else in outline order; a page's search is bounded.
  for (const [page, list] of opening) {
    if (list.every((e) => e.down !== null)) list.sort((a, b) => a.down! - b.down!);
    if (list.length > SECTIONS_PER_PAGE) opening.set(page, list.slice(0, SECTIONS_PER_PAGE));
  }
  const out: PageSections[] = new Array(pages + 1);
  let carried: string[] | undefined;
  for (let page = 1; page <= pages; page++) {
    const here = opening.get(page) ?? [];
    let top = carried;
    if (here[0]?.top) {
      top = here[0].path;
      for (const next of here.slice(1)) {
        if (next.path.length !== top.length + 1 || !top.every((t, i) => next.path[i] === t)) break;
        top = next.path;
      }
    }
    out[page] = { before: carried, top, opening: here };
    if (here.length) carried = here.at(-1)!.path;
  }
  return out;
}

/**
 * A page's text cut where the outline's sections open on it, each piece with its section:
 * an entry's title found at the start of a line, after the previous cut, begins its piece.
 * An entry whose title is not found there cuts nothing (the text goes on in the section
 * before, or in the page's top section when the page's first entry opens at its top); a
 * title followed at once by its subsection's stays with it.
 */
function splitAtSections(text: string, s: PageSections): { text: string; path: string[] | undefined }[] {
  if (!s.opening.length) return [{ text, path: s.top }];
  const out: { text: string; path: string[] | undefined }[] = [];
  let path = s.before;
  let from = 0;
  // where the title that began the current piece ends
  let titled = 0;
  for (const entry of s.opening) {
    const found = findTitle(text, entry.path.at(-1)!, titled);
    if (!found) {
      // the page's top is in this entry's section even where its title reads otherwise
      if (entry === s.opening[0] && entry.top) path = s.top;
      continue;
    }
    if (text.slice(titled, found.at).trim()) {
      const piece = text.slice(from, found.at).trim();
      if (piece) out.push({ text: piece, path });
      from = found.at;
    }
    path = entry.path;
    titled = found.end;
  }
  const rest = text.slice(from).trim();
  if (rest) out.push({ text: rest, path });
  return out.length ? out : [{ text, path: s.top }];
}

// Entries of one page looked for in its text (each search reads the rest of the page).
const SECTIONS_PER_PAGE = 200;

/**
 * Where `title` begins a line of `text` at or after `from` (spaces between its words
 * optional, and a line break after a slash or hyphen inside one): on a line of its own if it
 * stands on one there, else followed by other words ("Armored Ogre Creatures"), never inside
 * a longer word ("Introduction" for "Intro", "10" for "1"). A line of body text that begins
 * with the title's words is taken only when no line of its own holds it.
 * Section numbers are matched as pages print them: a title without one is found after one
 * ("2.3 Results" for "Results"), and a numbered title also with its number on the line above
 * its words, at most one short line (a date, a revision) between them, as manuals set them
 * ("2.3.59.1\n(12-12-2022)\nProgram Scope and\nObjectives"), its number's dot optional
 * ("1. Introduction" for "1 Introduction"); only then by its words alone, after any number.
 */
function findTitle(text: string, title: string, from: number): { at: number; end: number } | null {
  const numbered = SECTION_NUMBER.exec(title);
  const words = (numbered ? title.slice(numbered[0].length) : title).split(" ").filter(Boolean);
  if (!words.length) return null;
  // (inside a word only: a break allowed at its end too would meet the next word's, and two
  // optional runs side by side let a failing search try every split of the space between;
  // a hyphen that broke a line may have been joined away, cleanPageText)
  const phrase = words.map((w) => escape(w).replace(/[/-]+(?=.)/g, (run) => (run === "-" ? "-?\\s*" : `${run}\\s*`))).join("\\s*");
  // A numbered title is looked for with its number first ("1 Introduction" also as "1. Introduction"),
  // and only then by its words alone, after any number or none.
  const passes: string[][] = [];
  if (numbered) {
    const num = `${escape(numbered[1]!.replace(/\.$/, ""))}\\.?`;
    passes.push([`${num}\\s*${phrase}`, `${num}[ \\t]*\\n(?:[^\\n]{1,40}\\n)?[ \\t]*${phrase}`]);
  }
  passes.push([`(?:${NUMBER_ON_PAGE}[ \\t]+)?${phrase}`]);
  for (const starts of passes)
    for (const end of ["(?=[ \\t]*(?:\\n|$))", "(?![\\p{L}\\p{N}])"])
      for (const start of starts) {
        const pattern = new RegExp(`(?<=^|\\n)[ \\t]*${start}${end}`, "gu");
        pattern.lastIndex = from;
        const m = pattern.exec(text);
        if (m) return { at: m.index, end: m.index + m[0].length };
      }
  return null;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
// "2", "2.3", "2.3.59.1", "2.3.59-1", "IV.", "A." and the like, before a title's words.
const NUMBER_ON_PAGE = "(?:\\d+(?:[.-]\\d+)*\\.?|[IVXLC]+\\.|[A-Z]\\.)";
const SECTION_NUMBER = new RegExp(`^(${NUMBER_ON_PAGE})\\s+(?=\\S)`, "u");

// Fewer letters and digits than this and the page is treated as having no text layer.
const MIN_TEXT_LAYER = 20;
// Nothing, or digits and punctuation, or a roman numeral: what a page without content shows.
const PAGE_NUMBER_AT_MOST = /^[\s\p{N}\p{P}]*$|^\s*[ivxlcdm]+\s*$/iu;

// (counted up to the threshold only: a page's whole text need not be matched)
const LETTER_OR_DIGIT = /[\p{L}\p{N}]/gu;

function hasTextLayer(text: string): boolean {
  LETTER_OR_DIGIT.lastIndex = 0;
  for (let n = 0; n < MIN_TEXT_LAYER; n++) if (!LETTER_OR_DIGIT.exec(text)) return false;
  return true;
}

// Drawn so that a letter-size page is about 2000 pixels tall (about 180 dpi): small print
// stays legible to the recogniser. Larger pages are drawn smaller, so that a page with a huge
// media box stays under the OCR pixel limit.
const RENDER_SCALE = 2.5;

function ocrPage(doc: PdfDocument, page: number, input: ParseInput): string[] {
  const raster = doc.render(page, RENDER_SCALE, Math.min(input.ocr.maxPixels, 16e6) * 0.95);
  // A page PDFium cannot draw is skipped like a page it cannot read.
  if (!raster) return [];
  return ocrRaster(raster, input.ocr, input.natives);
}

function pdfError(e: unknown): ParseError {
  if (e instanceof PdfOpenError && e.password) return new ParseError("the file is password-protected");
  if (e instanceof PdfOpenError && e.security) return new ParseError("the PDF is encrypted with a security handler that cannot be read here (a certificate or a vendor's own); save it without encryption and upload it again");
  const msg = String((e as Error)?.message ?? e);
  return new ParseError(`the PDF is corrupt or truncated and could not be read (${msg.slice(0, 120)})`);
}
