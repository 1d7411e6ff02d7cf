import { RagdError } from "../errors";

/** Parses a single-range `Range: bytes=...` header; null means "send everything". */
export function parseRange(header: string | null, size: number): { start: number; end: number } | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Multiple or malformed ranges: RFC 9110 lets a server ignore Range and send the whole.
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (start >= size || start > end) throw unsatisfiable(size);
  }
  return { start, end };
}

const unsatisfiable = (size: number) =>
  new RagdError("range_not_satisfiable", `The requested range is not satisfiable: the file has ${size} bytes.`, "range", {
    "content-range": `bytes */${size}`,
  });

/** attachment; filename="ascii fallback"; filename*=UTF-8''exact name (RFC 6266). */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const exact = encodeURIComponent(filename).replace(/['()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
