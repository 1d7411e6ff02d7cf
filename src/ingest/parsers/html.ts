import { Parser } from "htmlparser2";
import { expandEntities, withoutDoctype } from "./xml";
import { decodeText } from "../encoding";
import { HeadingPath } from "./headings";
import { pictureReader } from "./pictures";
import type { Block, Location, ParseInput, ParsedDocument } from "../types";

const SKIP = new Set(["script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "select", "button", "ix:header"]);
const HEADING = /^h([1-6])$/;
// Elements that end a run of text; inline elements (a, b, span, ...) do not.
const BLOCK = new Set([
  "p", "div", "li", "dt", "dd", "pre", "blockquote", "section", "article", "aside", "header", "footer", "nav",
  "main", "figure", "figcaption", "caption", "address", "ul", "ol", "dl", "table", "form", "fieldset", "hr", "details", "summary",
]);

/**
 * Turns HTML into blocks: one per paragraph-like element, one per table row (cells joined
 * by " | ", the table's header row repeated in every chunk), headings tracked as a path.
 * `extra` is merged into every location (the chapter of an EPUB document).
 */
export function htmlToBlocks(html: string, extra: Location = {}): { blocks: Block[]; title: string | null; images: ImageRef[] } {
  const blocks: Block[] = [];
  const images: ImageRef[] = [];
  const headings = new HeadingPath();
  let text = "";
  let skipDepth = 0;
  let headingLevel = 0;
  let inTitle = false;
  let title = "";
  let pre = 0;
  // Table state: the current row's cells, whether it had <th>, the header of the table.
  const tables: { header: string | null; rows: { cells: string[]; th: boolean; loc: Location }[] }[] = [];
  let cells: string[] | null = null;
  let rowHasTh = false;
  let pendingBoundary = false;

  const loc = (): Location => ({ ...extra, ...headings.loc() });
  const flush = () => {
    // (trimEnd, not /\s+$/: that tries every run of spaces inside the text to its end)
    const t = pre ? text.replace(/^\n+/, "").trimEnd() : text.replace(/\s+/g, " ").trim();
    text = "";
    if (!t) return;
    if (cells) {
      cells[cells.length - 1] = `${cells.at(-1) ?? ""} ${t}`.trim();
      return;
    }
    blocks.push({ text: t, loc: loc(), ...(pendingBoundary ? { boundary: true } : {}) });
    pendingBoundary = false;
  };

  let declared = new Map<string, string>();
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        // <title> sits in the skipped <head>: read it, but nothing else there.
        if (name === "title") {
          inTitle = true;
          return;
        }
        // Inside a skipped element every tag is counted, so its end is found whatever it holds.
        if (skipDepth || SKIP.has(name) || "hidden" in attrs || /display\s*:\s*none/i.test(attrs.style ?? "")) {
          skipDepth++;
          return;
        }
        const h = HEADING.exec(name);
        if (h) {
          flush();
          headingLevel = Number(h[1]);
          return;
        }
        if (name === "br") {
          text += "\n";
          return;
        }
        if (name === "img") {
          flush();
          // Text already read from the picture (a DOCX picture, read while mammoth converts).
          const read = attrs["data-ragd-text"];
          if (read) {
            for (const t of read.split(/\n{2,}/)) if (t.trim()) blocks.push({ text: t.trim(), loc: loc() });
          } else if (attrs.src) images.push({ src: attrs.src, at: blocks.length, loc: loc() });
          return;
        }
        if (name === "pre") pre++;
        if (name === "table") {
          flush();
          tables.push({ header: null, rows: [] });
        } else if (name === "tr") {
          flush();
          cells = [];
          rowHasTh = false;
        } else if ((name === "td" || name === "th") && cells) {
          flush();
          cells.push("");
          if (name === "th") rowHasTh = true;
        } else if (BLOCK.has(name)) flush();
      },
      ontext(data) {
        if (inTitle) {
          title += data;
          return;
        }
        if (skipDepth) return;
        text += expandEntities(data, declared);
      },
      onclosetag(name) {
        if (name === "title") {
          inTitle = false;
          return;
        }
        if (skipDepth) {
          skipDepth--;
          return;
        }
        const h = HEADING.exec(name);
        if (h && headingLevel) {
          const t = text.replace(/\s+/g, " ").trim();
          text = "";
          headingLevel = Number(h[1]);
          if (t) {
            headings.enter(headingLevel, t);
            pendingBoundary = true;
            blocks.push({ text: t, loc: loc(), boundary: true });
            pendingBoundary = false;
          }
          headingLevel = 0;
          return;
        }
        if (name === "pre") {
          flush();
          pre = Math.max(0, pre - 1);
          return;
        }
        if ((name === "td" || name === "th") && cells) {
          flush();
          return;
        }
        if (name === "tr" && cells) {
          flush();
          const row = cells.map((c) => c.replace(/\s+/g, " ").trim());
          cells = null;
          const table = tables.at(-1);
          if (row.some(Boolean)) {
            if (table) table.rows.push({ cells: row, th: rowHasTh, loc: loc() });
            else blocks.push({ text: row.filter(Boolean).join(" | "), loc: loc() });
          }
          return;
        }
        if (name === "table") {
          flush();
          const table = tables.pop();
          if (table) emitTable(table.rows, blocks);
          return;
        }
        if (BLOCK.has(name)) flush();
      },
    },
    { decodeEntities: true, lowerCaseTags: true, recognizeSelfClosing: true },
  );
  const { text: source, entities } = withoutDoctype(html);
  declared = entities;
  parser.write(source);
  parser.end();
  flush();
  return { blocks, title: title.replace(/\s+/g, " ").trim() || null, images };
}

/** A picture the HTML shows: its src, and where its text belongs among the blocks. */
export interface ImageRef {
  src: string;
  /** The index in blocks its text is inserted at. */
  at: number;
  loc: Location;
}

/** Puts the text read from pictures among the blocks, each where its picture was. */
export function insertAt(blocks: Block[], found: { at: number; blocks: Block[] }[]): Block[] {
  const out = [...blocks];
  for (const f of [...found].sort((a, b) => b.at - a.at)) out.splice(f.at, 0, ...f.blocks);
  return out;
}

/** The bytes of a `data:` URI image; null for any other src. */
export function dataUri(src: string): Uint8Array | null {
  const m = /^data:image\/[\w.+-]+;base64,([\s\S]*)$/i.exec(src.trim());
  if (!m) return null;
  try {
    return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
  } catch {
    return null;
  }
}

/**
 * A table's first row is its header when marked with <th>, or when it looks like one:
 * every cell filled with a short label over at least two data rows (Word tables have no
 * <th>). Layout tables keep their rows as plain lines.
 */
function emitTable(rows: { cells: string[]; th: boolean; loc: Location }[], blocks: Block[]) {
  const first = rows[0];
  if (!first) return;
  const looksLikeHeader =
    first.th || (rows.length >= 3 && first.cells.length >= 2 && first.cells.every((c) => c && c.length <= 40 && !/^[\d.,%$€£-]+$/.test(c)));
  if (!looksLikeHeader || rows.length === 1) {
    for (const r of rows) blocks.push({ text: r.cells.filter(Boolean).join(" | "), loc: r.loc });
    return;
  }
  const header = first.cells.join(" | ");
  for (const r of rows.slice(1)) blocks.push({ text: r.cells.join(" | "), loc: r.loc, header });
}

/** The charset an HTML document declares in its first bytes, if any. */
function declaredCharset(b: Uint8Array): string | null {
  const head = new TextDecoder("latin1").decode(b.subarray(0, 2048));
  const m = /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(head);
  return m ? m[1]!.toLowerCase() : null;
}

export function decodeHtml(bytes: Uint8Array): string {
  const cs = declaredCharset(bytes);
  // A BOM or valid UTF-8 wins; a declared legacy charset is used when the bytes are not UTF-8.
  if (cs && !/^utf-?8$/.test(cs) && !(bytes[0] === 0xef || bytes[0] === 0xff || bytes[0] === 0xfe)) {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      try {
        return new TextDecoder(cs).decode(bytes);
      } catch {}
    }
  }
  return decodeText(bytes);
}

export async function parseHtml(input: ParseInput): Promise<ParsedDocument> {
  const { blocks, images } = htmlToBlocks(decodeHtml(input.bytes));
  // Pictures inside the page (data: URIs) are read; linked ones are elsewhere and are not fetched.
  const read = pictureReader(input);
  const found: { at: number; blocks: Block[] }[] = [];
  for (const img of images) {
    const bytes = dataUri(img.src);
    if (bytes) found.push({ at: img.at, blocks: await read([{ bytes, loc: img.loc }]) });
  }
  return { format: "html", blocks: insertAt(blocks, found) };
}
