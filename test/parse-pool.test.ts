// Which parse workers serve another file: formats read by our own code reuse theirs, any
// format a third-party library reads gets a fresh worker, and a dead worker is never reused.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ParseWorkerPool, type Outcome, type ParseWorker } from "../src/ingest/parse-pool";
import type { ParseRequest } from "../src/ingest/parse-worker";
import type { Format } from "../src/ingest/parsers/index";
import { resolveChunking } from "../src/ingest/chunker";
import { DEFAULT_PARSE_LIMITS } from "../src/ingest/types";
import { nativePaths } from "../src/native/assets";
import { ocrSettings } from "../src/server";
import { defaults } from "../src/config";

const URL_ = new URL("../src/ingest/parse-worker.ts", import.meta.url).href;
const pool = new ParseWorkerPool(URL_, 2);
afterAll(() => pool.close());

function parse(w: ParseWorker, filename: string, bytes: Uint8Array): Promise<Outcome> {
  return new Promise((resolve) => {
    w.handler = (m) => {
      if (m instanceof Error || m.type !== "progress") resolve(m);
    };
    const req: ParseRequest = {
      bytes, filename, limits: DEFAULT_PARSE_LIMITS, chunking: resolveChunking({ type: "auto" }, 256), tokenizer: { kind: "approximate" },
      ocr: ocrSettings({ ...defaults(), dataDir: "/nonexistent" }), guard: w.guard, natives: nativePaths("/nonexistent"),
    };
    w.worker.postMessage(req);
  });
}
const text = (s: string) => new TextEncoder().encode(s);
const formatOf = (o: Outcome) => (o instanceof Error || o.type !== "done" ? null : (o.format as Format));

test("a worker that read text serves the next file; one that read a PDF is terminated", async () => {
  const a = pool.acquire();
  const first = await parse(a, "a.txt", text("First file about granite quarries."));
  expect(formatOf(first)).toBe("text");
  pool.release(a, formatOf(first));
  const b = pool.acquire();
  expect(b).toBe(a);
  const second = await parse(b, "b.md", text("# Heading\n\nSecond file about basalt."));
  expect(second).toMatchObject({ type: "done", format: "markdown" });
  expect(JSON.stringify(second)).not.toContain("granite");
  const pdf = await parse(b, "report.pdf", new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/docs/report.pdf"))));
  expect(formatOf(pdf)).toBe("pdf");
  let closed = false;
  b.worker.addEventListener("close", () => (closed = true));
  pool.release(b, formatOf(pdf));
  for (let i = 0; i < 100 && !closed; i++) await Bun.sleep(20);
  expect(closed).toBe(true);
  expect(pool.acquire()).not.toBe(b);
});

test("a failed parse is never reused", async () => {
  const w = pool.acquire();
  const out = await parse(w, "empty.txt", new Uint8Array(0));
  expect(out).toMatchObject({ type: "failed" });
  pool.release(w, formatOf(out));
  expect(pool.acquire()).not.toBe(w);
});
