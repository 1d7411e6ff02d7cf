import type { IngestErrorCode } from "../errors";
import type { OcrSettings } from "../ocr/engine";
import type { NativePaths } from "../native/assets";

/** Where a piece of text came from, in the terms of its format. */
export interface Location {
  page?: number;
  pages?: [number, number];
  slide?: number;
  sheet?: string;
  rows?: [number, number];
  lines?: [number, number];
  headings?: string[];
  chapter?: string;
  time?: [string, string];
  /** In an e-mail: the attachment's name (nested ones joined by " > "). */
  attachment?: string;
}

/**
 * A unit of structure a parser found: a paragraph, a heading, a table row, a cue.
 * `boundary` marks a hard break (new page, slide, sheet, chapter, heading) that a chunk
 * should not straddle when it can avoid it. `header` is repeated in every chunk of a table.
 */
export interface Block {
  text: string;
  loc: Location;
  boundary?: boolean;
  header?: string;
}

export interface ParsedDocument {
  format: string;
  blocks: Block[];
  /** Set when only a range of the document's pages was read (see PageRange). */
  part?: { pages: number; scanned: number };
}

/**
 * A PDF's pages read by several parse processes at once (pipeline.ts): each reads a range and
 * one of them cuts the chunks over all of them. `split`: the first range, asked before the
 * page count is known; a document too short to be worth splitting is read whole instead.
 */
export interface PageRange {
  from: number;
  to: number;
  split?: boolean;
}

/** A parse failure the user can act on; its message becomes the file's status_details, its code the outcome's. */
export class ParseError extends Error {
  constructor(
    message: string,
    readonly code: IngestErrorCode = "invalid_file",
  ) {
    super(message);
  }
}

/**
 * The stored file could not be read (the disk's fault, not the document's): the parse is
 * tried again later, as when the server itself cannot read it (pipeline.ts).
 */
export class StoredFileError extends Error {
  constructor(cause: unknown) {
    super(`could not read the stored file: ${String((cause as Error)?.message ?? cause)}`);
  }
}

export type Progress = (message: string) => void;

// Limits applied as a document expands, so the known bombs stop early with a reason; the
// memory ceiling of the parse process (parse-pool.ts) stops whatever they do not foresee.
export interface ParseLimits {
  /** Largest total a zip-based format may expand to. */
  maxExpandedBytes: number;
  maxZipEntries: number;
  /** Largest expansion ratio of any one zip entry. */
  maxCompressionRatio: number;
  /** Largest XML part a library reads into a DOM (DOCX through mammoth: ~25x its size in memory). */
  maxDomXmlBytes: number;
  /** Most spreadsheet cells with content, after ODS's repeat attributes are expanded. */
  maxCells: number;
  /** Most characters of text one document may hold. */
  maxTextChars: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxExpandedBytes: 1024 ** 3,
  maxZipEntries: 10_000,
  maxCompressionRatio: 200,
  maxDomXmlBytes: 64 * 1024 ** 2,
  maxCells: 2_000_000,
  maxTextChars: 100_000_000,
};

export const megabytes = (n: number) => `${Math.round(n / 1024 ** 2)} MB`;

export const tooMuchText = (max: number) =>
  new ParseError(`the document holds more than ${Math.round(max / 1e6)} million characters of text, past what one file may hold here; split it`, "file_too_large");

/** A PDF whose pages are all images and gave no text. */
export const scansWithoutText = (ocrEnabled: boolean) =>
  new ParseError(
    ocrEnabled ? "no text found: the PDF's pages are images and OCR read no text in them" : "no text found; OCR is disabled (the PDF's pages are images without a text layer)",
    "no_text",
  );

export interface ParseInput {
  bytes: Uint8Array;
  filename: string;
  limits: ParseLimits;
  progress: Progress;
  ocr: OcrSettings;
  natives: NativePaths;
  /** PDF only: read these pages alone; others read them whole. */
  pages?: PageRange;
  /** Told the page count on a `split` request, and whether the document is split, before its pages are read. */
  splitting?: (pages: number, split: boolean) => void;
  /** Keep a document read by ranges open under this key for the file's next range. */
  keepOpen?: string;
  /**
   * The stored file itself, when `bytes` holds only its head: a PDF is read from it as its
   * reader asks (pdfium.ts), so the parse process never holds the whole file.
   */
  path?: string;
}
