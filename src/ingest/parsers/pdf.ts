import "./pdf-env";
import { PDFParse } from "pdf-parse";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";

/** PDF through pdf.js (pdf-parse), one page at a time so progress and memory stay bounded. */
export async function parsePdf(input: ParseInput): Promise<ParsedDocument> {
  const parser = new PDFParse({ data: input.bytes, verbosity: 0, isEvalSupported: false });
  try {
    let pages: number;
    try {
      // getInfo loads the document once; later getText calls reuse it.
      pages = (await parser.getInfo()).total;
    } catch (e) {
      throw pdfError(e);
    }
    const blocks: Block[] = [];
    for (let page = 1; page <= pages; page++) {
      input.progress(`parsing page ${page} of ${pages}`);
      let text: string;
      try {
        text = (await parser.getText({ partial: [page], lineEnforce: true })).pages[0]?.text ?? "";
      } catch (e) {
        // One damaged page does not cost the whole document.
        if (page === 1 && pages === 1) throw pdfError(e);
        continue;
      }
      text = text
        .replace(/(\p{Ll})-\n(\p{Ll})/gu, "$1$2")
        .replace(/[ \t]+\n/g, "\n")
        .trim();
      if (text) blocks.push({ text, loc: { page }, boundary: true });
    }
    return { format: "pdf", blocks, pages } as ParsedDocument;
  } finally {
    await parser.destroy().catch(() => {});
  }
}

function pdfError(e: unknown): ParseError {
  const name = (e as Error)?.name ?? "";
  const msg = String((e as Error)?.message ?? e);
  if (name === "PasswordException" || /password/i.test(msg)) return new ParseError("the file is password-protected");
  return new ParseError(`the PDF is corrupt or truncated and could not be read (${msg.slice(0, 120)})`);
}
