import * as XLSX from "xlsx";
import { SafeZip } from "../zip";
import { ParseError, tooManyCells, type Block, type ParseInput, type ParsedDocument } from "../types";
import { findHeader, isBlankRow, renderRow } from "./tabular";
import { embeddedIn, partRels, type Embedded } from "./ooxml";
import { pictureReader } from "./pictures";
import { walkXml } from "./xml";

// Each process that reads a group of sheets first reads the parts they share (the whole zip,
// the strings table): a group holds at least this much XML (about 0.4 s of parsing) to repay it.
const GROUP_XML_BYTES = 4 * 1024 * 1024;

/**
 * XLSX, XLS and ODS through SheetJS 0.18.5, the last release on npm. It has known
 * advisories for crafted files (prototype pollution, ReDoS), so it only ever runs inside a
 * parse worker that is thrown away after one file and killed at the time budget; zips are
 * checked against the bomb limits before SheetJS inflates them. A large XLSX may be read in
 * groups of sheets by several processes (`input.pages`, see PageRange).
 */
export async function parseSpreadsheet(input: ParseInput, format: "xlsx" | "xls" | "ods"): Promise<ParsedDocument> {
  let zip: SafeZip | null = null;
  let sheets: SheetPart[] = [];
  /** Each sheet's drawing, by the sheet's place in the workbook. */
  let drawings = new Map<number, Embedded>();
  /** The places of the sheets this read covers, when it reads a range of the workbook's groups. */
  let only: number[] | null = null;
  let groups = 0;
  if (format !== "xls") {
    zip = new SafeZip(input.bytes, input.limits);
    zip.checkAll();
    // SheetJS expands ODS repeat attributes as it reads, before any option can stop it: an
    // 800-byte file can ask for a billion cells.
    if (format === "ods") checkOdsRepeats(zip.text("content.xml") ?? "", input.limits.maxCells);
    if (format === "xlsx") {
      sheets = workbookSheets(zip);
      drawings = sheetDrawings(zip, sheets);
      const range = input.pages;
      if (range?.split) {
        const plan = splitPlan(input, zip, sheets, drawings, range.readers ?? 1);
        input.splitting?.(plan.length, plan.length > 1);
        if (plan.length > 1) groups = plan.length;
        only = plan.length > 1 ? plan[0]! : null;
      } else if (range) {
        // (the file's first process found the groups sound: see splitPlan)
        const plan = sheetGroups(sheets.map((s) => s.size), range.readers ?? 1);
        groups = plan.length;
        only = plan.slice(range.from - 1, range.to).flat();
      }
    }
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
      ...(only ? { sheets: only } : {}),
    });
  } catch (e) {
    const msg = String((e as Error)?.message ?? e);
    if (/password|encrypt/i.test(msg)) throw new ParseError("the file is password-protected");
    throw new ParseError(`the spreadsheet is corrupt or truncated (${msg.slice(0, 120)})`);
  }
  // A sheet's place is the same in SheetJS's list and in ours when both saw the same sheets;
  // else a drawing cannot be placed by it, and drawings follow every sheet's rows, as they
  // always did.
  const placed = wb.SheetNames.length === sheets.length;
  const blocks: Block[] = [];
  let cells = 0;
  const readRows = (name: string, ws: XLSX.WorkSheet) => {
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
  };
  // Charts and pictures float over a sheet: their text goes with the sheet, after its rows.
  const readDrawing = async (name: string, d: Embedded) => {
    let first = !blocks.some((b) => b.loc.sheet === name);
    const add = (text: string) => {
      blocks.push({ text, loc: { sheet: name }, ...(first ? { boundary: true } : {}) });
      first = false;
    };
    d.texts.forEach(add);
    for (const b of await readPictures(d.pictures.map((p) => ({ bytes: zip!.read(p)!, loc: { sheet: name } })))) add(b.text);
  };
  for (const i of only ?? wb.SheetNames.keys()) {
    const name = wb.SheetNames[i]!;
    const ws = wb.Sheets[name];
    if (ws?.["!ref"]) readRows(name, ws);
    const drawing = placed ? drawings.get(i) : undefined;
    if (drawing) await readDrawing(name, drawing);
  }
  if (!placed) for (const [i, d] of drawings) await readDrawing(sheets[i]!.name, d);
  return { format, blocks, ...(only ? { part: { pages: groups, scanned: 0, cells } } : {}) };
}

interface SheetPart {
  name: string;
  /** The sheet's part, null when its relationship names none. */
  path: string | null;
  /** Its XML's size as the zip's directory states it (0 without a part). */
  size: number;
}

/** Every sheet the workbook lists, in its order, with the part that holds each. */
function workbookSheets(zip: SafeZip): SheetPart[] {
  const book = "xl/workbook.xml";
  const rels = partRels(zip, book);
  const sheets: SheetPart[] = [];
  walkXml(zip.text(book) ?? "", {
    open(name, a) {
      if (name !== "sheet") return;
      const target = rels.get(a["r:id"] ?? "")?.target;
      const path = target && zip.has(target) ? target : null;
      sheets.push({ name: a.name ?? "", path, size: path ? zip.size(path) : 0 });
    },
  });
  return sheets;
}

/** Each XLSX sheet's drawing (charts, pictures), by the sheet's place. */
function sheetDrawings(zip: SafeZip, sheets: SheetPart[]): Map<number, Embedded> {
  const out = new Map<number, Embedded>();
  sheets.forEach((sheet, i) => {
    if (!sheet.path) return;
    for (const rel of partRels(zip, sheet.path).values()) {
      if (!rel.type.endsWith("/drawing") || !zip.has(rel.target)) continue;
      const found = embeddedIn(zip, rel.target, zip.text(rel.target) ?? "");
      if (found.texts.length || found.pictures.length) out.set(i, found);
    }
  });
  return out;
}

/**
 * The groups of sheets a split read takes, or one group when the workbook is read whole: in
 * the file's first process only, which also makes sure every other process will find the
 * same sheets. Read whole are a workbook whose sheets SheetJS lists otherwise than its
 * workbook part (a sheet without a part, a prefixed tag) and, when pictures are read, one
 * with pictures: a picture seen twice is read once and the pixel budget is the document's,
 * which needs one reader.
 */
function splitPlan(input: ParseInput, zip: SafeZip, sheets: SheetPart[], drawings: Map<number, Embedded>, readers: number): number[][] {
  const plan = sheetGroups(sheets.map((s) => s.size), readers);
  if (plan.length < 2) return plan;
  if (sheets.some((s) => !s.path)) return [sheets.map((_, i) => i)];
  if (input.ocr.embedded && [...drawings.values()].some((d) => d.pictures.length)) return [sheets.map((_, i) => i)];
  // SheetJS's own list of sheets, read without their cells (a few percent of the read).
  if (XLSX.read(input.bytes, { type: "array", bookSheets: true }).SheetNames.length !== sheets.length) return [sheets.map((_, i) => i)];
  return plan;
}

/**
 * The workbook's sheets (their XML sizes, in their order) cut into at most `readers` runs of
 * about equal XML, each at least GROUP_XML_BYTES: what each parse process reads when a large
 * workbook is read by several. Every process computes the same groups from the zip's
 * directory. One group means the workbook is read whole.
 */
export function sheetGroups(sizes: number[], readers: number): number[][] {
  const total = sizes.reduce((a, b) => a + b, 0);
  const n = Math.max(1, Math.min(readers, sizes.length, Math.floor(total / GROUP_XML_BYTES)));
  const groups: { sheets: number[]; bytes: number }[] = [];
  let before = 0;
  sizes.forEach((size, i) => {
    // a sheet goes to the group its middle falls in: groups stay near an equal share
    const g = Math.min(n - 1, Math.floor(((before + size / 2) * n) / Math.max(1, total)));
    before += size;
    const last = groups.at(-1);
    if (last && g < groups.length) {
      last.sheets.push(i);
      last.bytes += size;
    } else groups.push({ sheets: [i], bytes: size });
  });
  // a group too small to repay its read joins its neighbour (a few small sheets beside a large one)
  for (let i = 0; i < groups.length && groups.length > 1; ) {
    if (groups[i]!.bytes >= GROUP_XML_BYTES) {
      i++;
      continue;
    }
    const into = i > 0 ? i - 1 : 1;
    const [from, to] = into < i ? [groups[into]!, groups[i]!] : [groups[i]!, groups[into]!];
    groups.splice(Math.max(i, into), 1);
    groups[Math.min(i, into)] = { sheets: [...from.sheets, ...to.sheets], bytes: from.bytes + to.bytes };
    i = Math.max(0, Math.min(i, into));
  }
  return groups.map((g) => g.sheets);
}

/** A dense sheet's rows as SheetJS 0.18 keeps them: arrays of cells under numeric keys, by row index. */
function storedRows(ws: XLSX.WorkSheet): [number, XLSX.CellObject[]][] {
  const sheet = ws as unknown as Record<string, unknown>;
  return Object.keys(sheet)
    .filter((k) => /^\d+$/.test(k) && Array.isArray(sheet[k]))
    .map((k) => [Number(k), sheet[k] as XLSX.CellObject[]] as [number, XLSX.CellObject[]])
    .sort((a, b) => a[0] - b[0]);
}

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
