import mammoth from "mammoth";
import { SafeZip } from "../zip";
import { ParseError, type ParseInput, type ParsedDocument } from "../types";
import { htmlToBlocks } from "./html";

/** DOCX through mammoth's semantic HTML, so headings give each block its heading path. */
export async function parseDocx(input: ParseInput): Promise<ParsedDocument> {
  const zip = new SafeZip(input.bytes, input.limits);
  if (!zip.has("word/document.xml")) throw new ParseError("the file is not a valid Word document (it has no word/document.xml)");
  zip.checkAll(input.limits.maxDomXmlBytes);
  let html: string;
  try {
    const r = await mammoth.convertToHtml(
      { buffer: Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength) },
      // Images are not text: skip them instead of inlining megabytes of base64.
      { convertImage: mammoth.images.imgElement(async () => ({ src: "" })) },
    );
    html = r.value;
  } catch (e) {
    throw new ParseError(`the Word document is corrupt and could not be read (${String((e as Error)?.message ?? e).slice(0, 120)})`);
  }
  return { format: "docx", blocks: htmlToBlocks(html).blocks };
}
