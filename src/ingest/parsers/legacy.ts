import * as CFB from "cfb";
import WordExtractor from "word-extractor";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";

// Word 97-2003 (.doc) and PowerPoint 97-2003 (.ppt): binary formats in an OLE container.

/** .doc through word-extractor: the body's paragraphs, then headers, footnotes, endnotes, comments and text boxes. */
export async function parseDoc(input: ParseInput): Promise<ParsedDocument> {
  let doc;
  try {
    doc = await new WordExtractor().extract(Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength));
  } catch (e) {
    throw new ParseError(`the Word 97-2003 document is corrupt and could not be read (${String((e as Error)?.message ?? e).slice(0, 120)})`);
  }
  const blocks: Block[] = [];
  const add = (text: string, prefix = "") => {
    for (const p of text.split(/\r?\n|\r/)) {
      const t = p.replace(/[\t ]+/g, " ").trim();
      if (t) blocks.push({ text: prefix + t, loc: {} });
    }
  };
  add(doc.getHeaders({ includeFooters: true }), "Header: ");
  add(doc.getBody());
  add(doc.getFootnotes(), "Footnote: ");
  add(doc.getEndnotes(), "Endnote: ");
  add(doc.getAnnotations(), "Comment: ");
  add(doc.getTextboxes({ includeHeadersAndFooters: false }));
  return { format: "doc", blocks };
}

// PowerPoint binary records ([MS-PPT] 2.3): an 8-byte header, containers hold records.
const SLIDE = 0x03ee;
const NOTES = 0x03f0;
const SLIDE_LIST_WITH_TEXT = 0x0ff0;
const SLIDE_PERSIST_ATOM = 0x03f3;
const TEXT_CHARS_ATOM = 0x0fa0;
const TEXT_BYTES_ATOM = 0x0fa8;
const MAX_DEPTH = 32;
const MAX_RECORDS = 2_000_000;

/**
 * .ppt: the "PowerPoint Document" stream's text atoms, by slide. Placeholder text sits in the
 * slide list (one SlidePersistAtom per slide, in presentation order); text in other shapes
 * sits in the slide's own container; speaker notes in notes containers.
 */
export async function parsePpt(input: ParseInput): Promise<ParsedDocument> {
  let stream: Uint8Array;
  try {
    const cfb = CFB.read(input.bytes, { type: "array" });
    const entry = CFB.find(cfb, "PowerPoint Document");
    if (!entry?.content) throw new Error("no PowerPoint Document stream");
    stream = entry.content instanceof Uint8Array ? entry.content : new Uint8Array(entry.content as ArrayLike<number>);
  } catch (e) {
    throw new ParseError(`the PowerPoint 97-2003 file is corrupt and could not be read (${String((e as Error)?.message ?? e).slice(0, 120)})`);
  }
  const fromList: string[][] = [];
  const fromShapes: string[][] = [];
  const notes: string[][] = [];
  const dv = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  const utf16 = new TextDecoder("utf-16le");
  const latin1 = new TextDecoder("windows-1252");
  let records = 0;
  const walk = (from: number, to: number, depth: number, ctx: { list: number | null; slide: number | null; notes: number | null }) => {
    for (let at = from; at + 8 <= to; ) {
      if (++records > MAX_RECORDS) throw new ParseError("the PowerPoint file has more records than a presentation can hold; it may be crafted", "file_too_large");
      const verInstance = dv.getUint16(at, true);
      const type = dv.getUint16(at + 2, true);
      const len = dv.getUint32(at + 4, true);
      const body = at + 8;
      const end = body + len;
      if (end > to) break; // a truncated record ends the walk of this container
      if ((verInstance & 0x0f) === 0x0f && depth < MAX_DEPTH) {
        if (type === SLIDE_LIST_WITH_TEXT) walk(body, end, depth + 1, { ...ctx, list: verInstance >> 4 });
        else if (type === SLIDE) walk(body, end, depth + 1, { ...ctx, slide: fromShapes.push([]) - 1 });
        else if (type === NOTES) walk(body, end, depth + 1, { ...ctx, notes: notes.push([]) - 1 });
        else walk(body, end, depth + 1, ctx);
      } else if (type === SLIDE_PERSIST_ATOM && ctx.list === 0) fromList.push([]);
      else if (type === TEXT_CHARS_ATOM || type === TEXT_BYTES_ATOM) {
        const text = (type === TEXT_CHARS_ATOM ? utf16 : latin1).decode(stream.subarray(body, end)).replace(/[\r\v]/g, "\n").trim();
        if (text) {
          if (ctx.list === 0 && fromList.length) fromList.at(-1)!.push(text);
          else if (ctx.list === 2) {
            // the notes list's texts, when notes containers carry none of their own
          } else if (ctx.notes !== null) notes[ctx.notes]!.push(text);
          else if (ctx.slide !== null) fromShapes[ctx.slide]!.push(text);
        }
      }
      at = end;
    }
  };
  walk(0, stream.length, 0, { list: null, slide: null, notes: null });
  const blocks: Block[] = [];
  const count = Math.max(fromList.length, fromShapes.length);
  for (let i = 0; i < count; i++) {
    const seen = new Set<string>();
    const texts = [...(fromList[i] ?? []), ...(fromShapes[i] ?? [])].filter((t) => !/^[\d*\s]+$/.test(t) && !seen.has(t) && seen.add(t));
    // slide-number and date fields read as "*" or digits
    const slideNotes = (notes[i] ?? []).filter((t) => !/^[\d*\s]+$/.test(t));
    if (slideNotes.length) texts.push(`Speaker notes: ${slideNotes.join("\n")}`);
    texts.forEach((text, j) => blocks.push({ text, loc: { slide: i + 1 }, ...(j === 0 ? { boundary: true } : {}) }));
  }
  return { format: "ppt", blocks };
}
