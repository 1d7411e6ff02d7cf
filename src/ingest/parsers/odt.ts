import { SafeZip } from "../zip";
import { ParseError, type Block, type Location, type ParseInput, type ParsedDocument } from "../types";
import { insertAt } from "./html";
import { pictureReader } from "./pictures";
import { HeadingPath } from "./headings";
import { walkXml } from "./xml";

/** OpenDocument text: headings (with their outline level) give the heading path. */
export async function parseOdt(input: ParseInput): Promise<ParsedDocument> {
  const zip = new SafeZip(input.bytes, input.limits);
  const xml = zip.text("content.xml");
  if (xml === null) throw new ParseError("the file is not a valid OpenDocument text (it has no content.xml)");
  const blocks: Block[] = [];
  const headings = new HeadingPath();
  let para: string | null = null;
  let level = 0;
  let depth = 0; // nesting of paragraphs inside paragraphs (notes, frames)
  let row: string[] | null = null;
  let cell: string[] | null = null;
  const images: { href: string; at: number; loc: Location }[] = [];
  walkXml(xml, {
    open(name, a) {
      // A picture's text goes where the picture stands, under the current heading.
      if (name === "draw:image" && a["xlink:href"] && !/^[a-z]+:/i.test(a["xlink:href"])) images.push({ href: a["xlink:href"], at: blocks.length, loc: headings.loc() });
      if (name === "text:h" || name === "text:p") {
        if (depth++ === 0) {
          para = "";
          level = name === "text:h" ? Number(a["text:outline-level"] ?? 1) || 1 : 0;
        }
      } else if (para !== null && (name === "text:line-break" || name === "text:tab" || name === "text:s")) para += name === "text:line-break" ? "\n" : " ";
      else if (name === "table:table-row") row = [];
      else if (name === "table:table-cell") cell = [];
      else if (name === "text:note") para !== null && (para += " ");
    },
    text(t) {
      if (para !== null) para += t;
    },
    close(name) {
      if (name === "text:h" || name === "text:p") {
        if (--depth > 0 || para === null) return;
        const t = para.replace(/[ \t]+/g, " ").trim();
        para = null;
        if (!t) return;
        if (cell) return void cell.push(t);
        if (level) headings.enter(level, t);
        blocks.push({ text: t, loc: headings.loc(), ...(level ? { boundary: true } : {}) });
      } else if (name === "table:table-cell" && cell && row) {
        row.push(cell.join(" "));
        cell = null;
      } else if (name === "table:table-row" && row) {
        if (row.some(Boolean)) blocks.push({ text: row.join(" | "), loc: headings.loc() });
        row = null;
      }
    },
  });
  const read = pictureReader(input);
  const found: { at: number; blocks: Block[] }[] = [];
  for (const img of images) {
    const bytes = zip.read(img.href.replace(/^\.\//, ""));
    if (bytes) found.push({ at: img.at, blocks: await read([{ bytes, loc: img.loc }]) });
  }
  return { format: "odt", blocks: insertAt(blocks, found) };
}

/**
 * OpenDocument presentation: each draw:page is a slide, its text boxes and tables in order,
 * its speaker notes after them, its pictures read by OCR.
 */
export async function parseOdp(input: ParseInput): Promise<ParsedDocument> {
  const zip = new SafeZip(input.bytes, input.limits);
  const xml = zip.text("content.xml");
  if (xml === null) throw new ParseError("the file is not a valid OpenDocument presentation (it has no content.xml)");
  const slides: { texts: string[]; notes: string[]; images: string[] }[] = [];
  let slide: (typeof slides)[number] | null = null;
  let inNotes = 0;
  let para: string | null = null;
  let depth = 0;
  walkXml(xml, {
    open(name, a) {
      if (name === "draw:page") slides.push((slide = { texts: [], notes: [], images: [] }));
      else if (name === "presentation:notes") inNotes++;
      else if (name === "draw:image" && slide && !inNotes && a["xlink:href"] && !/^[a-z]+:/i.test(a["xlink:href"])) slide.images.push(a["xlink:href"]);
      else if (name === "text:p" || name === "text:h") {
        if (depth++ === 0) para = "";
      } else if (para !== null && (name === "text:line-break" || name === "text:tab" || name === "text:s")) para += name === "text:line-break" ? "\n" : " ";
    },
    text(t) {
      if (para !== null) para += t;
    },
    close(name) {
      if (name === "presentation:notes") inNotes--;
      else if (name === "text:p" || name === "text:h") {
        if (--depth > 0 || para === null) return;
        const t = para.replace(/[ \t]+/g, " ").trim();
        para = null;
        if (t && slide) (inNotes ? slide.notes : slide.texts).push(t);
      }
    },
  });
  const read = pictureReader(input);
  const blocks: Block[] = [];
  for (let i = 0; i < slides.length; i++) {
    const s = slides[i]!;
    const loc = { slide: i + 1 };
    input.progress(`parsing slide ${i + 1} of ${slides.length}`);
    const pictures = await read(s.images.flatMap((href) => {
      const bytes = zip.read(href.replace(/^\.\//, ""));
      return bytes ? [{ bytes, loc }] : [];
    }));
    const texts = [...s.texts, ...pictures.map((b) => b.text), ...(s.notes.length ? [`Speaker notes: ${s.notes.join("\n")}`] : [])];
    texts.forEach((text, j) => blocks.push({ text, loc, ...(j === 0 ? { boundary: true } : {}) }));
  }
  return { format: "odp", blocks };
}
