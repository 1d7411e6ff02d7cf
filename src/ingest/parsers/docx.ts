import mammoth from "mammoth";
import { SafeZip } from "../zip";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";
import { HeadingPath } from "./headings";
import { htmlToBlocks } from "./html";
import { embeddedIn, partRels } from "./ooxml";
import { pictureReader } from "./pictures";
import { walkXml } from "./xml";

const BODY = "word/document.xml";

/**
 * DOCX through mammoth's semantic HTML, so headings give each block its heading path; text
 * boxes, footnotes, endnotes and comments come with it. Pictures are read by OCR as mammoth
 * meets them; charts and SmartArt, which mammoth does not read, and headers and footers are
 * read from their own parts.
 */
export async function parseDocx(input: ParseInput): Promise<ParsedDocument> {
  const zip = new SafeZip(input.bytes, input.limits);
  if (!zip.has(BODY)) throw new ParseError("the file is not a valid Word document (it has no word/document.xml)");
  zip.checkAll(input.limits.maxDomXmlBytes);
  const readPictures = pictureReader(input);
  let html: string;
  try {
    const r = await mammoth.convertToHtml(
      { buffer: Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength) },
      {
        convertImage: mammoth.images.imgElement(async (image) => {
          if (!input.ocr.embedded) return { src: "" };
          const blocks = await readPictures([{ bytes: new Uint8Array(await image.read()), loc: {} }]);
          // htmlToBlocks puts this text where the picture was, under its heading.
          return { src: "", "data-ragd-text": blocks.map((b) => b.text).join("\n\n") };
        }),
        // Comments are left out unless a style names their references.
        styleMap: ["comment-reference => sup"],
      },
    );
    html = r.value;
  } catch (e) {
    if (e instanceof ParseError) throw e;
    throw new ParseError(`the Word document is corrupt and could not be read (${String((e as Error)?.message ?? e).slice(0, 120)})`);
  }
  const body = htmlToBlocks(html).blocks;
  return { format: "docx", blocks: [...headersAndFooters(zip), ...body, ...charts(zip)] };
}

/** Charts and SmartArt, each under the heading it stands beneath in the body. */
function charts(zip: SafeZip): Block[] {
  const xml = zip.text(BODY) ?? "";
  const blocks: Block[] = [];
  const headings = new HeadingPath();
  let level = 0;
  let para = "";
  let inPara = false;
  // One drawing at a time: the chart's part is read with the body's relationships.
  let drawing: string | null = null;
  let inText = false;
  walkXml(xml, {
    open(name, a) {
      if (name === "w:p") {
        inPara = true;
        para = "";
        level = 0;
      } else if (name === "w:pStyle") {
        const m = /^(?:heading|berschrift|titre|t[ií]tulo)\s*(\d)$/i.exec(a["w:val"] ?? "");
        if (m) level = Number(m[1]);
        else if (/^title$/i.test(a["w:val"] ?? "")) level = 1;
      } else if (name === "w:drawing") drawing = "";
      else if (name === "w:t") inText = true;
      if (drawing !== null) drawing += `<${name}${Object.entries(a).map(([k, v]) => ` ${k}="${v.replace(/"/g, "&quot;")}"`).join("")}>`;
    },
    text(t) {
      if (inPara && inText && drawing === null) para += t;
    },
    close(name) {
      if (drawing !== null) drawing += `</${name}>`;
      if (name === "w:t") inText = false;
      if (name === "w:drawing" && drawing !== null) {
        for (const text of embeddedIn(zip, BODY, drawing).texts) blocks.push({ text, loc: headings.loc() });
        drawing = null;
      } else if (name === "w:p") {
        inPara = false;
        if (level && para.trim()) headings.enter(level, para.trim());
      }
    },
  });
  return blocks;
}

/**
 * Each distinct header and footer Word shows, once, before the body: a section's default ones,
 * its first-page ones only when it has a distinct first page, even-page ones only when the
 * document has distinct even pages.
 */
function headersAndFooters(zip: SafeZip): Block[] {
  const rels = partRels(zip, BODY);
  let evenPages = false;
  walkXml(zip.text("word/settings.xml") ?? "", {
    open(name, a) {
      if (name === "w:evenAndOddHeaders" && a["w:val"] !== "0" && a["w:val"] !== "false") evenPages = true;
    },
  });
  const shown: { kind: string; target: string }[] = [];
  let refs: { kind: string; type: string; id: string }[] = [];
  let firstPage = false;
  walkXml(zip.text(BODY) ?? "", {
    open(name, a) {
      if (name === "w:sectPr") {
        refs = [];
        firstPage = false;
      } else if (name === "w:headerReference" || name === "w:footerReference")
        refs.push({ kind: name === "w:headerReference" ? "Header" : "Footer", type: a["w:type"] ?? "default", id: a["r:id"] ?? "" });
      else if (name === "w:titlePg" && a["w:val"] !== "0" && a["w:val"] !== "false") firstPage = true;
    },
    close(name) {
      if (name !== "w:sectPr") return;
      for (const r of refs) {
        const target = rels.get(r.id)?.target;
        if (target && (r.type === "default" || (r.type === "first" && firstPage) || (r.type === "even" && evenPages))) shown.push({ kind: r.kind, target });
      }
    },
  });
  const seen = new Set<string>();
  const blocks: Block[] = [];
  for (const { kind, target } of shown) {
    const paras: string[] = [];
    let para = "";
    // Only w:t is text: deleted runs (w:delText) and field codes (w:instrText) are not, and a
    // table cell merged into the one above it (w:vMerge without "restart") is not shown.
    let inText = false;
    let merged = false;
    walkXml(zip.text(target) ?? "", {
      open(name, a) {
        if (name === "w:p") para = "";
        else if (name === "w:tab") para += " ";
        else if (name === "w:t") inText = true;
        else if (name === "w:tc") merged = false;
        else if (name === "w:vMerge" && a["w:val"] !== "restart") merged = true;
      },
      text(t) {
        if (inText && !merged) para += t;
      },
      close(name) {
        if (name === "w:t") inText = false;
        else if (name === "w:p" && para.trim()) paras.push(para.replace(/\s+/g, " ").trim());
      },
    });
    const text = paras.join(" ");
    if (!text || seen.has(`${kind}:${text}`)) continue;
    seen.add(`${kind}:${text}`);
    blocks.push({ text: `${kind}: ${text}`, loc: {} });
  }
  return blocks;
}
