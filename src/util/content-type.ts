// The Content-Type a download is served with. Chosen from the extension, because the
// client-declared type is often wrong (SDKs send application/octet-stream for everything).
const BY_EXT: Record<string, string> = {
  pdf: "application/pdf",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  xls: "application/vnd.ms-excel",
  ods: "application/vnd.oasis.opendocument.spreadsheet",
  doc: "application/msword",
  csv: "text/csv; charset=utf-8",
  tsv: "text/tab-separated-values; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  json: "application/json",
  jsonl: "application/jsonl",
  epub: "application/epub+zip",
  srt: "application/x-subrip",
  vtt: "text/vtt; charset=utf-8",
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

export function contentTypeFor(filename: string, declared?: string): string {
  const byExt = BY_EXT[extensionOf(filename)];
  if (byExt) return byExt;
  if (declared && /^[a-z]+\/[a-z0-9.+-]+$/i.test(declared) && declared !== "application/octet-stream") return declared.toLowerCase();
  return "application/octet-stream";
}

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
