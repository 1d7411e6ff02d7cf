// Each format on a small committed fixture (built by test/fixtures/build.ts): the text a
// parser extracts and where it says each piece came from.
import { describe, expect, test } from "bun:test";
import { readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { strToU8, zipSync } from "fflate";
import { PDFDocument, PDFHexString, PDFName, StandardFonts, type PDFPage, type PDFRef } from "pdf-lib";
import { parseDocument } from "../src/ingest/parsers/index";
import { cleanPageText } from "../src/ingest/parsers/pdf";
import { withoutDoctype } from "../src/ingest/parsers/xml";
import { PdfDocument } from "../src/ingest/parsers/pdfium";
import { ocrSettings } from "../src/server";
import { nativePaths } from "../src/native/assets";
import { defaults } from "../src/config";

// From source the cache directory is unused: native libraries load from node_modules.
const OCR = ocrSettings({ ...defaults(), dataDir: "/nonexistent" });
const NATIVES = nativePaths("/nonexistent");
import { DEFAULT_PARSE_LIMITS, ParseError, type Block } from "../src/ingest/types";

const DOCS = join(import.meta.dir, "fixtures/docs");
const parse = (name: string, bytes?: Uint8Array) =>
  parseDocument({ bytes: bytes ?? new Uint8Array(readFileSync(join(DOCS, name))), filename: name, limits: DEFAULT_PARSE_LIMITS, progress: () => {}, ocr: OCR, natives: NATIVES });
const find = (blocks: Block[], text: string) => {
  const b = blocks.find((x) => x.text.includes(text));
  if (!b) throw new Error(`no block has "${text}"; blocks: ${JSON.stringify(blocks.map((x) => x.text))}`);
  return b;
};
const failure = async (name: string, bytes?: Uint8Array) => {
  try {
    await parse(name, bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return (e as Error).message;
  }
  throw new Error(`${name} parsed without error`);
};

/** A one-level outline whose entries open `page` at the heights given (PDF units from the bottom). */
function flatOutline(doc: PDFDocument, page: PDFPage, entries: [string, number][]) {
  const ctx = doc.context;
  const root = ctx.nextRef();
  const refs = entries.map(() => ctx.nextRef());
  entries.forEach(([title, y], i) =>
    ctx.assign(refs[i]!, ctx.obj({ Title: PDFHexString.fromText(title), Parent: root, Dest: [page.ref, "XYZ", null, y, null], ...(i ? { Prev: refs[i - 1]! } : {}), ...(i < refs.length - 1 ? { Next: refs[i + 1]! } : {}) })),
  );
  ctx.assign(root, ctx.obj({ Type: "Outlines", First: refs[0]!, Last: refs.at(-1)!, Count: refs.length }));
  doc.catalog.set(PDFName.of("Outlines"), root);
}

describe("parsers", () => {
  test("PDF: text per page", async () => {
    const d = await parse("report.pdf");
    expect(d.format).toBe("pdf");
    expect(find(d.blocks, "Quarterly Report").loc).toEqual({ page: 1 });
    expect(find(d.blocks, "Revenue grew by twelve percent in Europe.").loc).toEqual({ page: 2 });
    expect(find(d.blocks, "steady growth").loc).toEqual({ page: 3 });
  });

  test("PDF: text drawn outside the page's visible box is left out, as a viewer shows the page", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    const page = doc.addPage([300, 300]);
    page.drawText("The visible paragraph about harbour cranes.", { x: 20, y: 150, size: 10, font });
    page.drawText("Invisible watermark words", { x: 20, y: 420, size: 10, font });
    page.drawText("Offpage left side note", { x: -400, y: 100, size: 10, font });
    const d = await parse("outside.pdf", await doc.save());
    const text = d.blocks.map((b) => b.text).join("\n");
    expect(text).toContain("The visible paragraph about harbour cranes.");
    expect(text).not.toContain("Invisible");
    expect(text).not.toContain("Offpage");
  });

  test("PDF: each page is placed in the outline's section it belongs to; a looping outline ends", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    const pages = [1, 2, 3, 4].map((n) => {
      const page = doc.addPage([300, 300]);
      page.drawText(`Page ${n} describes the tidal turbines of the estuary in some detail.`, { x: 10, y: 150, size: 7, font });
      return page;
    });
    const ctx = doc.context;
    const root = ctx.nextRef();
    const item = (title: string, page: number) => ({ ref: ctx.nextRef(), title, page, kids: [] as { ref: PDFRef }[] });
    const ch1 = item("Chapter 1  Tides", 0);
    const intro = item("1.1 Intro", 0);
    const method = item("1.2 Method", 1);
    const ch2 = item("Chapter 2", 3);
    const elsewhere = ctx.nextRef();
    const put = (it: ReturnType<typeof item>, parent: PDFRef, o: Record<string, unknown>, top: number | null = null) =>
      ctx.assign(it.ref, ctx.obj({ Title: PDFHexString.fromText(it.title), Parent: parent, Dest: [pages[it.page]!.ref, "XYZ", null, top, null], ...o }));
    put(ch1, root, { Next: ch2.ref, First: intro.ref, Last: method.ref, Count: 2 });
    put(intro, ch1.ref, { Next: method.ref });
    // opens low on page 2: the page's top is still in 1.1
    put(method, ch1.ref, { Prev: intro.ref }, 100);
    put(ch2, root, { Prev: ch1.ref, Next: elsewhere });
    // a link into another file: its page 3 is not this document's
    ctx.assign(elsewhere, ctx.obj({ Title: PDFHexString.fromText("Appendix in another volume"), Parent: root, Prev: ch2.ref, A: { S: "GoToR", F: PDFHexString.fromText("other.pdf"), D: [2, "Fit"] } }));
    ctx.assign(root, ctx.obj({ Type: "Outlines", First: ch1.ref, Last: elsewhere, Count: 5 }));
    doc.catalog.set(PDFName.of("Outlines"), root);
    const d = await parse("outline.pdf", await doc.save());
    expect(d.blocks.map((b) => b.loc)).toEqual([
      { page: 1, headings: ["Chapter 1 Tides", "1.1 Intro"] },
      { page: 2, headings: ["Chapter 1 Tides", "1.1 Intro"] },
      { page: 3, headings: ["Chapter 1 Tides", "1.2 Method"] },
      { page: 4, headings: ["Chapter 2"] },
    ]);
    // an entry that names itself as its next sibling and its own child: read once, and the parse ends
    ctx.assign(ch2.ref, ctx.obj({ Title: PDFHexString.fromText("Chapter 2"), Parent: root, Prev: ch1.ref, Next: ch2.ref, First: ch2.ref, Last: ch2.ref, Dest: [pages[3]!.ref, "XYZ", null, null, null] }));
    ctx.assign(root, ctx.obj({ Type: "Outlines", First: ch1.ref, Last: ch2.ref, Count: 4 }));
    const looped = await parse("looped.pdf", await doc.save());
    expect(looped.blocks.at(-1)!.loc).toEqual({ page: 4, headings: ["Chapter 2"] });
  });

  test("PDF: a page is cut where the outline's sections open on it, each piece in its section", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    const lines: [string, number][] = [
      ["The preface speaks of harbour cranes and their long history.", 260],
      ["Chapter A", 200],
      ["Alpha text about the estuary's tidal turbines and their output.", 185],
      ["Chapter B", 120],
      ["Beta text about the pumping station and its night shifts.", 105],
    ];
    const first = doc.addPage([300, 300]);
    for (const [text, y] of lines) first.drawText(text, { x: 10, y, size: 7, font });
    doc.addPage([300, 300]).drawText("The second page goes on about the pumping station's night shifts.", { x: 10, y: 250, size: 7, font });
    flatOutline(doc, first, [["Chapter A", 207], ["A title the page does not show", 150], ["Chapter B", 127]]);
    const d = await parse("sections.pdf", await doc.save());
    expect(d.blocks.map((b) => [b.loc, b.text.split("\n")[0]])).toEqual([
      [{ page: 1 }, "The preface speaks of harbour cranes and their long history."],
      [{ page: 1, headings: ["Chapter A"] }, "Chapter A"],
      // the entry whose title is not on the page cut nothing, but the text after Chapter B is B's
      [{ page: 1, headings: ["Chapter B"] }, "Chapter B"],
      [{ page: 2, headings: ["Chapter B"] }, "The second page goes on about the pumping station's night shifts."],
    ]);
    expect(d.blocks[1]!.text).toContain("Alpha text");
    expect(d.blocks[1]!.text).not.toContain("Beta");
  });

  test("PDF: sections are cut in reading order, at titles on lines of their own, not at body lines that begin alike", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    const page = doc.addPage([300, 300]);
    const lines: [string, number][] = [
      ["Introduction to the study of tides in the estuary.", 260],
      ["Results are discussed below, after the methods.", 240],
      ["Methods", 200],
      ["We measured the tidal turbines each hour.", 185],
      ["Results", 120],
      ["The turbines gave more power at spring tides.", 105],
    ];
    for (const [text, y] of lines) page.drawText(text, { x: 10, y, size: 7, font });
    doc.addPage([300, 300]).drawText("The second page discusses the results further, at length.", { x: 10, y: 250, size: 7, font });
    // listed out of reading order
    flatOutline(doc, page, [["Results", 127], ["Methods", 207], ["Intro", 280]]);
    const d = await parse("order.pdf", await doc.save());
    expect(d.blocks.map((b) => [b.loc, b.text.split("\n")[0]])).toEqual([
      [{ page: 1, headings: ["Intro"] }, "Introduction to the study of tides in the estuary."],
      [{ page: 1, headings: ["Methods"] }, "Methods"],
      [{ page: 1, headings: ["Results"] }, "Results"],
      [{ page: 2, headings: ["Results"] }, "The second page discusses the results further, at length."],
    ]);
    expect(d.blocks[0]!.text).toContain("Results are discussed below");
  });

  test("PDF: section titles are found with their numbers as the page prints them", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    const page = doc.addPage([300, 400]);
    const lines: [string, number][] = [
      ["Opening words about the harbour before any section.", 380],
      // numbered on the page, not in the outline
      ["2.1 Methods", 340],
      ["We measured the tidal turbines each hour.", 325],
      // a manual's layout: the number, a revision date, then the title over two lines
      ["3.4", 280],
      ["(01-17-2023)", 268],
      ["Pump Station Night", 256],
      ["Shifts", 244],
      ["The pumps run through the night in winter.", 230],
      ["Terms/Definitions/", 180],
      ["Acronyms", 168],
      ["BMF means Business Master File.", 155],
      // the outline numbers this one; the page does not
      ["Appendix Tables", 110],
      ["Table one lists the tide heights.", 95],
    ];
    for (const [text, y] of lines) page.drawText(text, { x: 10, y, size: 7, font });
    flatOutline(doc, page, [["Methods", 330], ["3.4 Pump Station Night Shifts", 285], ["Terms/Definitions/Acronyms", 185], ["A. Appendix Tables", 115]]);
    const d = await parse("numbered.pdf", await doc.save());
    expect(d.blocks.map((b) => [b.loc.headings ?? null, b.text.split("\n")[0]])).toEqual([
      [null, "Opening words about the harbour before any section."],
      [["Methods"], "2.1 Methods"],
      [["3.4 Pump Station Night Shifts"], "3.4"],
      [["Terms/Definitions/Acronyms"], "Terms/Definitions/"],
      [["A. Appendix Tables"], "Appendix Tables"],
    ]);
    expect(d.blocks[2]!.text).toContain("The pumps run through the night");
    expect(d.blocks[2]!.text).not.toContain("BMF");

    // a numbered title is found with its number before its words alone; a number's dot is
    // optional; a title's hyphen may have been joined away with the line break it ended
    const second = await PDFDocument.create();
    const font2 = await second.embedFont(StandardFonts.Helvetica);
    const p2 = second.addPage([300, 400]);
    const lines2: [string, number][] = [
      ["Words about the harbour before the first section begins.", 380],
      ["2 Methods and Materials", 340],
      ["We measured the turbines.", 325],
      ["Table 1", 300],
      ["Methods", 288],
      ["A row of the table about methods.", 276],
      ["3. Results", 240],
      ["The turbines gave more at spring tides.", 228],
      ["Long-", 190],
      ["term Planning", 178],
      ["The harbour plans for fifty years.", 166],
    ];
    for (const [text, y] of lines2) p2.drawText(text, { x: 10, y, size: 7, font: font2 });
    flatOutline(second, p2, [["2 Methods", 330], ["3 Results", 245], ["Long-term Planning", 195]]);
    const d2 = await parse("numbered2.pdf", await second.save());
    expect(d2.blocks.map((b) => [b.loc.headings ?? null, b.text.split("\n")[0]])).toEqual([
      [null, "Words about the harbour before the first section begins."],
      [["2 Methods"], "2 Methods and Materials"],
      [["3 Results"], "3. Results"],
      [["Long-term Planning"], expect.stringMatching(/^Long-?$|^Longterm Planning$/)],
    ]);
    expect(d2.blocks[1]!.text).toContain("A row of the table about methods.");
  });

  test("PDF: an outline title crafted to make the title search backtrack does not stall the parse", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    const page = doc.addPage([600, 800]);
    for (let i = 0; i < 60; i++) page.drawText(Array.from({ length: 30 }, () => "a/").join(" ") + " x", { x: 5, y: 790 - i * 12, size: 6, font });
    // (with a line break allowed after each word's slash and between words alike, a line of
    // 24 such words took 18 s, and each word more doubles it)
    flatOutline(doc, page, [[Array.from({ length: 90 }, () => "a/").join(" ") + " z", 500]]);
    // Parsed in a process of its own, killed at a deadline: a regex that backtracks holds its
    // thread, so within this process no test timeout could stop it.
    const path = join(tmpdir(), `ragd-crafted-outline-${process.pid}.pdf`);
    writeFileSync(path, await doc.save());
    try {
      const script = `const { parseDocument } = await import(${JSON.stringify(join(import.meta.dir, "../src/ingest/parsers/index.ts"))});
        const { DEFAULT_PARSE_LIMITS } = await import(${JSON.stringify(join(import.meta.dir, "../src/ingest/types.ts"))});
        const d = await parseDocument({ bytes: new Uint8Array(await Bun.file(${JSON.stringify(path)}).arrayBuffer()), filename: "crafted.pdf", limits: DEFAULT_PARSE_LIMITS, progress() {}, ocr: { enabled: false }, natives: {} });
        console.log(JSON.stringify(d.blocks.map((b) => b.loc.headings ?? null)));`;
      const child = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "pipe" });
      const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
      const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
      clearTimeout(deadline);
      expect({ code, signal: child.signalCode }).toEqual({ code: 0, signal: null });
      expect(JSON.parse(out)).toEqual([null]);
    } finally {
      rmSync(path, { force: true });
    }
  }, 40_000);

  test("PDF: a stored file that cannot be read to its end fails the parse, not a page", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    for (const n of [1, 2, 3]) doc.addPage([300, 300]).drawText(`Page ${n} of a file the disk loses part of.`, { x: 10, y: 150, size: 8, font });
    const path = join(tmpdir(), `ragd-short-${process.pid}.pdf`);
    writeFileSync(path, await doc.save({ useObjectStreams: false }));
    try {
      const pdf = await PdfDocument.open(path);
      expect(pdf.text(1)).toContain("Page 1");
      truncateSync(path, 64);
      expect(pdf.text(3)).toBeNull();
      expect(pdf.readError()).toContain("ended at");
      pdf.close();
    } finally {
      rmSync(path, { force: true });
    }
  });

  test("PDF: each document is read by an engine of its own, which holds nothing of the document read before", async () => {
    const secret = "QUOKKA-SECRET-7731";
    const make = async (line: string) => {
      const doc = await PDFDocument.create();
      const font = await doc.embedFont(StandardFonts.Helvetica);
      doc.addPage([300, 300]).drawText(line, { x: 10, y: 150, size: 8, font });
      return new Uint8Array(await doc.save({ useObjectStreams: false }));
    };
    const first = await PdfDocument.open(await make(`A confidential line: ${secret}`));
    expect(first.text(1)).toContain(secret);
    first.close();
    const next = await PdfDocument.open(await make("Another project's document."));
    // the engine's memory, looked into from outside (PdfDocument keeps its engine private);
    // a shared engine still held the first page's characters here, in freed blocks
    const heap = (next as unknown as { lib: { pdfium: { HEAPU8: Uint8Array } } }).lib.pdfium.HEAPU8;
    const has = (needle: Uint8Array) => Buffer.from(heap.buffer, heap.byteOffset, heap.byteLength).indexOf(needle) >= 0;
    const wide = Buffer.alloc(secret.length * 4);
    for (let i = 0; i < secret.length; i++) wide.writeUInt32LE(secret.charCodeAt(i), i * 4);
    expect([has(new TextEncoder().encode(secret)), has(Buffer.from("SECRET", "utf16le")), has(wide)]).toEqual([false, false, false]);
    expect(next.text(1)).toContain("Another project");
    next.close();
  });

  test("PDF: a word broken by a hyphen at a line's end is joined; line ends are newlines", () => {
    expect(cleanPageText("The accom\uFFFEmodation was\r\nbooked. Well\uFFFEKnown  \r\nend")).toBe("The accommodation was\nbooked. Well-Known\nend");
    expect(cleanPageText("a hyphen-\nated word, and a dash -\nhere")).toBe("a hyphenated word, and a dash -\nhere");
    // read within the page's box, PDFium marks the same hyphen with U+0002
    expect(cleanPageText("detec\u0002tion of Jean\u0002Paul")).toBe("detection of Jean-Paul");
  });

  test("DOCX: heading path, table rows under their header", async () => {
    const d = await parse("handbook.docx");
    expect(find(d.blocks, "Parental leave is sixteen weeks").loc.headings).toEqual(["Employee Handbook", "Leave"]);
    expect(find(d.blocks, "Travel is reimbursed").loc.headings).toEqual(["Employee Handbook", "Expenses"]);
    const hotel = find(d.blocks, "Hotel");
    expect(hotel.text).toBe("Hotel | 150 EUR");
    expect(hotel.header).toBe("Item | Limit");
  });

  test("PPTX: slides in presentation order, tables, speaker notes, no slide-number chrome", async () => {
    const d = await parse("deck.pptx");
    expect(find(d.blocks, "Roadmap 2027").loc).toEqual({ slide: 1 });
    expect(find(d.blocks, "Launch the Berlin office").loc).toEqual({ slide: 1 });
    expect(find(d.blocks, "Sales | 9000").loc).toEqual({ slide: 2 });
    expect(find(d.blocks, "hiring freeze").text).toBe("Speaker notes: Mention the hiring freeze.");
    expect(find(d.blocks, "hiring freeze").loc).toEqual({ slide: 2 });
    expect(d.blocks.some((b) => b.text === "1")).toBe(false);
  });

  for (const ext of ["xlsx", "xls", "ods"]) {
    test(`${ext.toUpperCase()}: rows read with their header names, sheet and row numbers`, async () => {
      const d = await parse(`sales.${ext}`);
      expect(d.format as string).toBe(ext);
      expect(find(d.blocks, "EU")).toEqual({ text: "Region: EU, Revenue: 12, Manager: Ana", loc: { sheet: "Sales", rows: [4, 4] } });
      expect(find(d.blocks, "Austin")).toEqual({ text: "City: Austin, Staff: 25", loc: { sheet: "Offices", rows: [3, 3] } });
      expect(find(d.blocks, "Sales by region").loc.rows).toEqual([1, 1]);
    });
  }

  test("CSV and TSV: quoted fields, header names, row numbers", async () => {
    const csv = await parse("people.csv");
    expect(find(csv.blocks, "Ada")).toEqual({ text: "name: Ada, city: London, role: Engineer, senior", loc: { rows: [2, 2] } });
    const tsv = await parse("people.tsv");
    expect(find(tsv.blocks, "Grace")).toEqual({ text: "name: Grace, city: New York, role: Admiral", loc: { rows: [3, 3] } });
  });

  test("Markdown: heading path and line ranges; a fenced block stays whole", async () => {
    const d = await parse("guide.md");
    expect(find(d.blocks, "Use the tarball.").loc).toEqual({ lines: [7, 7], headings: ["Install", "Linux"] });
    expect(find(d.blocks, "tar xf").text).toBe("```sh\ntar xf ragd.tgz\n\n./ragd serve\n```");
    expect(find(d.blocks, "Call the API.").loc.headings).toEqual(["Usage"]);
  });

  test("Markdown and HTML: headings with closing #s; long runs of spaces inside a line are read in one pass", async () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    const md = await parse("h.md", enc("# Title ##\n\n## C# \t\nbody\n\n#  \n"));
    expect(md.blocks.map((b) => [b.text, b.loc.headings])).toEqual([["Title", ["Title"]], ["C", ["Title", "C"]], ["body", ["Title", "C"]]]);
    // each of these held the event loop for tens of seconds (the test's time limit catches it
    // when they end): a pattern tried every split of the spaces, in cubic or square time
    const few = " ".repeat(5_000);
    const heading = await parse("h.md", enc(`# a${few}b\n\nafter`));
    expect(heading.blocks[0]!.text).toBe(`a${few}b`);
    const many = " ".repeat(100_000);
    const paragraph = await parse("p.md", enc(`a${many}b\n`));
    expect(paragraph.blocks[0]!.text).toBe(`a${many}b`);
    const pre = await parse("p.html", enc(`<html><body><pre>a${many}b</pre></body></html>`));
    expect(pre.blocks[0]!.text).toBe(`a${many}b`);
  }, 10_000);

  test("PDF pages, RTF, subtitles and XML doctypes: runs of spaces, unclosed tags and doctypes are read in one pass", async () => {
    const many = " ".repeat(200_000);
    expect(cleanPageText(`a${many}b \r\nc`)).toBe(`a${many}b\nc`);
    const rtf = await parse("r.rtf", new TextEncoder().encode(`{\\rtf1\\ansi a${many}b \\par c}`));
    expect(rtf.blocks.map((b) => b.text).join("\n")).toContain(`a${many}b\nc`);
    const srt = await parse("s.srt", new TextEncoder().encode(`1\n00:00:01,000 --> 00:00:02,000\n${"<".repeat(100_000)}x <i>kept</i> {\\an8}too\n`));
    expect(srt.blocks[0]!.text).toEndWith("x kept too");
    const doctypes = "<!DOCTYPE x [".repeat(60_000);
    const xml = withoutDoctype(`<?xml version="1.0"?>${doctypes}<a>text</a>`);
    expect(xml.text).toEndWith("<a>text</a>");
    expect(withoutDoctype(`<!DOCTYPE d [ <!ENTITY co "Acme"> ]><a>&co;</a>`)).toEqual({ text: "<a>&co;</a>", entities: new Map([["co", "Acme"]]) });
  }, 10_000);

  test("text, code and JSON: paragraphs with line ranges", async () => {
    expect((await parse("notes.txt")).blocks).toEqual([
      { text: "First paragraph line one.\nLine two.", loc: { lines: [1, 2] } },
      { text: "Second paragraph.", loc: { lines: [4, 4] } },
    ]);
    const py = await parse("app.py");
    expect(py.format).toBe("code");
    expect(find(py.blocks, "print(greet").loc.lines).toEqual([5, 5]);
    expect((await parse("config.json")).blocks[0]!.loc.lines).toEqual([1, 4]);
  });

  test("encodings: cp1252 fallback and UTF-16 with BOM", async () => {
    expect((await parse("legacy.txt")).blocks[0]!.text).toBe("Price: € 5 at the café");
    expect((await parse("greeting-utf16.txt")).blocks[0]!.text).toBe("Grüße aus Köln");
  });

  test("HTML: no script, style or hidden text; entities decoded; header row repeated", async () => {
    const d = await parse("page.html");
    const all = d.blocks.map((b) => b.text).join("\n");
    expect(all).not.toContain("do not index");
    expect(all).not.toContain("hidden tracking");
    expect(all).not.toContain("color:red");
    expect(find(d.blocks, "password manager").text).toBe("Use a password manager & two-factor login.");
    expect(find(d.blocks, "password manager").loc.headings).toEqual(["Policies", "Security"]);
    expect(find(d.blocks, "Payroll")).toMatchObject({ text: "Payroll | HR", header: "System | Owner" });
  });

  test("EPUB: spine order and chapter titles from the table of contents", async () => {
    const d = await parse("book.epub");
    expect(d.blocks.map((b) => [b.text, b.loc.chapter])).toEqual([
      ["The ship left the harbour at dawn.", "The Departure"],
      ["Years later the captain came home.", "The Return"],
    ]);
  });

  test("SRT and VTT: cues with time ranges, markup stripped", async () => {
    expect((await parse("talk.srt")).blocks).toEqual([
      { text: "Welcome to the talk.", loc: { time: ["00:00:01.000", "00:00:03.500"] } },
      { text: "Today: vector search.", loc: { time: ["00:01:00.250", "00:01:02.000"] } },
    ]);
    expect((await parse("talk.vtt")).blocks).toEqual([
      { text: "Hello from VTT.", loc: { time: ["00:00:00.000", "00:00:02.000"] } },
      { text: "Second cue.", loc: { time: ["00:00:02.500", "00:00:04.000"] } },
    ]);
  });

  test("the content decides, not the extension", async () => {
    const pdf = readFileSync(join(DOCS, "report.pdf"));
    expect((await parse("report.txt", new Uint8Array(pdf))).format).toBe("pdf");
    expect((await parse("sheet.csv", new Uint8Array(readFileSync(join(DOCS, "sales.xlsx"))))).format).toBe("xlsx");
    expect(await failure("fake.pdf", strToU8("just some text, not a PDF"))).toContain("is named .pdf but its content is not a PDF");
  });

  test("text that starts like an image's magic bytes stays text (a SciFact title begins \"BMP-2\")", async () => {
    for (const head of ["BMP-2 signalling in the developing heart", "GIF8 is not a real image header"]) {
      const doc = await parse("abstract.txt", strToU8(`${head}\n\nThe second paragraph holds more words.`));
      expect(doc.format).toBe("text");
      expect(doc.blocks[0]!.text).toContain(head.slice(0, 4));
    }
  });
});

describe("bad input", () => {
  const zip = (files: Record<string, string | Uint8Array>) =>
    zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, typeof v === "string" ? strToU8(v) : v])));

  test("zip bomb: one entry expanding past the ratio limit", async () => {
    const bomb = zip({ "word/document.xml": new Uint8Array(50 * 1024 * 1024) });
    expect(await failure("bomb.docx", bomb)).toContain("zip bomb");
  });

  test("zip bomb: total expanded size past the limit", async () => {
    const entries: Record<string, Uint8Array> = { "ppt/presentation.xml": strToU8("<p:presentation/>") };
    for (let i = 0; i < 6; i++) entries[`ppt/media/blob${i}.bin`] = crypto.getRandomValues(new Uint8Array(64 * 1024));
    const small = { ...DEFAULT_PARSE_LIMITS, maxExpandedBytes: 256 * 1024 };
    const d = await parseDocument({ bytes: zip(entries), filename: "x.pptx", limits: small, progress: () => {}, ocr: OCR, natives: NATIVES });
    expect(d.format).toBe("pptx"); // media is never read, so never counted
    const docx: Record<string, Uint8Array> = { "word/document.xml": strToU8("<w:document/>") };
    for (let i = 0; i < 6; i++) docx[`word/media/${i}.bin`] = crypto.getRandomValues(new Uint8Array(64 * 1024));
    await expect(parseDocument({ bytes: zip(docx), filename: "x.docx", limits: small, progress: () => {}, ocr: OCR, natives: NATIVES })).rejects.toThrow("expands past");
  });

  test("zip entries: an empty one stored deflated with no bytes reads as empty; a bomb is stopped at the limit, not inflated whole", async () => {
    const { SafeZip } = await import("../src/ingest/zip");
    // stored (method 0) with no bytes, then marked deflated (8) in its local header and the directory, as some writers leave it
    const bytes = zip({ "word/document.xml": '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>kept</w:t></w:r></w:p></w:body></w:document>', "word/empty.xml": [new Uint8Array(0), { level: 0 }] as unknown as Uint8Array });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i + 4 <= bytes.length; i++) {
      const sig = dv.getUint32(i, true);
      const name = (at: number, len: number) => new TextDecoder().decode(bytes.subarray(at, at + len));
      if (sig === 0x04034b50 && name(i + 30, dv.getUint16(i + 26, true)) === "word/empty.xml") dv.setUint16(i + 8, 8, true);
      if (sig === 0x02014b50 && name(i + 46, dv.getUint16(i + 28, true)) === "word/empty.xml") dv.setUint16(i + 10, 8, true);
    }
    const z = new SafeZip(bytes, DEFAULT_PARSE_LIMITS);
    expect(z.read("word/empty.xml")).toEqual(new Uint8Array(0));
    expect((await parseDocument({ bytes, filename: "x.docx", limits: DEFAULT_PARSE_LIMITS, progress: () => {}, ocr: OCR, natives: NATIVES })).blocks[0]!.text).toBe("kept");
    // 128 MB of zeros, about 128 KB deflated: refused past the 1 MB part limit having inflated about that much
    const bomb = new SafeZip(zip({ "a.xml": new Uint8Array(128 * 1024 ** 2) }), DEFAULT_PARSE_LIMITS);
    const before = process.memoryUsage().rss;
    expect(() => bomb.read("a.xml", 1024 ** 2)).toThrow('"a.xml" is larger than the 1 MB this server reads for such a part');
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 ** 2);
  });

  test("zip with too many entries", async () => {
    const entries: Record<string, string> = { "word/document.xml": "<w:document/>" };
    for (let i = 0; i < 60; i++) entries[`f${i}`] = "x";
    const limits = { ...DEFAULT_PARSE_LIMITS, maxZipEntries: 50 };
    await expect(parseDocument({ bytes: zip(entries), filename: "x.docx", limits, progress: () => {}, ocr: OCR, natives: NATIVES })).rejects.toThrow("entries, past the limit");
  });

  test("XML entity expansion (billion laughs) is not expanded", async () => {
    const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"><!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"><!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"><!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"><!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"><!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>`;
    const A = `xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`;
    const pptx = zip({
      "ppt/presentation.xml": `<p:presentation ${A}><p:sldIdLst><p:sldId r:id="rId1"/></p:sldIdLst></p:presentation>`,
      "ppt/_rels/presentation.xml.rels": `<Relationships><Relationship Id="rId1" Type="x/slide" Target="slides/slide1.xml"/></Relationships>`,
      "ppt/slides/slide1.xml": `${lol}<p:sld ${A}><p:sp><p:txBody><a:p><a:r><a:t>safe &lol9; text</a:t></a:r></a:p></p:txBody></p:sp></p:sld>`,
    });
    const d = await parse("lol.pptx", pptx);
    expect(d.blocks[0]!.text.length).toBeLessThan(100);
    expect(d.blocks[0]!.text).toContain("safe");
    const docx = zip({
      "word/document.xml": `${lol}<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>safe &lol9; text</w:t></w:r></w:p></w:body></w:document>`,
    });
    let text = "";
    try {
      text = (await parse("lol.docx", docx)).blocks.map((b) => b.text).join("");
    } catch (e) {
      expect(e).toBeInstanceOf(ParseError);
    }
    expect(text.length).toBeLessThan(100);
  });

  test("a DOCTYPE's internal subset is not text: no ']>' leftovers, declared plain entities expanded once", async () => {
    const doctype = `<?xml version="1.0"?>\n<!DOCTYPE html [\n  <!ENTITY company "Acme Corp">\n  <!ENTITY nested "&company; &company;">\n]>\n`;
    const html = await parse("page.xhtml", strToU8(`${doctype}<html><body><p>Made by &company; &amp; friends &nested;.</p></body></html>`));
    expect(html.blocks.map((b) => b.text)).toEqual(["Made by Acme Corp & friends ."]);
    const A = `xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`;
    const pptx = zip({
      "ppt/presentation.xml": `<p:presentation ${A}><p:sldIdLst><p:sldId r:id="rId1"/></p:sldIdLst></p:presentation>`,
      "ppt/_rels/presentation.xml.rels": `<Relationships><Relationship Id="rId1" Type="x/slide" Target="slides/slide1.xml"/></Relationships>`,
      "ppt/slides/slide1.xml": `${doctype}<p:sld ${A}><p:sp><p:txBody><a:p><a:r><a:t>Quarterly plan of &company;</a:t></a:r></a:p></p:txBody></p:sp></p:sld>`,
    });
    const d = await parse("plan.pptx", pptx);
    expect(d.blocks.map((b) => b.text).join("\n")).toBe("Quarterly plan of Acme Corp");
  });

  test("an ODS whose repeat attributes ask for billions of cells is refused before it is expanded", async () => {
    const ns = `xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"`;
    const ods = (rows: string) =>
      zipSync({
        mimetype: [strToU8("application/vnd.oasis.opendocument.spreadsheet"), { level: 0 }],
        "META-INF/manifest.xml": strToU8(`<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>`),
        "content.xml": strToU8(`<?xml version="1.0"?><office:document-content ${ns}><office:body><office:spreadsheet><table:table table:name="S">${rows}</table:table></office:spreadsheet></office:body></office:document-content>`),
      });
    const bomb = ods(`<table:table-row table:number-rows-repeated="1048576"><table:table-cell table:number-columns-repeated="1024" office:value-type="string"><text:p>boom</text:p></table:table-cell></table:table-row>`);
    expect(bomb.length).toBeLessThan(1000);
    expect(await failure("bomb.ods", bomb)).toContain("more than 2,000,000 cells");
    // LibreOffice writes a million empty trailing rows into every sheet: those are fine.
    const normal = ods(
      `<table:table-row><table:table-cell office:value-type="string"><text:p>Region</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>Revenue</text:p></table:table-cell></table:table-row>` +
        `<table:table-row><table:table-cell office:value-type="string"><text:p>EU</text:p></table:table-cell><table:table-cell office:value-type="float" office:value="12"><text:p>12</text:p></table:table-cell><table:table-cell table:number-columns-repeated="1022"/></table:table-row>` +
        `<table:table-row table:number-rows-repeated="1048574"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>`,
    );
    expect((await parse("normal.ods", normal)).blocks.map((b) => b.text)).toEqual(["Region: EU, Revenue: 12"]);
  });

  test("a sheet whose declared range is vast and empty is read by its stored cells", async () => {
    const cell = (ref: string, v: string) => `<c r="${ref}" t="inlineStr"><is><t>${v}</t></is></c>`;
    const sheet = `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData>` +
      `<row r="1">${cell("A1", "Name")}${cell("B1", "Note")}</row><row r="2">${cell("A2", "first")}${cell("B2", "near")}</row>` +
      `<row r="1048576">${cell("XFD1048576", "far corner")}</row></sheetData></worksheet>`;
    const R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const xlsx = zip({
      "[Content_Types].xml": `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`,
      "_rels/.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="${R}/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
      "xl/workbook.xml": `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="${R}"><sheets><sheet name="Vast" sheetId="1" r:id="rId1"/></sheets></workbook>`,
      "xl/_rels/workbook.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="${R}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
      "xl/worksheets/sheet1.xml": sheet,
    });
    const d = await parse("vast.xlsx", xlsx);
    expect(d.blocks.map((b) => b.text)).toEqual(["Name: first, Note: near", "Column XFD: far corner"]);
    expect(d.blocks.at(-1)!.loc).toEqual({ sheet: "Vast", rows: [1048576, 1048576] });
  });

  test("a DOCX whose text part is larger than a DOM of it can hold is refused with that reason", async () => {
    // Varied words, so the part compresses like prose (far under the 200x bomb ratio).
    const words = Array.from({ length: 300_000 }, (_, i) => ((i * 2654435761) >>> 0).toString(36).slice(0, 6)).join(" ");
    const docx = zip({ "word/document.xml": `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>${words}</w:t></w:r></w:p></w:body></w:document>` });
    const limits = { ...DEFAULT_PARSE_LIMITS, maxDomXmlBytes: 1024 * 1024 };
    await expect(parseDocument({ bytes: docx, filename: "huge.docx", limits, progress: () => {}, ocr: OCR, natives: NATIVES })).rejects.toThrow(
      /"word\/document\.xml" expands to 2 MB of XML, past the 1 MB this server reads into memory/,
    );
  });

  test("a text file past the per-document text limit is refused before it is parsed", async () => {
    const limits = { ...DEFAULT_PARSE_LIMITS, maxTextChars: 1_000_000 };
    const big = strToU8("a,b\n" + "x".repeat(2_000_000));
    await expect(parseDocument({ bytes: big, filename: "one-line.csv", limits, progress: () => {}, ocr: OCR, natives: NATIVES })).rejects.toThrow(
      "the document holds more than 1 million characters of text",
    );
  });

  test("encrypted Office file (an OLE container under a .docx name)", async () => {
    const ole = new Uint8Array(4096);
    ole.set([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
    expect(await failure("secret.docx", ole)).toBe("the file is password-protected");
    expect(await failure("secret.xlsx", ole)).toBe("the file is password-protected");
  });

  test("truncated PDF and corrupt zip", async () => {
    const pdf = new Uint8Array(readFileSync(join(DOCS, "report.pdf")));
    const cut = await parse("cut.pdf", pdf.subarray(0, 600)).then(
      (d) => d.blocks.length,
      (e) => (expect(e).toBeInstanceOf(ParseError), -1),
    );
    expect(cut).toBeLessThan(3);
    const docx = new Uint8Array(readFileSync(join(DOCS, "handbook.docx")));
    expect(await failure("cut.docx", docx.subarray(0, docx.length - 300))).toMatch(/zip|corrupt/);
  });

  test("empty, image, archive and binary files say what is wrong", async () => {
    expect(await failure("empty.txt", new Uint8Array())).toBe("the file is empty");
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
    expect(await failure("scan.png", png)).toStartWith("the image could not be read; it may be corrupt or truncated");
    expect(await failure("stuff.zip", zip({ "a.txt": "hello" }))).toContain("archives are not unpacked");
    const bin = crypto.getRandomValues(new Uint8Array(4096));
    bin.set([0, 1, 0, 0]); // no BOM or magic number by chance
    expect(await failure("blob.dat", bin)).toContain("Supported formats: PDF, DOCX");
  });
});
