// The Content-Type a download is served with. Chosen from the extension, because the
// client-declared type is often wrong (SDKs send application/octet-stream for everything);
// text types (text/*) also name their charset.
const BY_EXT: Record<string, string> = {
  pdf: "application/pdf",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  xls: "application/vnd.ms-excel",
  ods: "application/vnd.oasis.opendocument.spreadsheet",
  doc: "application/msword",
  csv: "text/csv",
  tsv: "text/tab-separated-values",
  txt: "text/plain",
  md: "text/markdown",
  html: "text/html",
  htm: "text/html",
  json: "application/json",
  jsonl: "application/jsonl",
  epub: "application/epub+zip",
  srt: "application/x-subrip",
  vtt: "text/vtt",
  xml: "application/xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  bmp: "image/bmp",
  tif: "image/tiff",
  tiff: "image/tiff",
  zip: "application/zip",
};

export const extensionOf = (filename: string) => {
  const dot = filename.lastIndexOf(".");
  return dot > 0 ? filename.slice(dot + 1).toLowerCase() : "";
};

/**
 * `head`: the file's first bytes, when read. An image (`image`: a vision file) is served as the
 * image its bytes are, whatever its name. A text type's charset is UTF-16 when the bytes open
 * with its byte order mark, else the one the client declared, else UTF-8 (what ingestion also
 * assumes first).
 */
export function contentTypeFor(filename: string, declared?: string, head?: Uint8Array, image = false): string {
  const sniffed = image && head ? sniffImage(head) : null;
  if (sniffed) return `image/${sniffed}`;
  const [base = "", ...params] = (declared ?? "").split(";").map((p) => p.trim().toLowerCase());
  const valid = /^[a-z]+\/[a-z0-9.+-]+$/.test(base) && base !== "application/octet-stream";
  const type = BY_EXT[extensionOf(filename)] ?? (valid ? base : "application/octet-stream");
  if (!type.startsWith("text/")) return type;
  const bom16 = head && head.length >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff));
  const named = params.map((p) => /^charset="?([a-z0-9._:-]+)"?$/.exec(p)?.[1]).find((c) => c !== undefined);
  return `${type}; charset=${bom16 ? "utf-16" : (named ?? "utf-8")}`;
}

/** Whether contentTypeFor would read a file's first bytes: its name says text, or it must be an image. */
export const typeNeedsHead = (filename: string, declared: string | undefined, image: boolean) =>
  image || (BY_EXT[extensionOf(filename)] ?? declared?.split(";")[0]?.trim().toLowerCase() ?? "").startsWith("text/");

/** The image format named by a file's first bytes, or null. */
const BMP_HEADER_SIZES = new Set([12, 16, 40, 52, 56, 64, 108, 124]);

export function sniffImage(head: Uint8Array): string | null {
  const b = head;
  const at = (i: number, ...bytes: number[]) => bytes.every((x, j) => b[i + j] === x);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "png";
  if (at(0, 0xff, 0xd8, 0xff)) return "jpeg";
  if (at(0, 0x47, 0x49, 0x46, 0x38) && (at(4, 0x37, 0x61) || at(4, 0x39, 0x61))) return "gif";
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return "webp";
  // "BM" alone also starts text ("BMP-2 signalling ..."): the DIB header size must be one of BMP's.
  if (at(0, 0x42, 0x4d) && b.length >= 18 && BMP_HEADER_SIZES.has(new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(14, true))) return "bmp";
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return "tiff";
  return null;
}
