// A streaming multipart/form-data parser (RFC 7578) over the body's own chunks: the file's
// bytes are handed on as views of the chunks they arrived in, never copied, and the boundary
// is found by the runtime's native byte search.

export interface PartHead {
  /** The form field's name. */
  name: string;
  /** Present for a file part (possibly empty). */
  filename?: string;
  contentType: string;
}

export type MultipartEvent = { type: "part"; head: PartHead } | { type: "data"; bytes: Uint8Array } | { type: "end-part" };

export class MultipartError extends Error {}

// A part's header block past this is not a form a client sends.
const MAX_HEAD_BYTES = 16 * 1024;
const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

type State = "preamble" | "after-delimiter" | "head" | "body" | "done";

/** The boundary from a Content-Type header, or null when it has none. */
export function boundaryOf(contentType: string): string | null {
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]!) : null;
}

export class MultipartParser {
  private readonly delimiter: Buffer;
  private state: State = "preamble";
  // Bytes held over to the next chunk: a possible start of the delimiter, or a header block
  // not yet complete. Never more than the header limit.
  private held: Uint8Array;

  constructor(boundary: string) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
    // The first delimiter may open the body with no CRLF before it.
    this.held = CRLF;
  }

  get finished() {
    return this.state === "done";
  }

  /** The events this chunk completes, in order. Data events view `chunk` and must be used before the next call. */
  *push(chunk: Uint8Array): Generator<MultipartEvent> {
    if (this.state === "done" || chunk.length === 0) return;
    if (this.state === "body" && this.held.length > 0 && chunk.length >= this.delimiter.length) {
      // A delimiter may straddle the held tail and this chunk: search just the seam.
      const seam = Buffer.concat([this.held, chunk.subarray(0, this.delimiter.length)]);
      const at = seam.indexOf(this.delimiter);
      if (at >= 0 && at < this.held.length) {
        if (at > 0) yield { type: "data", bytes: this.held.subarray(0, at) };
        const rest = at + this.delimiter.length - this.held.length;
        this.held = new Uint8Array(0);
        yield { type: "end-part" };
        this.state = "after-delimiter";
        yield* this.scan(chunk, rest);
        return;
      }
      yield { type: "data", bytes: this.held };
      this.held = new Uint8Array(0);
      yield* this.scan(chunk, 0);
      return;
    }
    if (this.held.length > 0) {
      const joined = Buffer.concat([this.held, chunk]);
      this.held = new Uint8Array(0);
      yield* this.scan(joined, 0);
      return;
    }
    yield* this.scan(chunk, 0);
  }

  /** The body ended: anything but a closed form is an error. */
  end() {
    if (this.state !== "done") throw new MultipartError("Unexpected end of form");
  }

  private *scan(chunk: Uint8Array, from: number): Generator<MultipartEvent> {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let at = from;
    while (at < buf.length) {
      switch (this.state) {
        case "preamble": {
          const i = buf.indexOf(this.delimiter, at);
          if (i < 0) {
            this.hold(buf, Math.max(at, buf.length - this.delimiter.length + 1));
            return;
          }
          at = i + this.delimiter.length;
          this.state = "after-delimiter";
          break;
        }
        case "after-delimiter": {
          // "--" closes the form; otherwise optional whitespace, then CRLF opens a part.
          if (buf.length - at < 2) {
            this.hold(buf, at);
            return;
          }
          if (buf[at] === 0x2d && buf[at + 1] === 0x2d) {
            this.state = "done";
            return;
          }
          const eol = buf.indexOf(CRLF, at);
          if (eol < 0) {
            if (buf.length - at > 256) throw new MultipartError("Malformed part boundary");
            this.hold(buf, at);
            return;
          }
          if (!/^[ \t]*$/.test(buf.toString("latin1", at, eol))) throw new MultipartError("Malformed part boundary");
          // The header block is searched from this CRLF, so a part with no headers ends it at once.
          at = eol;
          this.state = "head";
          break;
        }
        case "head": {
          const end = buf.indexOf(HEAD_END, at);
          if (end < 0) {
            if (buf.length - at > MAX_HEAD_BYTES) throw new MultipartError("Malformed part header: longer than 16 KB");
            this.hold(buf, at);
            return;
          }
          if (end - at > MAX_HEAD_BYTES) throw new MultipartError("Malformed part header: longer than 16 KB");
          const head = end === at ? "" : buf.toString("utf8", at + 2, end);
          at = end + 4;
          this.state = "body";
          yield { type: "part", head: parseHead(head) };
          break;
        }
        case "body": {
          const i = buf.indexOf(this.delimiter, at);
          if (i >= 0) {
            if (i > at) yield { type: "data", bytes: chunk.subarray(at, i) };
            yield { type: "end-part" };
            at = i + this.delimiter.length;
            this.state = "after-delimiter";
            break;
          }
          // Keep back what could be the start of a delimiter.
          const keep = Math.max(at, buf.length - this.delimiter.length + 1);
          if (keep > at) yield { type: "data", bytes: chunk.subarray(at, keep) };
          this.hold(buf, keep);
          return;
        }
        case "done":
          return;
      }
    }
  }

  private hold(buf: Buffer, from: number) {
    // A copy: the chunk it came from belongs to the caller once this call returns.
    this.held = from < buf.length ? Uint8Array.prototype.slice.call(buf, from) : new Uint8Array(0);
  }
}

function parseHead(head: string): PartHead {
  let disposition: string | null = null;
  let contentType = "";
  // Folded lines (obsolete, but legal in old clients) continue the header above them.
  const lines: string[] = [];
  for (const line of head.split("\r\n")) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && lines.length) lines[lines.length - 1] += " " + line.trim();
    else if (line !== "") lines.push(line);
  }
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new MultipartError("Malformed part header");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-disposition") disposition = value;
    else if (name === "content-type") contentType = value;
  }
  if (disposition === null) throw new MultipartError("Malformed part header: a part has no Content-Disposition");
  const params = parseParams(disposition);
  if (params.type !== "form-data") throw new MultipartError("Malformed part header: a part is not form-data");
  const name = params.get("name");
  if (name === undefined) throw new MultipartError("Malformed part header: a part has no name");
  // (filename* is RFC 8187's, percent-decoded once; a plain filename only has the WHATWG escapes)
  const extended = params.get("filename*");
  const plain = params.get("filename");
  const filename = extended !== undefined ? decodeExtValue(extended) : plain !== undefined ? decodeFormFilename(plain) : undefined;
  return { name, ...(filename !== undefined ? { filename } : {}), contentType };
}

/** `form-data; name="x"; filename="y"`: the type and its parameters (quoted strings unescaped). */
function parseParams(value: string): Map<string, string> & { type: string } {
  const params = new Map<string, string>() as Map<string, string> & { type: string };
  const semi = value.indexOf(";");
  params.type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  let i = semi < 0 ? value.length : semi + 1;
  while (i < value.length) {
    while (i < value.length && (value[i] === " " || value[i] === "\t" || value[i] === ";")) i++;
    const eq = value.indexOf("=", i);
    if (eq < 0) break;
    const key = value.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (value[i] === " " || value[i] === "\t") i++;
    let v = "";
    if (value[i] === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        // Only \" and \\ are escapes: browsers, fetch and undici send a filename's backslash as
        // is (a Windows path), where httpx (the Python SDK's) doubles it; both then read alike.
        if (value[i] === "\\" && (value[i + 1] === '"' || value[i + 1] === "\\")) i++;
        v += value[i++];
      }
      if (value[i] !== '"') throw new MultipartError("Malformed part header: an unterminated quoted string");
      i++;
    } else {
      const end = value.indexOf(";", i);
      v = value.slice(i, end < 0 ? value.length : end).trim();
      i = end < 0 ? value.length : end;
    }
    if (!params.has(key)) params.set(key, v);
  }
  return params;
}

/** RFC 8187's `charset'language'percent-encoded`; UTF-8 and ISO-8859-1 are what clients send. */
function decodeExtValue(v: string): string {
  const m = /^([^']*)'[^']*'(.*)$/.exec(v);
  if (!m) throw new MultipartError("Malformed part header: a malformed filename*");
  const bytes = Buffer.from(m[2]!.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
  return /^iso-8859-1$/i.test(m[1]!) ? bytes.toString("latin1") : bytes.toString("utf8");
}

/**
 * Browsers and fetch's FormData escape exactly three characters in a part's plain filename
 * (WHATWG multipart/form-data encoding): `"` as %22, CR as %0D and LF as %0A.
 */
export function decodeFormFilename(raw: string): string {
  return raw.replace(/%(22|0D|0A)/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
