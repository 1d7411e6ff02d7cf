import { inflateRawSync } from "node:zlib";
import { megabytes, ParseError, type ParseLimits } from "./types";

// The largest buffer zlib may be asked for; every limit here is far below it.
const MAX_BUFFER = 2 ** 31 - 1;

/**
 * Reads chosen entries of a zip (DOCX, PPTX, XLSX, EPUB are zips) under limits on entry
 * count, total expanded size and per-entry ratio. Sizes are enforced on the bytes actually
 * inflated, not on what the archive claims, so a lying header cannot slip a bomb through.
 */
export class SafeZip {
  private readonly entries = new Map<string, { data: Uint8Array; compression: number; size: number }>();
  private expanded = 0;

  constructor(
    bytes: Uint8Array,
    private readonly limits: ParseLimits,
  ) {
    try {
      this.index(bytes);
    } catch (e) {
      if (e instanceof ParseError) throw e;
      throw new ParseError("the file is not a valid zip archive (it is truncated or corrupt)");
    }
  }

  /** Walks the central directory to find each entry's compressed bytes. */
  private index(b: Uint8Array) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let eocd = -1;
    for (let i = b.length - 22; i >= Math.max(0, b.length - 65557); i--) {
      if (dv.getUint32(i, true) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new ParseError("the file is not a valid zip archive (no central directory)");
    const total = dv.getUint16(eocd + 10, true);
    if (total > this.limits.maxZipEntries) throw new ParseError(`the archive has ${total} entries, past the limit of ${this.limits.maxZipEntries}`, "file_too_large");
    let p = dv.getUint32(eocd + 16, true);
    const dec = new TextDecoder();
    for (let n = 0; n < total; n++) {
      if (dv.getUint32(p, true) !== 0x02014b50) throw new ParseError("the zip archive's directory is corrupt");
      const flags = dv.getUint16(p + 8, true);
      const method = dv.getUint16(p + 10, true);
      const csize = dv.getUint32(p + 20, true);
      const usize = dv.getUint32(p + 24, true);
      const nameLen = dv.getUint16(p + 28, true);
      const extraLen = dv.getUint16(p + 30, true);
      const commentLen = dv.getUint16(p + 32, true);
      const local = dv.getUint32(p + 42, true);
      const name = dec.decode(b.subarray(p + 46, p + 46 + nameLen));
      if (flags & 1) throw new ParseError("the file is password-protected");
      const lNameLen = dv.getUint16(local + 26, true);
      const lExtraLen = dv.getUint16(local + 28, true);
      const start = local + 30 + lNameLen + lExtraLen;
      this.entries.set(name, { data: b.subarray(start, start + csize), compression: method, size: usize });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string) {
    return this.entries.has(name);
  }

  /** The entry's size as its directory states it (it may lie; reading checks the real one). */
  size(name: string): number {
    return this.entries.get(name)?.size ?? 0;
  }

  /** The entry's bytes, or null when absent. Throws ParseError past a limit, or past `max` bytes for this entry. */
  read(name: string, max = Infinity): Uint8Array | null {
    const e = this.entries.get(name);
    if (!e) return null;
    const overMax = () => new ParseError(`"${name}" is larger than the ${megabytes(max)} this server reads for such a part`, "file_too_large");
    if (e.compression === 0) {
      if (e.data.length > max) throw overMax();
      return this.account(e.data.slice(), e.data.length);
    }
    if (e.compression !== 8) throw new ParseError(`the archive uses an unsupported compression method (${e.compression})`);
    // (an empty entry some writers store deflated with no bytes at all; zlib would call it truncated)
    if (e.data.length === 0) return this.account(new Uint8Array(0), 0);
    // zlib stops inflating at the first byte past the tightest limit, so a bomb costs no more
    // than the limit; it runs natively, several times faster than an inflate in JavaScript.
    const limits: [number, () => ParseError][] = [
      [max, overMax],
      [Math.max(1 << 20, e.data.length * this.limits.maxCompressionRatio), () => new ParseError(`the archive looks like a zip bomb: "${name}" expands more than ${this.limits.maxCompressionRatio} times`, "file_too_large")],
      [this.limits.maxExpandedBytes - this.expanded, () => this.pastExpanded()],
    ];
    const [cap, past] = limits.reduce((a, b) => (b[0] < a[0] ? b : a));
    let out: Uint8Array;
    try {
      out = inflateRawSync(e.data, { maxOutputLength: Math.max(1, Math.min(cap, MAX_BUFFER)) });
    } catch (err) {
      if ((err as { code?: string })?.code === "ERR_BUFFER_TOO_LARGE") throw past();
      throw new ParseError("the archive is corrupt (an entry could not be decompressed)");
    }
    if (out.length > cap) throw past();
    return this.account(out, out.length);
  }

  /**
   * Inflates every entry once, keeping nothing, so a library that reads the zip itself
   * (mammoth, SheetJS) is only handed archives that stay within the limits. With
   * `maxXmlPart`, an XML part that expands past it is refused too (a DOM of it would not fit).
   */
  checkAll(maxXmlPart?: number) {
    for (const name of this.entries.keys()) {
      const size = this.read(name)!.length;
      if (maxXmlPart !== undefined && size > maxXmlPart && /\.(xml|rels)$/i.test(name))
        throw new ParseError(`"${name}" expands to ${megabytes(size)} of XML, past the ${megabytes(maxXmlPart)} this server reads into memory; split the document`, "file_too_large");
    }
  }

  text(name: string, max?: number): string | null {
    const b = this.read(name, max);
    return b === null ? null : new TextDecoder().decode(b);
  }

  private account(b: Uint8Array, size: number) {
    this.expanded += size;
    if (this.expanded > this.limits.maxExpandedBytes) throw this.pastExpanded();
    return b;
  }

  private pastExpanded() {
    return new ParseError(`the archive expands past the ${Math.round(this.limits.maxExpandedBytes / 1024 ** 2)} MB limit`, "file_too_large");
  }
}
