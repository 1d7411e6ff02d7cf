/// <reference path="../../embed/assets.d.ts" />
// PDFium (Chrome's PDF engine) compiled to WebAssembly, for the parse processes. Chosen over
// pdf.js by measurement (docs/ARCHITECTURE.md, bench/README.md): it reads the corpus's PDFs
// two to three times as fast, opens every one pdf.js opens (and more of the truncated ones),
// and writes text with fewer words broken into letters.
import { init, type WrappedPdfiumModule } from "@embedpdf/pdfium";
import wasmPath from "@embedpdf/pdfium/pdfium.wasm" with { type: "file" };
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { Raster } from "../../ocr/raster";
import { StoredFileError } from "../types";

/** Why PDFium refused a document (its FPDF_ERR_* codes). */
export class PdfOpenError extends Error {
  constructor(
    readonly password: boolean,
    message: string,
    readonly security = false,
  ) {
    super(message);
  }
}

const ERR_PASSWORD = 4;
const ERR_SECURITY = 5;
const OPEN_ERRORS: Record<number, string> = {
  1: "unknown error",
  2: "file not found or could not be opened",
  3: "not a PDF or corrupted",
  5: "unsupported security scheme",
  6: "page not found or content error",
};

/** An outline entry: the page it opens (1-based), its titles from the top, and where on the page it opens. */
export interface OutlineEntry {
  page: number;
  path: string[];
  /** It opens the page at its top, or names no place on it (the page as a whole). */
  top: boolean;
  /** How far down the page it opens (0 at the top, 1 at the bottom), when it says. */
  down: number | null;
}

// A document's outline is read up to this many entries (fewer on long documents: entries
// times pages stays under OUTLINE_LOOKUPS), this deep, titles this long.
const OUTLINE_ENTRIES = 10_000;
const OUTLINE_LOOKUPS = 20_000_000;
const OUTLINE_DEPTH = 12;
const OUTLINE_TITLE_CHARS = 200;
// PDFACTION_GOTO
const ACTION_GOTO = 1;
// An entry opening in the top sixth of its page starts the page.
const TOP_SHARE = 1 / 6;

// FPDF_PAGEOBJ_TEXT (the others: paths, images, shadings, forms)
const PAGEOBJ_TEXT = 1;

// FPDF_ANNOT: annotations drawn as a viewer shows them (stamps and filled forms carry text).
const RENDER_FLAGS = 0x01;

// The module's types leave out Emscripten's memory view.
type Runtime = WrappedPdfiumModule["pdfium"] & { HEAPU8: Uint8Array };
const runtime = (lib: WrappedPdfiumModule) => lib.pdfium as Runtime;

let compiled: Promise<WebAssembly.Module> | null = null;

/**
 * A PDFium of its own for each document: a new WebAssembly instance, whose memory holds all
 * the engine read and allocated for the document and goes with it, so a process that reads
 * one document after another carries nothing of one into the next (WebAssembly code reaches
 * no memory but its instance's). The machine code is compiled once a process and shared by
 * its instances, so from the second document on the engine runs at its optimised tier at once.
 */
async function newEngine(): Promise<WrappedPdfiumModule> {
  compiled ??= Bun.file(wasmPath)
    .arrayBuffer()
    .then((bytes) => WebAssembly.compile(bytes));
  const module = await compiled;
  // Emscripten's loader waits for the callback forever when instantiation fails: the race ends it
  let failed!: (e: unknown) => void;
  const failure = new Promise<never>((_, reject) => (failed = reject));
  const instantiateWasm = (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) => {
    // (the catch also takes what the loader's own start-up throws inside `done`)
    WebAssembly.instantiate(module, imports)
      .then((instance) => done(instance, module))
      .catch(failed);
    return {};
  };
  const lib = await Promise.race([init({ instantiateWasm } as Parameters<typeof init>[0]), failure]);
  lib.PDFiumExt_Init();
  return lib;
}

/**
 * One open document. PDFium reads it as it needs its parts, through a callback: from the file
 * when given a path (the parse process never holds the whole file), else from the bytes, so
 * a large PDF is never copied into the engine's memory as well.
 */
export class PdfDocument {
  private closed = false;

  private constructor(
    private readonly lib: WrappedPdfiumModule,
    private readonly doc: number,
    private readonly access: number,
    private readonly reader: number,
    private readonly fd: number | null,
    readonly pages: number,
    /** The first read of the file that failed (a disk's fault, not the document's), if any. */
    readonly readError: () => string | null,
  ) {}

  static async open(source: Uint8Array | string): Promise<PdfDocument> {
    const lib = await newEngine();
    const m = runtime(lib);
    let fd: number | null = null;
    try {
      if (typeof source === "string") fd = openSync(source, "r");
    } catch (e) {
      throw new StoredFileError(e);
    }
    let readError: string | null = null;
    let reader = 0;
    let access = 0;
    try {
      const length = fd === null ? (source as Uint8Array).length : fstatSync(fd).size;
      // FPDF_FILEACCESS's length is 32 bits on wasm32
      if (length > 0xffffffff) throw new PdfOpenError(false, "larger than 4 GiB");
      reader = m.addFunction((_param: number, position: number, into: number, size: number) => {
        const from = position >>> 0;
        const n = size >>> 0;
        if (from + n > length) return 0;
        if (fd === null) {
          m.HEAPU8.set((source as Uint8Array).subarray(from, from + n), into);
          return 1;
        }
        try {
          for (let done = 0; done < n; ) {
            const got = readSync(fd, m.HEAPU8, into + done, n - done, from + done);
            if (got <= 0) throw new Error(`the file ended at ${from + done} of ${length} bytes`);
            done += got;
          }
          return 1;
        } catch (e) {
          // PDFium takes a failed read for a damaged page and goes on: the parse asks afterwards
          readError ??= String((e as Error)?.message ?? e);
          return 0;
        }
      }, "iiiii");
      // FPDF_FILEACCESS on wasm32: m_FileLen, m_GetBlock, m_Param, 4 bytes each
      access = m.wasmExports.malloc(12);
      m.setValue(access, length, "i32");
      m.setValue(access + 4, reader, "i32");
      m.setValue(access + 8, 0, "i32");
      const doc = lib.FPDF_LoadCustomDocument(access, "");
      if (!doc) {
        if (readError) throw new StoredFileError(readError);
        const code = lib.FPDF_GetLastError();
        throw new PdfOpenError(code === ERR_PASSWORD, OPEN_ERRORS[code] ?? `error ${code}`, code === ERR_SECURITY);
      }
      return new PdfDocument(lib, doc, access, reader, fd, lib.FPDF_GetPageCount(doc), () => readError);
    } catch (e) {
      if (access) m.wasmExports.free(access);
      if (reader) m.removeFunction(reader);
      if (fd !== null) closeSync(fd);
      throw e;
    }
  }

  /**
   * Page `n`'s text (1-based), lines ending in "\r\n"; null when PDFium cannot load the page.
   * Text placed wholly outside the page's visible box (a viewer never shows it) is left out.
   */
  text(n: number): string | null {
    return this.withPage(n, (page) => this.pageText(page));
  }

  private pageText(page: number): string {
    const { lib } = this;
    const m = runtime(lib);
    let textPage = 0;
    const scratch = m.wasmExports.malloc(32);
    try {
      textPage = lib.FPDFText_LoadPage(page);
      if (!textPage) return "";
      const count = lib.FPDFText_CountChars(textPage);
      if (count <= 0) return "";
      const box = lib.FPDF_GetPageBoundingBox(page, scratch) ? readRect(m, scratch, "float") : null;
      const hidden = box !== null && this.textOutside(textPage, box, scratch);
      const chars = hidden ? lib.FPDFText_GetBoundedText(textPage, box.left, box.top, box.right, box.bottom, 0, 0) : count + 1;
      if (chars <= 0) return "";
      const buf = m.wasmExports.malloc((chars + 1) * 2);
      try {
        if (hidden) {
          // the call first: PDFium may grow its memory, which replaces the view
          const n = lib.FPDFText_GetBoundedText(textPage, box.left, box.top, box.right, box.bottom, buf, chars);
          return decodeUtf16(m.HEAPU8, buf, n);
        }
        const written = lib.FPDFText_GetText(textPage, 0, count, buf);
        return written > 0 ? decodeUtf16(m.HEAPU8, buf, written - 1) : "";
      } finally {
        m.wasmExports.free(buf);
      }
    } finally {
      m.wasmExports.free(scratch);
      if (textPage) lib.FPDFText_ClosePage(textPage);
    }
  }

  /** `read` of page `n` (1-based), closed after; null when PDFium cannot load the page. */
  private withPage<T>(n: number, read: (page: number) => T | null): T | null {
    this.open();
    const page = this.lib.FPDF_LoadPage(this.doc, n - 1);
    if (!page) return null;
    try {
      return read(page);
    } finally {
      this.lib.FPDF_ClosePage(page);
    }
  }

  /** Whether a run of the page's text lies wholly outside `box` (about 3% of a page's reading time). */
  private textOutside(textPage: number, box: Rect, scratch: number): boolean {
    const { lib } = this;
    const m = runtime(lib);
    const runs = lib.FPDFText_CountRects(textPage, 0, -1);
    for (let i = 0; i < runs; i++) {
      if (!lib.FPDFText_GetRect(textPage, i, scratch, scratch + 8, scratch + 16, scratch + 24)) continue;
      const r = readRect(m, scratch, "double");
      if (r.right <= box.left || r.left >= box.right || r.top <= box.bottom || r.bottom >= box.top) return true;
    }
    return false;
  }

  /**
   * Whether page `n` draws nothing but text objects, fewer than `glyphs` characters in all, and
   * has no annotations (a stamp or a filled form field draws its own text): OCR could read no
   * more there than its text layer holds (an empty page, a lone page number).
   */
  drawsLittleText(n: number, glyphs: number): boolean {
    return (
      this.withPage(n, (page) => {
        const { lib } = this;
        if (lib.FPDFPage_GetAnnotCount(page) > 0) return false;
        const objects = lib.FPDFPage_CountObjects(page);
        for (let i = 0; i < objects; i++) if (lib.FPDFPageObj_GetType(lib.FPDFPage_GetObject(page, i)) !== PAGEOBJ_TEXT) return false;
        const textPage = lib.FPDFText_LoadPage(page);
        if (!textPage) return false;
        try {
          return lib.FPDFText_CountChars(textPage) < glyphs;
        } finally {
          lib.FPDFText_ClosePage(textPage);
        }
      }) ?? false
    );
  }

  /** Page `n` drawn on white at `scale` times 72 dpi, shrunk to stay under `maxPixels`; null when it cannot be drawn. */
  render(n: number, scale: number, maxPixels: number): Raster | null {
    return this.withPage(n, (page) => this.drawPage(page, scale, maxPixels));
  }

  private drawPage(page: number, scale: number, maxPixels: number): Raster | null {
    const { lib } = this;
    const m = runtime(lib);
    let bitmap = 0;
    try {
      const w = Math.max(1, lib.FPDF_GetPageWidthF(page));
      const h = Math.max(1, lib.FPDF_GetPageHeightF(page));
      const s = Math.min(scale, Math.sqrt(maxPixels / (w * h)));
      const width = Math.max(1, Math.floor(w * s));
      const height = Math.max(1, Math.floor(h * s));
      // 4 bytes a pixel (BGRx), no alpha: the page is drawn onto the white fill
      bitmap = lib.FPDFBitmap_Create(width, height, 0);
      if (!bitmap) return null;
      lib.FPDFBitmap_FillRect(bitmap, 0, 0, width, height, 0xffffffff);
      lib.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, RENDER_FLAGS);
      const stride = lib.FPDFBitmap_GetStride(bitmap);
      const src = m.HEAPU8.subarray(lib.FPDFBitmap_GetBuffer(bitmap), lib.FPDFBitmap_GetBuffer(bitmap) + stride * height);
      const data = new Uint8Array(width * height * 3);
      for (let y = 0, o = 0; y < height; y++) {
        for (let x = 0, i = y * stride; x < width; x++, i += 4, o += 3) {
          data[o] = src[i + 2]!;
          data[o + 1] = src[i + 1]!;
          data[o + 2] = src[i]!;
        }
      }
      return { width, height, data };
    } finally {
      if (bitmap) lib.FPDFBitmap_Destroy(bitmap);
    }
  }

  /**
   * The document's outline (bookmarks) as the pages its entries open, in outline order, each
   * with its path of titles from the top. Bounded in entries and depth, and an entry seen
   * twice ends its branch: a crafted outline may loop.
   */
  outline(): OutlineEntry[] {
    this.open();
    // read once: a process reading several ranges of the document keeps it open between them
    return (this.entries ??= this.readOutline());
  }

  private entries: OutlineEntry[] | undefined;

  private readOutline(): OutlineEntry[] {
    const { lib } = this;
    const m = runtime(lib);
    const out: OutlineEntry[] = [];
    const seen = new Set<number>();
    // An entry whose destination is not a page makes PDFium search the whole page tree for it:
    // the entries read shrink as the pages grow (10,000 such entries over 20,000 pages took 19 s).
    const most = Math.min(OUTLINE_ENTRIES, Math.max(100, Math.floor(OUTLINE_LOOKUPS / Math.max(1, this.pages))));
    const scratch = m.wasmExports.malloc(32);
    const walk = (parent: number, path: string[]) => {
      if (path.length >= OUTLINE_DEPTH) return;
      for (let b = lib.FPDFBookmark_GetFirstChild(this.doc, parent); b && !seen.has(b) && seen.size < most; b = lib.FPDFBookmark_GetNextSibling(this.doc, b)) {
        seen.add(b);
        const bytes = lib.FPDFBookmark_GetTitle(b, 0, 0);
        let title = "";
        if (bytes > 2) {
          const buf = m.wasmExports.malloc(bytes);
          try {
            const n = lib.FPDFBookmark_GetTitle(b, buf, bytes);
            title = decodeUtf16(m.HEAPU8, buf, Math.max(0, n / 2 - 1))
              .replace(/\s+/g, " ")
              .trim()
              .slice(0, OUTLINE_TITLE_CHARS)
              // the cut may fall inside a surrogate pair
              .toWellFormed();
          } finally {
            m.wasmExports.free(buf);
          }
        }
        const here = title ? [...path, title] : path;
        // A destination, or a GoTo within this document (the spec allows one or the other): PDFium
        // also answers with a GoToR's destination, whose page is another file's.
        const action = lib.FPDFBookmark_GetAction(b);
        const dest = action && lib.FPDFAction_GetType(action) !== ACTION_GOTO ? 0 : lib.FPDFBookmark_GetDest(this.doc, b);
        const index = dest ? lib.FPDFDest_GetDestPageIndex(this.doc, dest) : -1;
        if (index >= 0 && index < this.pages && here.length) {
          const down = this.placeDown(dest, index, scratch);
          out.push({ page: index + 1, path: here, top: down === null || down <= TOP_SHARE, down });
        }
        walk(b, here);
      }
    };
    try {
      walk(0, []);
    } finally {
      m.wasmExports.free(scratch);
    }
    return out;
  }

  /** How far down its page a destination opens (0 top, 1 bottom); null when it names no place. */
  private placeDown(dest: number, index: number, scratch: number): number | null {
    const { lib } = this;
    const m = runtime(lib);
    // hasX, hasY, hasZoom (4 bytes each), then x, y, zoom as floats
    if (!lib.FPDFDest_GetLocationInPage(dest, scratch, scratch + 4, scratch + 8, scratch + 12, scratch + 16, scratch + 20)) return null;
    if (!m.getValue(scratch + 4, "i32")) return null;
    const y = m.getValue(scratch + 16, "float") as number;
    if (!lib.FPDF_GetPageSizeByIndexF(this.doc, index, scratch + 24)) return null;
    const height = m.getValue(scratch + 28, "float") as number;
    return height > 0 ? Math.min(1, Math.max(0, 1 - y / height)) : null;
  }

  /** A closed document's handle may already name another one. */
  private open() {
    if (this.closed) throw new Error("the PDF document is closed");
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    const m = runtime(this.lib);
    this.lib.FPDF_CloseDocument(this.doc);
    m.wasmExports.free(this.access);
    m.removeFunction(this.reader);
    if (this.fd !== null) closeSync(this.fd);
  }
}

interface Rect {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** Four floats (FS_RECTF) or doubles (FPDFText_GetRect's out-parameters), left, top, right, bottom: y grows upwards. */
function readRect(m: Runtime, at: number, type: "float" | "double"): Rect {
  const size = type === "float" ? 4 : 8;
  const [left, top, right, bottom] = [0, 1, 2, 3].map((i) => m.getValue(at + i * size, type) as number) as [number, number, number, number];
  return { left, top, right, bottom };
}

const utf16 = new TextDecoder("utf-16le");

function decodeUtf16(heap: Uint8Array, at: number, chars: number): string {
  return utf16.decode(heap.subarray(at, at + chars * 2));
}
