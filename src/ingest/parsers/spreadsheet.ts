import * as XLSX from "xlsx";
import { SafeZip } from "../zip";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";
import { findHeader, isBlankRow, renderRow } from "./tabular";

/**
 * XLSX, XLS and ODS through SheetJS 0.18.5, the last release on npm. It has known
 * advisories for crafted files (prototype pollution, ReDoS), so it only ever runs inside a
 * parse worker that is thrown away after one file and killed at the time budget; zips are
 * checked against the bomb limits before SheetJS inflates them.
 */
export async function parseSpreadsheet(input: ParseInput, format: "xlsx" | "xls" | "ods"): Promise<ParsedDocument> {
  if (format !== "xls") new SafeZip(input.bytes, input.limits).checkAll();
  let wb: XLSX.WorkBook;
  try {
    wb = XLSX.read(input.bytes, {
      type: "array",
      dense: true,
      cellFormula: false,
      cellHTML: false,
      cellStyles: false,
      bookVBA: false,
      bookFiles: false,
    });
  } catch (e) {
    const msg = String((e as Error)?.message ?? e);
    if (/password|encrypt/i.test(msg)) throw new ParseError("the file is password-protected");
    throw new ParseError(`the spreadsheet is corrupt or truncated (${msg.slice(0, 120)})`);
  }
  const blocks: Block[] = [];
  for (const name of wb.SheetNames) {
    const ws = wb.Sheets[name];
    if (!ws?.["!ref"]) continue;
    input.progress(`reading sheet "${name}"`);
    const origin = XLSX.utils.decode_range(ws["!ref"]).s.r;
    const rows = XLSX.utils.sheet_to_json<unknown[]>(ws, { header: 1, raw: false, blankrows: true, defval: "" });
    let header: string[] | null = null;
    let first = true;
    const headerAt = findHeader(rows);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!.map((c) => String(c ?? ""));
      if (isBlankRow(row)) continue;
      const rowNo = origin + i + 1;
      if (i < headerAt) {
        blocks.push({ text: row.filter((c) => c.trim()).join(" | "), loc: { sheet: name, rows: [rowNo, rowNo] }, ...(first ? { boundary: true } : {}) });
        first = false;
        continue;
      }
      if (!header) {
        header = row.map((h) => h.trim());
        // A sheet with only a header row still says something.
        if (rows.slice(i + 1).every((r) => isBlankRow(r as unknown[]))) {
          blocks.push({ text: header.filter(Boolean).join(" | "), loc: { sheet: name, rows: [rowNo, rowNo] }, ...(first ? { boundary: true } : {}) });
          first = false;
        }
        continue;
      }
      const text = renderRow(header, row, (c) => `Column ${XLSX.utils.encode_col(c)}`);
      if (!text) continue;
      blocks.push({ text, loc: { sheet: name, rows: [rowNo, rowNo] }, ...(first ? { boundary: true } : {}) });
      first = false;
    }
  }
  return { format, blocks };
}
