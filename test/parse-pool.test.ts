// Parse processes: formats read by our own code reuse theirs, any format a third-party library
// reads gets a fresh process, a dead process is never reused, and a document past the memory
// ceiling is stopped with that reason while the server (this test process) is untouched.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
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

test("a process that read text serves the next file; one that read a PDF is killed", async () => {
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
  expect(await b.proc.exited).not.toBe(0);
  const c = pool.acquire();
  expect(c).not.toBe(b);
  pool.release(c, null);
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
