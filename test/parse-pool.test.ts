// Parse processes: formats read by our own code and PDF (an engine instance per document) reuse
// theirs, any other format a third-party library reads gets a fresh process, a dead process is
// never reused, and a document past the memory ceiling is stopped with that reason while the
// server (this test process) is untouched.
import { afterAll, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { MemoryExceeded, ParseProcessPool, residentBytes, type Outcome, type ParseProcess } from "../src/ingest/parse-pool";
import { parseCommand } from "../src/ingest/parse-command";
import type { ParseRequest } from "../src/ingest/parse-child";
import type { Format } from "../src/ingest/parsers/index";
import { resolveChunking } from "../src/ingest/chunker";
import { DEFAULT_PARSE_LIMITS } from "../src/ingest/types";
import { nativePaths } from "../src/native/assets";
import { ocrSettings } from "../src/server";
import { defaults } from "../src/config";
import { cleanup, tempDir } from "./helpers/ragd";

const dir = tempDir();
const pool = new ParseProcessPool({ command: parseCommand(), max: 2, memoryLimit: 256 * 1024 ** 2 });
afterAll(async () => {
  await pool.close();
  cleanup(dir);
});

function parse(p: ParseProcess, filename: string, bytes: Uint8Array | string): Promise<Outcome> {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(path, bytes);
  return new Promise((resolve) => {
    p.handler = (m) => {
      if (m instanceof Error || m.type !== "progress") resolve(m);
    };
    const req: ParseRequest = {
      path, filename, limits: DEFAULT_PARSE_LIMITS, chunking: resolveChunking({ type: "auto" }, 256), tokenizer: { kind: "approximate" },
      ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }), natives: nativePaths("/nonexistent"),
    };
    void pool.send(p, req);
  });
}
const formatOf = (o: Outcome) => (o instanceof Error || o.type !== "done" ? null : (o.format as Format));

test("a process that read text or a PDF serves the next file; one that read a DOCX is killed", async () => {
  const a = pool.acquire();
  const first = await parse(a, "a.txt", "First file about granite quarries.");
  expect(formatOf(first)).toBe("text");
  pool.release(a, formatOf(first));
  const b = pool.acquire();
  expect(b).toBe(a);
  const second = await parse(b, "b.md", "# Heading\n\nSecond file about basalt.");
  expect(second).toMatchObject({ type: "done", format: "markdown" });
  expect(JSON.stringify(second)).not.toContain("granite");
  const pdf = await parse(b, "report.pdf", await Bun.file(join(import.meta.dir, "fixtures/docs/report.pdf")).bytes());
  expect(formatOf(pdf)).toBe("pdf");
  pool.release(b, formatOf(pdf));
  const c = pool.acquire();
  expect(c).toBe(b);
  const docx = await parse(c, "handbook.docx", await Bun.file(join(import.meta.dir, "fixtures/docs/handbook.docx")).bytes());
  expect(formatOf(docx)).toBe("docx");
  pool.release(c, formatOf(docx));
  expect(await c.proc.exited).not.toBe(0);
  const d = pool.acquire();
  expect(d).not.toBe(c);
  pool.release(d, null);
});

test("a process holding more memory than the reuse limit after its file is ended, not reused", async () => {
  const strict = new ParseProcessPool({ command: parseCommand(), max: 2, memoryLimit: 256 * 1024 ** 2, reuseBelow: 1024 });
  try {
    const p = strict.acquire();
    const out = await new Promise<Outcome>((resolve) => {
      p.handler = (m) => {
        if (m instanceof Error || m.type !== "progress") resolve(m);
      };
      const path = join(dir, "small.txt");
      writeFileSync(path, "A small text file about granite.");
      void strict.send(p, { path, filename: "small.txt", limits: DEFAULT_PARSE_LIMITS, chunking: resolveChunking({ type: "auto" }, 256), tokenizer: { kind: "approximate" }, ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }), natives: nativePaths("/nonexistent") });
    });
    expect(formatOf(out)).toBe("text");
    strict.release(p, formatOf(out));
    expect(await p.proc.exited).not.toBe(0);
    expect(strict.acquire()).not.toBe(p);
  } finally {
    await strict.close();
  }
});

test("a failed parse is never reused", async () => {
  const p = pool.acquire();
  const out = await parse(p, "empty.txt", new Uint8Array(0));
  expect(out).toMatchObject({ type: "failed" });
  pool.release(p, formatOf(out));
  expect(pool.acquire()).not.toBe(p);
});

test("a process that grows past the memory ceiling is killed and its document told why", async () => {
  // A single 300 MB line: past the 256 MB ceiling while it is read and cut into chunks.
  const line = "x".repeat(300 * 1024 * 1024);
  const p = pool.acquire();
  const out = await parse(p, "one-line.txt", line);
  expect(out).toBeInstanceOf(MemoryExceeded);
  expect((out as Error).message).toMatch(/needs more than 256 MiB of memory/);
  expect(await p.proc.exited).not.toBe(0);
  expect(residentBytes(p.proc.pid)).toBe(0);
  pool.discard(p);
});

test("a process taken but never given a file goes back to the idle ones as it was", async () => {
  // a pool of its own, so no other test's idle processes are in the way
  const own = new ParseProcessPool({ command: parseCommand(), max: 2, memoryLimit: 256 * 1024 ** 2 });
  try {
    const spare = own.acquire();
    await spare.ready;
    own.giveBack(spare);
    expect(spare.dead).toBe(false);
    expect(own.size).toBe(1);
    const next = own.acquire();
    expect(next.proc.pid).toBe(spare.proc.pid);
  } finally {
    await own.close();
  }
});

test("small plain text read by the server itself comes out as a parse process reads it", async () => {
  const { parseInline } = await import("../src/ingest/parse-inline");
  const texts: [string, string][] = [
    ["notes.txt", "First paragraph about the vector index.\n\nSecond one, longer: ".padEnd(3000, "words and more words ") + "\n\nLast."],
    ["guide.md", "# Install\n\nRun `make`.\n\n## Search\n\nHybrid ranking, BM25 and cosine.\n\n```\ncode stays whole\n```\n"],
    ["latin1.txt", Buffer.from("caf\xe9 na\xefve r\xe9sum\xe9 ".repeat(40), "latin1").toString("latin1")],
    ["empty.txt", " \n\n "],
  ];
  for (const [filename, text] of texts) {
    const bytes = filename === "latin1.txt" ? Buffer.from(text, "latin1") : Buffer.from(text);
    const p = pool.acquire();
    const viaProcess = await parse(p, filename, bytes);
    pool.release(p, formatOf(viaProcess));
    const request = { limits: DEFAULT_PARSE_LIMITS, ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }), natives: nativePaths("/nonexistent") };
    const inline = await parseInline({ bytes, filename, ...request }, resolveChunking({ type: "auto" }, 256), { kind: "approximate" });
    expect(inline).toEqual(viaProcess as typeof inline);
    if (filename !== "empty.txt") expect(inline.type === "done" && inline.chunks.length).toBeGreaterThan(0);
  }
});

/**
 * A PDF of `streamMiB` MiB, nearly all of it one stream no page draws (as an attachment or a
 * font can be), and one page of text. Written in pieces, so this process never holds it.
 */
function pdfWithLargeStream(path: string, streamMiB: number) {
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R /Blob 6 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    null, // the page's content stream
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    null, // the large stream
  ];
  const content = "BT /F1 10 Tf 20 150 Td (The only page names the pumping station at Zeebrugge.) Tj ET";
  const fd = openSync(path, "w");
  let at = 0;
  const put = (s: string | Uint8Array) => (at += writeSync(fd, typeof s === "string" ? Buffer.from(s, "latin1") : s));
  const offsets: number[] = [];
  put("%PDF-1.4\n");
  objects.forEach((o, i) => {
    offsets.push(at);
    put(`${i + 1} 0 obj\n`);
    if (i === 3) put(`<< /Length ${content.length} >>\nstream\n${content}\nendstream\n`);
    else if (i === 5) {
      const piece = new Uint8Array(1024 * 1024).fill(0x41);
      put(`<< /Length ${streamMiB * piece.length} >>\nstream\n`);
      for (let n = 0; n < streamMiB; n++) put(piece);
      put("\nendstream\n");
    } else put(`${o}\n`);
    put("endobj\n");
  });
  const xref = at;
  put(`xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`);
  put(`trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  closeSync(fd);
}

test("a PDF is read from its file as PDFium asks: a parse process never holds the whole of a large one", async () => {
  const path = join(dir, "large-stream.pdf");
  pdfWithLargeStream(path, 192);
  // A parse process starts at well under 128 MiB; reading the file whole would pass 192.
  const tight = new ParseProcessPool({ command: parseCommand(), max: 1, memoryLimit: 160 * 1024 ** 2 });
  try {
    const p = tight.acquire();
    const out = await new Promise<Outcome>((resolve) => {
      p.handler = (m) => {
        if (m instanceof Error || m.type !== "progress") resolve(m);
      };
      void tight.send(p, {
        path, filename: "large.pdf", limits: DEFAULT_PARSE_LIMITS, chunking: resolveChunking({ type: "auto" }, 256), tokenizer: { kind: "approximate" },
        ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }), natives: nativePaths("/nonexistent"),
      });
    });
    expect(out).toMatchObject({ type: "done", format: "pdf" });
    expect(JSON.stringify(out)).toContain("pumping station at Zeebrugge");
  } finally {
    await tight.close();
    rmSync(path, { force: true });
  }
}, 60_000);

test("a stored file the parse process cannot read is the server's trouble, tried again later, not the document's error", async () => {
  for (const filename of ["gone.pdf", "gone.docx"]) {
    const p = pool.acquire();
    const out = await new Promise<Outcome>((resolve) => {
      p.handler = (m) => {
        if (m instanceof Error || m.type !== "progress") resolve(m);
      };
      void pool.send(p, {
        path: join(dir, `missing-${filename}`), filename, limits: DEFAULT_PARSE_LIMITS, chunking: resolveChunking({ type: "auto" }, 256), tokenizer: { kind: "approximate" },
        ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }), natives: nativePaths("/nonexistent"),
      });
    });
    expect(out).toMatchObject({ type: "failed", code: "server_error", retry: true });
    expect((out as { message: string }).message).toStartWith("could not read the stored file: ");
    pool.release(p, null);
  }
});

test("a range reader keeps its PDF open between ranges and lets go of it when told it is done", async () => {
  const path = join(dir, "ranges.pdf");
  writeFileSync(path, await Bun.file(join(import.meta.dir, "fixtures/docs/report.pdf")).bytes());
  const p = pool.acquire();
  const holds = () => readdirSync(`/proc/${p.proc.pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${p.proc.pid}/fd/${fd}`) === path;
    } catch {
      return false;
    }
  });
  try {
    const out = await new Promise<Outcome>((resolve) => {
      p.handler = (m) => {
        if (m instanceof Error || m.type !== "progress") resolve(m);
      };
      void pool.send(p, {
        path, filename: "ranges.pdf", limits: DEFAULT_PARSE_LIMITS, chunking: resolveChunking({ type: "auto" }, 256), tokenizer: { kind: "approximate" },
        ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }), natives: nativePaths("/nonexistent"), pages: { from: 1, to: 1 },
      });
    });
    expect(out).toMatchObject({ type: "part" });
    expect(holds()).toBe(true);
    await pool.send(p, { close: true });
    const until = Date.now() + 5_000;
    while (holds() && Date.now() < until) await Bun.sleep(10);
    expect(holds()).toBe(false);
    pool.release(p, "pdf");
  } finally {
    rmSync(path, { force: true });
  }
});
