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

export interface ParseInput {
  bytes: Uint8Array;
  filename: string;
  limits: ParseLimits;
  progress: Progress;
  ocr: OcrSettings;
  natives: NativePaths;
}
