import Papa from "papaparse";
import { decodeText } from "../encoding";
import { tooMuchText, type Block, type ParseInput, type ParsedDocument } from "../types";
import { findHeader, isBlankRow, renderRow } from "./tabular";

/** CSV and TSV: the first non-blank row is the header; rows are numbered as in the file's records. */
export async function parseCsv(input: ParseInput, format: "csv" | "tsv"): Promise<ParsedDocument> {
  const text = decodeText(input.bytes);
  // Before the parser copies it again: refuse what could not be kept anyway.
  if (text.length > input.limits.maxTextChars) throw tooMuchText(input.limits.maxTextChars);
  const parsed = Papa.parse<string[]>(text, { delimiter: format === "tsv" ? "\t" : "", skipEmptyLines: false });
  const rows = parsed.data;
  const blocks: Block[] = [];
  let header: string[] | null = null;
  const headerAt = findHeader(rows);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (isBlankRow(row)) continue;
    if (i < headerAt) {
      blocks.push({ text: row.filter((c) => String(c).trim()).join(" | "), loc: { rows: [i + 1, i + 1] } });
      continue;
    }
    if (!header) {
      header = row.map((h) => String(h).trim());
      continue;
    }
    const line = renderRow(header, row, (c) => `Column ${c + 1}`);
    if (line) blocks.push({ text: line, loc: { rows: [i + 1, i + 1] } });
  }
  // A one-row file is its own content, not a header over nothing.
  if (header && header.some(Boolean) && rows.slice(headerAt + 1).every(isBlankRow))
    blocks.push({ text: header.filter(Boolean).join(" | "), loc: { rows: [headerAt + 1, headerAt + 1] } });
  return { format, blocks };
}
