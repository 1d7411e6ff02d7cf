import { extensionOf, sniffImage } from "../../util/content-type";
import { ParseError, type ParseInput, type ParsedDocument } from "../types";
import * as CFB from "cfb";
import { SafeZip } from "../zip";

export const SUPPORTED_FORMATS =
  "PDF, DOCX, DOC, ODT, RTF, PPTX, PPT, ODP, XLSX, XLS, ODS, CSV, TSV, TXT, Markdown, HTML, JSON, EPUB, EML, MSG, SRT, VTT, source code, and images by OCR (PNG, JPEG, WebP, GIF, BMP, TIFF)";

export type Format =
  | "pdf" | "docx" | "pptx" | "xlsx" | "xls" | "ods" | "epub"
  | "odt" | "odp" | "csv" | "tsv" | "html" | "srt" | "vtt" | "markdown" | "json" | "code" | "text" | "image"
  | "doc" | "ppt" | "msg" | "eml" | "rtf";

const NAMED: Record<string, Format> = {
  pdf: "pdf", docx: "docx", docm: "docx", pptx: "pptx", pptm: "pptx", xlsx: "xlsx", xlsm: "xlsx", xls: "xls", ods: "ods", odt: "odt", odp: "odp", epub: "epub",
  csv: "csv", tsv: "tsv", tab: "tsv", html: "html", htm: "html", xhtml: "html", srt: "srt", vtt: "vtt",
  md: "markdown", markdown: "markdown", json: "json", jsonl: "json", ndjson: "json",
  eml: "eml", doc: "doc", dot: "doc", ppt: "ppt", pps: "ppt", pot: "ppt", msg: "msg", rtf: "rtf",
};
const CONTAINERS = new Set<Format>(["pdf", "docx", "pptx", "xlsx", "xls", "ods", "odt", "odp", "epub", "doc", "ppt", "msg", "rtf"]);
const CODE = new Set("c h cc cpp hpp cs go java js jsx ts tsx mjs cjs py rb rs php swift kt kts scala sh bash zsh ps1 sql r lua pl m mm dart ex exs erl hs clj vue svelte css scss less yaml yml toml ini cfg conf".split(" "));

const at = (b: Uint8Array, i: number, ...bytes: number[]) => bytes.every((x, j) => b[i + j] === x);
const ascii = (b: Uint8Array, n: number) => new TextDecoder("latin1").decode(b.subarray(0, n));

/**
 * Which parser reads these bytes: the content's magic bytes decide, the extension only
 * breaks ties between text formats. A file whose extension lies is read as what it is.
 */
export function detectFormat(bytes: Uint8Array, filename: string, limits: ParseInput["limits"]): Format {
  const f = detectFromHead(bytes.subarray(0, HEAD), filename);
  return f === "zip" ? zipFormat(bytes, limits) : f === "ole" ? oleFormat(bytes, extensionOf(filename)) : f;
}

// Every decision below needs at most this many leading bytes.
const HEAD = 8192;

/**
 * The format as far as the first 8 KB tell ("zip" until its directory is read); throws a
 * ParseError for what no parser reads, so such a file is refused without starting one.
 */
export function detectFromHead(bytes: Uint8Array, filename: string): Format | "zip" | "ole" {
  if (bytes.length === 0) throw new ParseError("the file is empty", "no_text");
  const ext = extensionOf(filename);
  const named = NAMED[ext];
  if (ascii(bytes, 1024).includes("%PDF-")) return "pdf";
  if (at(bytes, 0, 0x50, 0x4b, 0x03, 0x04) || at(bytes, 0, 0x50, 0x4b, 0x05, 0x06)) return "zip";
  // An OLE container: Word 97-2003, PowerPoint, Excel, Outlook, or an encrypted OOXML file.
  if (at(bytes, 0, 0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1)) return "ole";
  if (ascii(bytes, 5) === "{\\rtf") return "rtf";
  if (sniffImage(bytes)) return "image";
  if (named && CONTAINERS.has(named))
    throw new ParseError(`the file is named .${ext} but its content is not a ${ext.toUpperCase()} file (it may be corrupt or mislabelled)`);
  const media = knownBinary(bytes);
  if (media) throw new ParseError(`unsupported format: the file is ${media}, which has no text to read. Supported formats: ${SUPPORTED_FORMATS}`, "unsupported_file");
  if (looksBinary(bytes)) throw new ParseError(`unsupported format: the file is binary and not a document this server reads. Supported formats: ${SUPPORTED_FORMATS}`, "unsupported_file");
  if (named) return named;
  if (CODE.has(ext)) return "code";
  if (looksLikeMail(bytes)) return "eml";
  const head = ascii(bytes, 512).trimStart().toLowerCase();
  if (head.startsWith("<!doctype html") || head.startsWith("<html")) return "html";
  if (head.startsWith("webvtt")) return "vtt";
  return "text";
}

/** Which program wrote an OLE container, by the streams in its directory. */
function oleFormat(bytes: Uint8Array, ext: string): Format {
  let names: string[];
  try {
    names = CFB.read(bytes, { type: "array" }).FullPaths.map((p) => p.replace(/^[^/]*\//, "").replace(/\/$/, ""));
  } catch (e) {
    // Office encrypts DOCX/XLSX/PPTX by wrapping them in an OLE container.
    if (/^(docx|docm|pptx|pptm|xlsx|xlsm)$/.test(ext)) throw new ParseError("the file is password-protected");
    throw new ParseError(`the file is a damaged Office container and could not be read (${String((e as Error)?.message ?? e).slice(0, 100)})`);
  }
  const has = (n: string) => names.includes(n);
  if (has("EncryptedPackage") || has("EncryptionInfo")) throw new ParseError("the file is password-protected");
  if (has("WordDocument")) return "doc";
  if (has("PowerPoint Document")) return "ppt";
  if (has("Workbook") || has("Book")) return "xls";
  if (has("__properties_version1.0") || names.some((n) => n.startsWith("__substg1.0_"))) return "msg";
  throw new ParseError(`the file is an OLE container of a kind this server does not read (Visio, Publisher, an old Works file?). Supported formats: ${SUPPORTED_FORMATS}`, "unsupported_file");
}

/** An RFC 822 message saved without the .eml name: headers from the first line, then a blank line. */
function looksLikeMail(b: Uint8Array): boolean {
  const head = new TextDecoder("latin1").decode(b.subarray(0, 4096));
  const lines = head.split(/\r?\n/);
  let headers = 0;
  let hasFrom = false;
  for (const line of lines) {
    if (line === "") return headers >= 2 && hasFrom;
    if (/^[ \t]/.test(line)) continue;
    const m = /^([A-Za-z][A-Za-z0-9-]*):/.exec(line);
    if (!m) return false;
    headers++;
    if (/^(from|received|return-path|mime-version)$/i.test(m[1]!)) hasFrom = true;
  }
  return false;
}

function zipFormat(bytes: Uint8Array, limits: ParseInput["limits"]): Format {
  const zip = new SafeZip(bytes, limits);
  if (zip.has("word/document.xml")) return "docx";
  if (zip.has("ppt/presentation.xml")) return "pptx";
  if (zip.has("xl/workbook.xml") || zip.has("xl/workbook.bin")) return "xlsx";
  const mimetype = zip.has("mimetype") ? zip.text("mimetype")?.trim() : null;
  if (mimetype === "application/epub+zip" || zip.has("META-INF/container.xml")) return "epub";
  if (mimetype === "application/vnd.oasis.opendocument.spreadsheet") return "ods";
  if (mimetype === "application/vnd.oasis.opendocument.text") return "odt";
  if (mimetype === "application/vnd.oasis.opendocument.presentation") return "odp";
  if (mimetype?.startsWith("application/vnd.oasis.opendocument."))
    throw new ParseError(`OpenDocument drawings, charts and formulas are not supported. Supported formats: ${SUPPORTED_FORMATS}`, "unsupported_file");
  throw new ParseError(`unsupported format: the file is a ZIP archive, and archives are not unpacked; upload the files inside it. Supported formats: ${SUPPORTED_FORMATS}`, "unsupported_file");
}

function knownBinary(b: Uint8Array): string | null {
  const tag = ascii(b, 12);
  if (tag.startsWith("RIFF")) return tag.slice(8, 12) === "WAVE" ? "WAV audio" : "a RIFF media file";
  if (tag.startsWith("ID3") || (b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && b[1]! < 0xfe)) return "MP3 audio";
  if (tag.startsWith("OggS")) return "Ogg media";
  if (tag.startsWith("fLaC")) return "FLAC audio";
  if (tag.slice(4, 8) === "ftyp") return /heic|heix|mif1|avif/.test(tag.slice(8, 12)) ? "a HEIC/AVIF image (convert it to PNG or JPEG)" : "MP4/QuickTime media";
  if (at(b, 0, 0x1f, 0x8b)) return "a gzip archive";
  if (tag.startsWith("7z\xbc\xaf") || tag.startsWith("Rar!")) return "an archive";
  if (at(b, 0, 0x7f, 0x45, 0x4c, 0x46) || tag.startsWith("MZ")) return "an executable";
  if (tag.startsWith("SQLite forma")) return "a database";
  return null;
}

/** Binary unless it has a Unicode BOM or no NUL bytes in its first 8 KB (UTF-16 text has many). */
function looksBinary(b: Uint8Array): boolean {
  if (at(b, 0, 0xef, 0xbb, 0xbf) || at(b, 0, 0xff, 0xfe) || at(b, 0, 0xfe, 0xff) || at(b, 0, 0, 0, 0xfe, 0xff)) return false;
  const n = Math.min(b.length, 8192);
  let nul = 0;
  let control = 0;
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c === 0) nul++;
    else if (c < 9 || (c > 13 && c < 32 && c !== 27)) control++;
  }
  if (nul === 0) {
    if (control > n * 0.1) return true;
    // Not UTF-8 and mostly high bytes: compressed or encoded data, not cp1252 prose.
    let high = 0;
    for (let i = 0; i < n; i++) if (b[i]! >= 0x80) high++;
    if (high > n * 0.3) {
      try {
        // stream: a multi-byte character cut at the 8 KB mark is not an error.
        new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(0, n), { stream: true });
      } catch {
        return true;
      }
    }
    return false;
  }
  // UTF-16 without BOM: zeros in every other byte.
  let even = 0;
  let odd = 0;
  for (let i = 0; i + 1 < n; i += 2) {
    if (b[i] === 0) even++;
    if (b[i + 1] === 0) odd++;
  }
  const half = n / 2;
  return !((odd > half * 0.4 && even < half * 0.05) || (even > half * 0.4 && odd < half * 0.05));
}

export async function parseDocument(input: ParseInput): Promise<ParsedDocument & { format: Format }> {
  const format = detectFormat(input.bytes, input.filename, input.limits);
  const doc = await dispatch(format, input);
  return { ...doc, format };
}

// Parsers load on first use: a worker that reads a CSV never pays for PDFium or SheetJS.
async function dispatch(format: Format, input: ParseInput): Promise<ParsedDocument> {
  switch (format) {
    case "pdf": return (await import("./pdf")).parsePdf(input);
    case "docx": return (await import("./docx")).parseDocx(input);
    case "odt": return (await import("./odt")).parseOdt(input);
    case "odp": return (await import("./odt")).parseOdp(input);
    case "pptx": return (await import("./pptx")).parsePptx(input);
    case "xlsx": case "xls": case "ods": return (await import("./spreadsheet")).parseSpreadsheet(input, format);
    case "epub": return (await import("./epub")).parseEpub(input);
    case "csv": case "tsv": return (await import("./csv")).parseCsv(input, format);
    case "html": return (await import("./html")).parseHtml(input);
    case "srt": case "vtt": return (await import("./subtitles")).parseSubtitles(input, format);
    case "markdown": case "json": case "code": case "text": return (await import("./text")).parseText(input, format);
    case "image": return (await import("./image")).parseImage(input);
    case "eml": return (await import("./email")).parseEml(input);
    case "msg": return (await import("./email")).parseMsg(input);
    case "doc": return (await import("./legacy")).parseDoc(input);
    case "ppt": return (await import("./legacy")).parsePpt(input);
    case "rtf": return (await import("./rtf")).parseRtf(input);
  }
}
