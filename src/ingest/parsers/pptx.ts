import { SafeZip } from "../zip";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";
import { embeddedIn } from "./ooxml";
import { pictureReader } from "./pictures";
import { dirOf, readRels, walkXml } from "./xml";

// Placeholders whose text is chrome, not content.
const NOISE_PLACEHOLDERS = new Set(["sldNum", "dt", "sldImg"]);

/** Paragraphs of a slide or notes part; table rows come out as "a | b | c". */
function shapeTexts(xml: string): string[] {
  const out: string[] = [];
  let para: string | null = null;
  let row: string[] | null = null;
  let cell: string[] | null = null;
  let skipShape = 0;
  let shapeDepth = 0;
  walkXml(xml, {
    open(name, a) {
      if (name === "p:sp") shapeDepth++;
      else if (name === "p:ph" && NOISE_PLACEHOLDERS.has(a.type ?? "") && shapeDepth) skipShape = shapeDepth;
      else if (name === "a:tr") row = [];
      else if (name === "a:tc") cell = [];
      else if (name === "a:p") para = "";
      else if (name === "a:br" && para !== null) para += "\n";
    },
    text(t) {
      if (para !== null && !skipShape) para += t;
    },
    close(name) {
      if (name === "a:t" || name === "a:fld") return;
      if (name === "a:p" && para !== null) {
        const t = para.replace(/[ \t]+/g, " ").trim();
        para = null;
        if (!t) return;
        if (cell) cell.push(t);
        else out.push(t);
      } else if (name === "a:tc" && cell && row) {
        row.push(cell.join(" "));
        cell = null;
      } else if (name === "a:tr" && row) {
        if (row.some(Boolean)) out.push(row.join(" | "));
        row = null;
      } else if (name === "p:sp") {
        if (skipShape === shapeDepth) skipShape = 0;
        shapeDepth--;
      }
    },
  });
  return out;
}

/** PPTX: slides in presentation order, each with its speaker notes. */
export async function parsePptx(input: ParseInput): Promise<ParsedDocument> {
  const zip = new SafeZip(input.bytes, input.limits);
  const pres = zip.text("ppt/presentation.xml");
  if (pres === null) throw new ParseError("the file is not a valid PowerPoint presentation (it has no ppt/presentation.xml)");
  const rels = readRels(zip.text("ppt/_rels/presentation.xml.rels"), "ppt/");
  const order: string[] = [];
  walkXml(pres, {
    open(name, a) {
      if (name === "p:sldId") {
        const target = rels.get(a["r:id"] ?? "")?.target;
        if (target) order.push(target);
      }
    },
  });
  const blocks: Block[] = [];
  const readPictures = pictureReader(input);
  for (let i = 0; i < order.length; i++) {
    const slide = i + 1;
    input.progress(`parsing slide ${slide} of ${order.length}`);
    const path = order[i]!;
    const xml = zip.text(path);
    if (xml === null) continue;
    let first = true;
    const add = (text: string) => {
      blocks.push({ text, loc: { slide }, ...(first ? { boundary: true } : {}) });
      first = false;
    };
    for (const t of shapeTexts(xml)) add(t);
    // Charts and SmartArt keep their text in parts of their own; pictures are read by OCR.
    const embedded = embeddedIn(zip, path, xml);
    embedded.texts.forEach(add);
    for (const b of await readPictures(embedded.pictures.map((p) => ({ bytes: zip.read(p)!, loc: { slide } })))) add(b.text);
    const name = path.slice(path.lastIndexOf("/") + 1);
    const slideRels = readRels(zip.text(`${dirOf(path)}_rels/${name}.rels`), dirOf(path));
    const notes = [...slideRels.values()].find((r) => r.type.endsWith("/notesSlide"));
    const notesXml = notes ? zip.text(notes.target) : null;
    if (notesXml) {
      const texts = shapeTexts(notesXml);
      if (texts.length) {
        blocks.push({ text: `Speaker notes: ${texts.join("\n")}`, loc: { slide }, ...(first ? { boundary: true } : {}) });
      }
    }
  }
  return { format: "pptx", blocks };
}
