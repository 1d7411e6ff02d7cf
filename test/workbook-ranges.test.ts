// A large workbook read in groups of sheets by two parse processes gives what one process
// reading it whole gives, is held to the cell limit over all its groups, and hands back
// every slot it took.
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { strToU8, unzipSync, zipSync } from "fflate";
import { join } from "node:path";
import * as XLSX from "xlsx";
import { resolveChunking } from "../src/ingest/chunker";
import { parseCommand } from "../src/ingest/parse-command";
import { parseFile, splittable, type Splittable } from "../src/ingest/parse-file";
import { ParseProcessPool } from "../src/ingest/parse-pool";
import { sheetGroups } from "../src/ingest/parsers/spreadsheet";
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from "../src/ingest/types";
import { nativePaths } from "../src/native/assets";
import { ocrSettings } from "../src/server";
import { defaults } from "../src/config";
import { cleanup, tempDir } from "./helpers/ragd";

const dir = tempDir();
const pool = new ParseProcessPool({ command: parseCommand(), max: 3, memoryLimit: 1024 ** 3 });
afterAll(async () => {
  await pool.close();
  cleanup(dir);
});

// About 9 MB of sheet XML in three sheets of unequal size: two groups of sheets (North and Notes, South).
const words = "granite basalt quarry marble slate chalk flint shale gneiss schist".split(" ");
function workbook(): string {
  const wb = XLSX.utils.book_new();
  for (const [name, rows] of [["North", 18_000], ["Notes", 6_000], ["South", 24_000]] as const) {
    const data: (string | number)[][] = [["Site", "Stone", "Remarks", "Tonnes"]];
    for (let r = 0; r < rows; r++) data.push([`${name} site ${r % 97}`, words[r % 10]!, `${words[(r * 3) % 10]} seam ${r} of ${name.toLowerCase()}`, (r * 37) % 1000]);
    XLSX.utils.book_append_sheet(wb, XLSX.utils.aoa_to_sheet(data), name);
  }
  const path = join(dir, "quarries.xlsx");
  writeFileSync(path, XLSX.write(wb, { type: "buffer", bookType: "xlsx", compression: true }));
  return path;
}
const path = workbook();

/** A copy of the workbook with some of its zip's entries changed. */
function edited(name: string, change: (entries: Record<string, Uint8Array>) => void): string {
  const entries = unzipSync(readFileSync(path));
  change(entries);
  const out = join(dir, name);
  writeFileSync(out, zipSync(entries));
  return out;
}
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

/** One parse of a file through the parse processes, as the pipeline runs it with `free` spare slots. */
async function read(split: Splittable | null, free: number, o: { file?: string; filename?: string; limits?: ParseLimits; pictures?: boolean } = {}) {
  let spare = free;
  const progress: string[] = [];
  const ocr = ocrSettings({ ...defaults(), dataDir: "/nonexistent" });
  const reply = await parseFile({
    pool,
    slots: {
      take: () => (spare > 0 ? (spare--, true) : false),
      give: () => void spare++,
      othersWaiting: () => false,
    },
    request: {
      path: o.file ?? path,
      filename: o.filename ?? "quarries.xlsx",
      limits: o.limits ?? DEFAULT_PARSE_LIMITS,
      chunking: resolveChunking({ type: "auto" }, 256),
      tokenizer: { kind: "approximate" },
      ocr: { ...ocr, embedded: o.pictures ?? ocr.embedded },
      natives: nativePaths("/nonexistent"),
    },
    split,
    readers: 2,
    timeoutMs: 120_000,
    onProgress: (m) => progress.push(m),
    onStart: () => {},
  });
  const inParts = progress.some((m) => m.startsWith("reading sheets:"));
  return { reply, progress, inParts, slotsBack: spare === free };
}

test("read in two groups of sheets: the text, chunks and offsets of a whole read, every slot handed back", async () => {
  const whole = await read(null, 0);
  const ranges = await read("workbook", 1);
  expect(whole.reply.type).toBe("done");
  expect(ranges.reply).toEqual(whole.reply);
  expect(ranges.reply).toMatchObject({ format: "xlsx" });
  // every sheet is there, in the workbook's order, each starting a chunk of its own
  const done = whole.reply as Extract<typeof whole.reply, { type: "done" }>;
  const sheets = done.chunks.map((c) => c.loc.sheet);
  expect([...new Set(sheets)]).toEqual(["North", "Notes", "South"]);
  expect(done.text.endsWith("Remarks: shale seam 23999 of south, Tonnes: 963")).toBe(true);
  // the second read went in parts (the whole read never did), and gave its spare slot back
  expect(ranges.progress).toContain("reading sheets: groups read 1 of 2");
  expect(whole.inParts).toBe(false);
  expect(ranges.slotsBack).toBe(true);
}, 120_000);

test("the cell limit holds over all groups, though each group alone is under it", async () => {
  // 48,003 rows of 4 cells: 192,012 cells, either group about 96,000
  const limits = { ...DEFAULT_PARSE_LIMITS, maxCells: 150_000 };
  const message = "the spreadsheet holds more than 150,000 cells with content, past what this server reads; split it";
  const [split, whole] = [await read("workbook", 1, { limits }), await read(null, 0, { limits })];
  for (const r of [split, whole]) {
    expect(r.reply).toEqual({ type: "failed", code: "file_too_large", message });
    expect(r.slotsBack).toBe(true);
  }
  expect(split.inParts).toBe(true);
}, 120_000);

test("read whole: with no spare slot; a zip of another format under an .xlsx name; a workbook with pictures when pictures are read", async () => {
  const busy = await read("workbook", 0);
  expect([busy.reply.type, busy.inParts, busy.slotsBack]).toEqual(["done", false, true]);
  for (const fixture of ["handbook.docx", "sales.ods"]) {
    const r = await read("workbook", 1, { file: join(import.meta.dir, "fixtures/docs", fixture), filename: "mislabelled.xlsx" });
    expect([r.reply.type, r.inParts, r.slotsBack]).toEqual(["done", false, true]);
  }
  // a picture on the first sheet (a picture seen twice is read once, the pixel budget is the document's: one reader)
  const pictured = edited("pictured.xlsx", (e) => {
    const rels = (body: string) => `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">${body}</Relationships>`;
    e["xl/worksheets/_rels/sheet1.xml.rels"] = strToU8(rels('<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/drawing" Target="../drawings/drawing1.xml"/>'));
    e["xl/drawings/drawing1.xml"] = strToU8('<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><xdr:twoCellAnchor><xdr:pic><xdr:blipFill><a:blip r:embed="rId1"/></xdr:blipFill></xdr:pic></xdr:twoCellAnchor></xdr:wsDr>');
    e["xl/drawings/_rels/drawing1.xml.rels"] = strToU8(rels('<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="../media/image1.png"/>'));
    e["xl/media/image1.png"] = new Uint8Array(Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64"));
  });
  const withPictures = await read("workbook", 1, { file: pictured, pictures: true });
  expect([withPictures.reply.type, withPictures.inParts, withPictures.slotsBack]).toEqual(["done", false, true]);
  const withoutPictures = await read("workbook", 1, { file: pictured, pictures: false });
  expect([withoutPictures.reply.type, withoutPictures.inParts]).toEqual(["done", true]);
}, 120_000);

test("sheets are told apart by their place, not their names (SheetJS decodes some names its own way)", async () => {
  const renamed = edited("renamed.xlsx", (e) => {
    e["xl/workbook.xml"] = strToU8(text(e["xl/workbook.xml"]).replace('name="Notes"', 'name="N_x005F_x0041_otes"'));
  });
  const [whole, ranges] = [await read(null, 0, { file: renamed }), await read("workbook", 1, { file: renamed })];
  expect(ranges.inParts).toBe(true);
  expect(ranges.reply).toEqual(whole.reply);
  const sheets = (whole.reply as Extract<typeof whole.reply, { type: "done" }>).chunks.map((c) => c.loc.sheet);
  expect(new Set(sheets).size).toBe(3);
}, 120_000);

test("groups: about equal XML in the sheets' order, none empty, at least 4 MiB each, never more than the readers", () => {
  const MiB = 1024 ** 2;
  const mib = (...sizes: number[]) => sizes.map((size) => size * MiB);
  expect(sheetGroups(mib(3.2, 1.1, 4.2), 2)).toEqual([[0, 1], [2]]);
  expect(sheetGroups(mib(10, 10, 10, 10), 2)).toEqual([[0, 1], [2, 3]]);
  expect(sheetGroups(mib(10, 10, 10, 10), 4)).toEqual([[0], [1], [2], [3]]);
  // a small group joins its neighbour: one sheet holding nearly everything is read whole
  expect(sheetGroups(mib(0.1, 40, 0.1), 2)).toEqual([[0, 1, 2]]);
  expect(sheetGroups(mib(40, 0.5, 3), 4)).toEqual([[0, 1, 2]]);
  expect(sheetGroups(mib(6, 1, 1, 6), 4)).toEqual([[0, 1, 2], [3]]);
  // too little XML for two groups, or a single sheet: read whole
  expect(sheetGroups(mib(3, 3), 2)).toEqual([[0, 1]]);
  expect(sheetGroups(mib(50), 4)).toEqual([[0]]);
  expect(sheetGroups([], 2)).toEqual([]);
});

test("which files are offered for reading in ranges", async () => {
  const sized = (n: number) => async () => n;
  expect(await splittable("pdf", "a.pdf", sized(10))).toBe("pdf");
  expect(await splittable("zip", "Budget.XLSX", sized(2 * 1024 ** 2))).toBe("workbook");
  expect(await splittable("zip", "budget.xlsm", sized(2 * 1024 ** 2))).toBe("workbook");
  // a small workbook, or a zip named otherwise (a DOCX, an ODS), is read in one process
  expect(await splittable("zip", "budget.xlsx", sized(200_000))).toBeNull();
  expect(await splittable("zip", "report.docx", sized(50 * 1024 ** 2))).toBeNull();
  expect(await splittable("text", "notes.xlsx", sized(50 * 1024 ** 2))).toBeNull();
});
