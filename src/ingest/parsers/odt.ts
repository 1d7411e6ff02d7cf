import { SafeZip } from "../zip";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";
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
  walkXml(xml, {
    open(name, a) {
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
  return { format: "odt", blocks };
}
