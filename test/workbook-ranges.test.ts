// A large workbook read in groups of sheets by two parse processes gives what one process
// reading it whole gives, is held to the cell limit over all its groups, and hands back
// every slot it took.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
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

/** One parse of the workbook through the parse processes, as the pipeline runs it with `free` spare slots. */
async function read(split: Splittable | null, free: number, limits: ParseLimits = DEFAULT_PARSE_LIMITS) {
  let spare = free;
  const progress: string[] = [];
  const reply = await parseFile({
    pool,
    slots: {
      take: () => (spare > 0 ? (spare--, true) : false),
      give: () => void spare++,
      othersWaiting: () => false,
    },
    request: {
      path,
      filename: "quarries.xlsx",
      limits,
      chunking: resolveChunking({ type: "auto" }, 256),
      tokenizer: { kind: "approximate" },
      ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }),
      natives: nativePaths("/nonexistent"),
    },
    split,
    readers: 2,
    timeoutMs: 120_000,
    onProgress: (m) => progress.push(m),
    onStart: () => {},
  });
  return { reply, progress, slotsBack: spare === free };
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
  expect(ranges.progress).toContain("reading sheets: 1 of 2 parts read");
  expect(whole.progress.some((m) => m.startsWith("reading sheets:"))).toBe(false);
  expect(ranges.slotsBack).toBe(true);
}, 120_000);

test("the cell limit holds over all groups, though each group alone is under it", async () => {
  // 48,003 rows of 4 cells: 192,012 cells, either group about 96,000
  const limits = { ...DEFAULT_PARSE_LIMITS, maxCells: 150_000 };
  const message = "the spreadsheet holds more than 150,000 cells with content, past what this server reads; split it";
  for (const r of [await read("workbook", 1, limits), await read(null, 0, limits)]) {
    expect(r.reply).toEqual({ type: "failed", code: "file_too_large", message });
    expect(r.slotsBack).toBe(true);
  }
}, 120_000);

test("a workbook offered for splitting with no spare slot, or too small to split, is read whole", async () => {
  const busy = await read("workbook", 0);
  expect(busy.progress.some((m) => m.startsWith("reading sheets:"))).toBe(false);
  expect(busy.reply.type).toBe("done");
});

test("groups: about equal XML in the sheets' order, none empty, at least 4 MiB each, never more than the readers", () => {
  const MiB = 1024 ** 2;
  const sheets = (...sizes: number[]) => sizes.map((size, i) => ({ name: `s${i + 1}`, size: size * MiB }));
  expect(sheetGroups(sheets(3.2, 1.1, 4.2), 2)).toEqual([["s1", "s2"], ["s3"]]);
  expect(sheetGroups(sheets(10, 10, 10, 10), 2)).toEqual([["s1", "s2"], ["s3", "s4"]]);
  expect(sheetGroups(sheets(10, 10, 10, 10), 4)).toEqual([["s1"], ["s2"], ["s3"], ["s4"]]);
  // one sheet holds nearly everything: the small ones go with it or with each other
  expect(sheetGroups(sheets(0.1, 40, 0.1), 2)).toEqual([["s1"], ["s2", "s3"]]);
  // too little XML for two groups, or a single sheet: read whole
  expect(sheetGroups(sheets(3, 3), 2)).toEqual([["s1", "s2"]]);
  expect(sheetGroups(sheets(50), 4)).toEqual([["s1"]]);
  expect(sheetGroups([], 2)).toEqual([]);
});

test("which files are offered for reading in ranges", () => {
  expect(splittable("pdf", "a.pdf", 10)).toBe("pdf");
  expect(splittable("zip", "Budget.XLSX", 2 * 1024 ** 2)).toBe("workbook");
  expect(splittable("zip", "budget.xlsm", 2 * 1024 ** 2)).toBe("workbook");
  // a small workbook, or a zip named otherwise (a DOCX, an ODS), is read in one process
  expect(splittable("zip", "budget.xlsx", 200_000)).toBeNull();
  expect(splittable("zip", "report.docx", 50 * 1024 ** 2)).toBeNull();
  expect(splittable("text", "notes.xlsx", 50 * 1024 ** 2)).toBeNull();
});
