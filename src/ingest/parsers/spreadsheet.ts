import * as XLSX from "xlsx";
import { SafeZip } from "../zip";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";
import { findHeader, isBlankRow, renderRow } from "./tabular";
import { embeddedIn, partRels, type Embedded } from "./ooxml";
import { pictureReader } from "./pictures";
import { walkXml } from "./xml";

/**
 * XLSX, XLS and ODS through SheetJS 0.18.5, the last release on npm. It has known
 * advisories for crafted files (prototype pollution, ReDoS), so it only ever runs inside a
 * parse worker that is thrown away after one file and killed at the time budget; zips are
 * checked against the bomb limits before SheetJS inflates them.
 */
export async function parseSpreadsheet(input: ParseInput, format: "xlsx" | "xls" | "ods"): Promise<ParsedDocument> {
  let drawings = new Map<string, Embedded>();
  let zip: SafeZip | null = null;
  if (format !== "xls") {
    zip = new SafeZip(input.bytes, input.limits);
    zip.checkAll();
    // SheetJS expands ODS repeat attributes as it reads, before any option can stop it: an
    // 800-byte file can ask for a billion cells.
    if (format === "ods") checkOdsRepeats(zip.text("content.xml") ?? "", input.limits.maxCells);
    if (format === "xlsx") drawings = sheetDrawings(zip);
  }
  const readPictures = pictureReader(input);
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
  let cells = 0;
  for (const name of wb.SheetNames) {
    const ws = wb.Sheets[name];
    if (!ws?.["!ref"]) continue;
    input.progress(`reading sheet "${name}"`);
    // Only the rows and cells the sheet holds are visited: its declared range (A1:XFD1048576)
    // may be vast and empty.
    const rows: { at: number; cells: string[] }[] = [];
    for (const [at, row] of storedRows(ws)) {
      const out: string[] = [];
      row.forEach((cell, c) => {
        if (++cells > input.limits.maxCells) throw tooManyCells(input.limits.maxCells);
        out[c] = cell ? XLSX.utils.format_cell(cell) : "";
      });
      rows.push({ at, cells: Array.from(out, (c) => c ?? "") });
    }
    let header: string[] | null = null;
    let first = true;
    const headerAt = findHeader(rows.map((r) => r.cells));
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!.cells;
      if (isBlankRow(row)) continue;
      const rowNo = rows[i]!.at + 1;
      if (i < headerAt) {
        blocks.push({ text: row.filter((c) => c.trim()).join(" | "), loc: { sheet: name, rows: [rowNo, rowNo] }, ...(first ? { boundary: true } : {}) });
        first = false;
        continue;
      }
      if (!header) {
        header = row.map((h) => h.trim());
        // A sheet with only a header row still says something.
        if (rows.slice(i + 1).every((r) => isBlankRow(r.cells))) {
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
  // Charts and pictures float over a sheet: their text goes with the sheet, after its rows.
  for (const [name, d] of drawings) {
    let first = !blocks.some((b) => b.loc.sheet === name);
    const add = (text: string) => {
      blocks.push({ text, loc: { sheet: name }, ...(first ? { boundary: true } : {}) });
      first = false;
    };
    d.texts.forEach(add);
    for (const b of await readPictures(d.pictures.map((p) => ({ bytes: zip!.read(p)!, loc: { sheet: name } })))) add(b.text);
  }
  return { format, blocks };
}

/** Each XLSX sheet's drawing (charts, pictures), by sheet name. */
function sheetDrawings(zip: SafeZip): Map<string, Embedded> {
  const out = new Map<string, Embedded>();
  const book = "xl/workbook.xml";
  const rels = partRels(zip, book);
  const sheets: { name: string; path: string }[] = [];
  walkXml(zip.text(book) ?? "", {
    open(name, a) {
      if (name !== "sheet") return;
      const target = rels.get(a["r:id"] ?? "")?.target;
      if (target && a.name) sheets.push({ name: a.name, path: target });
    },
  });
  for (const sheet of sheets) {
    for (const rel of partRels(zip, sheet.path).values()) {
      if (!rel.type.endsWith("/drawing") || !zip.has(rel.target)) continue;
      const found = embeddedIn(zip, rel.target, zip.text(rel.target) ?? "");
      if (found.texts.length || found.pictures.length) out.set(sheet.name, found);
    }
  }
  return out;
}

/** A dense sheet's rows as SheetJS 0.18 keeps them: arrays of cells under numeric keys, by row index. */
function storedRows(ws: XLSX.WorkSheet): [number, XLSX.CellObject[]][] {
  const sheet = ws as unknown as Record<string, unknown>;
  return Object.keys(sheet)
    .filter((k) => /^\d+$/.test(k) && Array.isArray(sheet[k]))
    .map((k) => [Number(k), sheet[k] as XLSX.CellObject[]] as [number, XLSX.CellObject[]])
    .sort((a, b) => a[0] - b[0]);
}

const tooManyCells = (max: number) => new ParseError(`the spreadsheet holds more than ${max.toLocaleString("en")} cells with content, past what this server reads; split it`, "file_too_large");

/**
 * Counts the cells with content an ODS asks for once its repeat attributes are expanded.
 * Rows and cells without content may repeat freely: LibreOffice writes a million empty
 * trailing rows into every sheet.
 */
export function checkOdsRepeats(contentXml: string, maxCells: number) {
  let rowRepeat = 1;
  let rowCells = 0;
  let cellRepeat = 1;
  let cellHasContent = false;
  let total = 0;
  walkXml(contentXml, {
    open(name, a) {
      if (name === "table:table-row") {
        rowRepeat = Math.max(1, Number(a["table:number-rows-repeated"] ?? 1) || 1);
        rowCells = 0;
      } else if (name === "table:table-cell" || name === "table:covered-table-cell") {
        cellRepeat = Math.max(1, Number(a["table:number-columns-repeated"] ?? 1) || 1);
        cellHasContent = a["office:value-type"] !== undefined;
      } else if (name === "text:p" || name === "text:span") cellHasContent = true;
    },
    close(name) {
      if (name === "table:table-cell" || name === "table:covered-table-cell") {
        if (cellHasContent) rowCells += cellRepeat;
        cellHasContent = false;
      } else if (name === "table:table-row") {
        total += rowRepeat * rowCells;
        if (total > maxCells) throw tooManyCells(maxCells);
      }
    },
  });
}
