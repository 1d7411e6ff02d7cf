// Ingestion end to end: real server process, official SDK, real parsers in Bun Workers,
// results checked in the SQLite file the server wrote.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { strToU8, zipSync } from "fflate";
import { Database } from "bun:sqlite";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as XLSX from "xlsx";
import { bigPdf, FIXTURES, fixture, stored } from "./helpers/docs";
import { buildPdf } from "./fixtures/build";
import { cleanup, startRagd, tempDir, type Ragd } from "./helpers/ragd";

/** Processes whose parent is `pid`, from /proc. */
function childPids(pid: number): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return Number(/PPid:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, "utf8"))?.[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const waitFor = async (what: string | (() => string), check: () => Promise<boolean>, ms = 30_000) => {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await Bun.sleep(50);
  }
};

describe("ingestion", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd({ args: ["--ingest-lease", "2"] });
  });
  afterAll(async () => {
    await ragd.stop();
    cleanup(ragd.dataDir);
  });

  test("every fixture format reaches processed, with located chunks", async () => {
    const client = ragd.client();
    const names = readdirSync(FIXTURES);
    const files = await Promise.all(names.map((n) => client.files.create({ file: fixture(n), purpose: "assistants" })));
    for (const f of files) expect(f.status).toBe("uploaded");
    const done = await Promise.all(files.map((f) => client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 })));
    for (const f of done) {
      expect(`${f.filename}: ${f.status} ${f.status_details}`).toBe(`${f.filename}: processed null`);
      const s = stored(ragd.dataDir, f.id);
      expect(s.chunks.length).toBeGreaterThan(0);
      expect(s.job).toBeNull();
      // A chunk is its slice of the document text, after its table header when it has one.
      for (const c of s.chunks) expect(c.text.endsWith(s.doc!.text.slice(c.char_start, c.char_end))).toBe(true);
    }
    const byName = (n: string) => stored(ragd.dataDir, done.find((f) => f.filename === n)!.id);
    // pages of a short PDF share chunks; every chunk says which pages it spans
    const span = (l: { page?: number; pages?: [number, number] }) => l.pages ?? [l.page!, l.page!];
    const pdf = byName("report.pdf").chunks.map((c) => span(c.location as never));
    expect(pdf[0]![0]).toBe(1);
    expect(pdf.at(-1)![1]).toBe(3);
    expect(pdf.some(([a, b]) => b > a)).toBe(true);
    expect(byName("deck.pptx").chunks.map((c) => c.location)).toEqual([{ slide: 1 }, { slide: 2 }]);
    expect(byName("sales.xlsx").chunks.map((c) => c.location)).toEqual([{ sheet: "Sales", rows: [1, 5] }, { sheet: "Offices", rows: [2, 3] }]);
    expect(byName("sales.xlsx").chunks[0]!.text).toContain("Region: EU, Revenue: 12, Manager: Ana");
    expect(byName("talk.srt").chunks[0]!.location).toEqual({ time: ["00:00:01.000", "00:01:02.000"] });
  });

  test("bad files end in error with a reason; the server and other files are unaffected", async () => {
    const client = ragd.client();
    const ole = new Uint8Array(4096);
    ole.set([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
    const bomb = zipSync({ "word/document.xml": new Uint8Array(40 * 1024 * 1024) });
    const cases: [File, RegExp][] = [
      [new File([ole], "locked.docx"), /^the file is password-protected$/],
      [new File([bomb], "bomb.docx"), /zip bomb/],
      [new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])], "scan.png"), /^the image could not be read; it may be corrupt/],
      [new File(["   \n\n\t  \n"], "blank.txt"), /^no text found/],
      [new File(["not a pdf at all"], "liar.pdf"), /named \.pdf but its content is not a PDF/],
      [new File([zipSync({ "a.txt": strToU8("hi") })], "bundle.zip"), /archives are not unpacked/],
      [new File([(await fixture("report.pdf").bytes()).slice(0, 400)], "truncated.pdf"), /corrupt|no text found/],
    ];
    const good = await client.files.create({ file: fixture("notes.txt"), purpose: "user_data" });
    const uploaded = await Promise.all(cases.map(([file]) => client.files.create({ file, purpose: "knowledge_base" as "assistants" })));
    for (let i = 0; i < cases.length; i++) {
      const f = await client.files.waitForProcessing(uploaded[i]!.id, { pollInterval: 100, maxWait: 60_000 });
      expect(f.status).toBe("error");
      expect(f.status_details ?? "").toMatch(cases[i]![1]);
      expect(stored(ragd.dataDir, f.id).chunks).toHaveLength(0);
    }
    expect((await client.files.waitForProcessing(good.id, { pollInterval: 100 })).status).toBe("processed");
    expect((await fetch(`${ragd.url}/health`)).status).toBe(200);
  });

  test("files of other purposes are not ingested", async () => {
    const client = ragd.client();
    const f = await client.files.create({ file: new File([`{"a":1}\n`], "b.jsonl"), purpose: "batch" });
    expect(f.status).toBe("processed");
    expect(stored(ragd.dataDir, f.id)).toEqual({ chunks: [], doc: null, job: null });
  });

  test("a crafted spreadsheet (__proto__ keys) is parsed in a throwaway worker and cannot touch the server", async () => {
    const wb = XLSX.utils.book_new();
    XLSX.utils.book_append_sheet(wb, XLSX.utils.aoa_to_sheet([["__proto__", "constructor", "prototype"], ["{\"polluted\":1}", "x", "y"]]), "__proto__");
    wb.Props = { Title: "__proto__" } as XLSX.FullProperties;
    const bytes = XLSX.write(wb, { type: "buffer", bookType: "xlsx" });
    const client = ragd.client();
    const f = await client.files.create({ file: new File([bytes], "crafted.xlsx"), purpose: "assistants" });
    const done = await client.files.waitForProcessing(f.id, { pollInterval: 100 });
    // The dangerous names come out as plain text, under their sheet, not as object keys.
    expect(done.status).toBe("processed");
    const crafted = stored(ragd.dataDir, f.id).chunks;
    expect(crafted[0]!.text).toBe('__proto__: {"polluted":1}, constructor: x, prototype: y');
    expect(crafted[0]!.location).toEqual({ sheet: "__proto__", rows: [2, 2] });
    // The server still answers and still parses the next spreadsheet correctly.
    const next = await client.files.waitForProcessing((await client.files.create({ file: fixture("sales.xlsx"), purpose: "assistants" })).id, { pollInterval: 100 });
    expect(next.status).toBe("processed");
    expect(stored(ragd.dataDir, next.id).chunks[0]!.text).toContain("Region: EU");
  });

  test("progress in status_details and openai-poll-after-ms while a large PDF is parsed", async () => {
    const client = ragd.client();
    // Long enough that its parse outlasts a few heartbeats (every 0.67 s at this lease) even
    // when every parse process reads a range of it.
    const f = await client.files.create({ file: new File([await bigPdf(600)], "big.pdf"), purpose: "assistants" });
    let sawProgress = "";
    await waitFor("progress", async () => {
      const { data, response } = await client.files.retrieve(f.id).withResponse();
      if (data.status === "uploaded") expect(response.headers.get("openai-poll-after-ms")).toBe("1000");
      if (/^parsing page \d+ of 600$/.test(data.status_details ?? "")) sawProgress = data.status_details!;
      return sawProgress !== "" || data.status !== "uploaded";
    });
    expect(sawProgress).toMatch(/^parsing page \d+ of 600$/);
    const done = await client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
    expect(done.status).toBe("processed");
    expect(done.status_details).toBeNull();
    const { chunks } = stored(ragd.dataDir, f.id);
    expect(chunks.at(-1)!.location).toEqual({ page: 600 });
    expect(chunks.map((c) => c.idx)).toEqual(chunks.map((_, i) => i));
  });

  test("a document read by a library that reports no progress of its own says 'parsing' while it is read", async () => {
    const W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"';
    const paras = Array.from({ length: 40_000 }, (_, i) => `<w:p><w:r><w:t>Paragraph ${i} on granite, basalt and slate quarries.</w:t></w:r></w:p>`).join("");
    const docx = zipSync({
      "[Content_Types].xml": strToU8(`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`),
      "_rels/.rels": strToU8(`<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`),
      "word/document.xml": strToU8(`<w:document ${W}><w:body>${paras}</w:body></w:document>`),
    });
    const client = ragd.client();
    const f = await client.files.create({ file: new File([docx], "long.docx"), purpose: "assistants" });
    const seen = new Set<string>();
    await waitFor("the parse to end", async () => {
      const r = await client.files.retrieve(f.id);
      if (r.status_details) seen.add(r.status_details);
      return r.status !== "uploaded" || /^(chunking|embedding)/.test(r.status_details ?? "");
    });
    expect(seen.has("parsing")).toBe(true);
    await client.files.delete(f.id);
  });

  test("deleting a file while it is ingested cancels the job and leaves nothing behind", async () => {
    const client = ragd.client();
    const f = await client.files.create({ file: new File([await bigPdf(600)], "doomed.pdf"), purpose: "assistants" });
    // (a file the tests before left ingesting may hold the queue a while; the last state seen
    // is named if it never starts)
    let last = "";
    await waitFor(
      () => `parsing to start (last seen: ${last})`,
      async () => {
        const r = await client.files.retrieve(f.id);
        last = `${r.status} ${r.status_details}`;
        return r.status === "uploaded" && /^(parsing|chunking|embedding)/.test(r.status_details ?? "");
      },
      60_000,
    );
    expect(await client.files.delete(f.id)).toEqual({ id: f.id, object: "file", deleted: true });
    await Bun.sleep(300);
    expect(stored(ragd.dataDir, f.id)).toEqual({ chunks: [], doc: null, job: null });
    expect(await client.files.retrieve(f.id).then(() => null, (e) => e.status)).toBe(404);
    // The slot is free again: a new file goes through.
    const next = await client.files.create({ file: fixture("notes.txt"), purpose: "assistants" });
    expect((await client.files.waitForProcessing(next.id, { pollInterval: 100 })).status).toBe("processed");
    await Bun.sleep(2500);
    expect(stored(ragd.dataDir, f.id)).toEqual({ chunks: [], doc: null, job: null });
  }, 120_000);
});

describe("ingestion across crashes", () => {
  test("kill -9 in the middle of a large PDF: after restart the file ends processed, with no duplicate chunks", async () => {
    let ragd = await startRagd({ args: ["--ingest-lease", "2"] });
    const dataDir = ragd.dataDir;
    try {
      const client = ragd.client();
      const f = await client.files.create({ file: new File([await bigPdf(200)], "big.pdf"), purpose: "assistants" });
      await waitFor("parsing or embedding to be under way", async () => /^(parsing page|embedding chunk) \d+/.test((await client.files.retrieve(f.id)).status_details ?? ""));
      await ragd.kill9();
      ragd = await startRagd({ dataDir, args: ["--ingest-lease", "2"] });
      const done = await ragd.client().files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
      expect(done.status).toBe("processed");
      const { chunks, job } = stored(dataDir, f.id);
      expect(job).toBeNull();
      expect(chunks.map((c) => c.idx)).toEqual(chunks.map((_, i) => i));
      expect(new Set(chunks.map((c) => c.char_start)).size).toBe(chunks.length);
      expect(chunks[0]!.location.page ?? chunks[0]!.location.pages[0]).toBe(1);
      expect(chunks.at(-1)!.location).toEqual({ page: 200 });
    } finally {
      await ragd.stop();
      cleanup(dataDir);
    }
  });

  test("server restarts are not the document's fault: three kill -9s during its ingestion, and it still ends processed", async () => {
    const args = ["--ingest-lease", "1", "--ingest-max-attempts", "1"];
    let ragd = await startRagd({ args });
    const dataDir = ragd.dataDir;
    try {
      const f = await ragd.client().files.create({ file: new File([await bigPdf(200)], "survivor.pdf"), purpose: "assistants" });
      for (let i = 0; i < 3; i++) {
        // its 200 pages are read in a fraction of a second: a kill while it is embedded cuts its run short too
        await waitFor("its run to be under way", async () => /^(parsing page|embedding chunk) \d+/.test((await ragd.client().files.retrieve(f.id)).status_details ?? ""));
        await ragd.kill9();
        ragd = await startRagd({ dataDir, args });
      }
      const done = await ragd.client().files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
      expect(`${done.status} ${done.status_details}`).toBe("processed null");
      const job = new Database(join(dataDir, "ragd.db"), { readonly: true }).query(`SELECT state, attempts, runs FROM jobs WHERE file_id = ?`).get(f.id);
      // each kill cut a run short (a kill may land before the next run starts); none used an attempt
      expect(job).toMatchObject({ state: "done", attempts: 0 });
      expect((job as { runs: number }).runs).toBeGreaterThanOrEqual(2);
    } finally {
      await ragd.stop();
      cleanup(dataDir);
    }
  }, 120_000);

  test("a document whose own parse process keeps dying ends in error after the allowed attempts, not retried forever", async () => {
    const ragd = await startRagd({ args: ["--ingest-max-attempts", "2", "--ingest-concurrency", "1"] });
    const job = (id: string) =>
      new Database(join(ragd.dataDir, "ragd.db"), { readonly: true }).query(`SELECT state, attempts, runs FROM jobs WHERE file_id = ?`).get(id) as { state: string; attempts: number; runs: number };
    try {
      const client = ragd.client();
      const f = await client.files.create({ file: new File([await bigPdf(600)], "crashy.pdf"), purpose: "assistants" });
      for (let i = 0; i < 2; i++) {
        await waitFor("a run to start", async () => job(f.id).state === "running" && job(f.id).runs === i + 1, 60_000);
        await Bun.sleep(300);
        // The parse process is the server's child: kill the one reading this file (and the spare).
        for (const pid of childPids(ragd.proc.pid)) process.kill(pid, "SIGKILL");
        await waitFor("the attempt to be counted", async () => job(f.id).attempts === i + 1, 60_000);
      }
      const done = await client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
      expect(done.status).toBe("error");
      expect(done.status_details).toBe("processing failed after 2 attempts (last: the parser was killed by SIGKILL); upload the file again or report it");
      expect(stored(ragd.dataDir, f.id)).toEqual({ chunks: [], doc: null, job: null });
      expect(ragd.proc.exitCode).toBeNull();
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
    }
  }, 120_000);

  test("a document that runs past the time budget becomes an error and the queue moves on", async () => {
    const ragd = await startRagd({ args: ["--ingest-timeout", "1", "--ingest-concurrency", "1"] });
    try {
      const client = ragd.client();
      // PDFium reads about 1,000 of these pages a second: 2,000 outlast the 1 s budget twice over
      const slow = await client.files.create({ file: new File([await bigPdf(2000)], "slow.pdf"), purpose: "assistants" });
      const quick = await client.files.create({ file: fixture("notes.txt"), purpose: "assistants" });
      const s = await client.files.waitForProcessing(slow.id, { pollInterval: 100, maxWait: 30_000 });
      expect(s.status).toBe("error");
      expect(s.status_details).toContain("took longer than the 1 s limit per file");
      expect((await client.files.waitForProcessing(quick.id, { pollInterval: 100 })).status).toBe("processed");
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
    }
  });
});

describe("a long PDF read in page ranges by several parse processes", () => {
  test("gives the chunks, offsets and text of a read by one process, chunks spanning the ranges' seams included", async () => {
    // Short pages: several go into one chunk, so chunks cross from one range into the next (a
    // longer first page shifts the pairs of pages off the ranges' even seams).
    const line = (p: number) => `Page ${p + 1} tells of quarry ${p % 7} and the granite cut there in spring.`;
    const pdf = await buildPdf(Array.from({ length: 100 }, (_, p) => (p === 0 ? [line(0), line(0), line(0)] : [line(p)])));
    const one = await startRagd({ args: ["--ingest-concurrency", "1"] });
    const two = await startRagd({ args: ["--ingest-concurrency", "2"] });
    try {
      const read = async (r: Ragd) => {
        const f = await r.client().files.create({ file: new File([new Uint8Array(pdf)], "short-pages.pdf"), purpose: "assistants" });
        expect((await r.client().files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 })).status).toBe("processed");
        return stored(r.dataDir, f.id);
      };
      const [whole, ranges] = [await read(one), await read(two)];
      expect(whole.chunks.length).toBeGreaterThan(4);
      const seams = [32, 64, 96];
      expect(whole.chunks.some((c) => c.location.pages && seams.some((s) => c.location.pages[0] <= s && c.location.pages[1] > s))).toBe(true);
      expect(ranges.chunks).toEqual(whole.chunks);
      expect(ranges.doc).toEqual(whole.doc);
      // the second server read it in ranges, some of them in a process other than the file's own
      const counted = (text: string, reader: string) => Number(new RegExp(`ragd_ingest_pdf_ranges_total\\{reader="${reader}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
      const m2 = await (await fetch(`${two.url}/metrics`)).text();
      expect(counted(m2, "own") + counted(m2, "other")).toBe(4);
      expect(counted(m2, "other")).toBeGreaterThan(0);
      expect(counted(await (await fetch(`${one.url}/metrics`)).text(), "own")).toBe(0);
    } finally {
      await Promise.all([one.stop(), two.stop()]);
      cleanup(one.dataDir);
      cleanup(two.dataDir);
    }
  });
});

test("a PDF read in ranges is held to the document's text limit as its ranges arrive", async () => {
  const { startServer } = await import("../src/server");
  const { loadConfig } = await import("../src/config");
  const { DEFAULT_PARSE_LIMITS } = await import("../src/ingest/types");
  const dataDir = tempDir();
  const server = await startServer(loadConfig(["--data-dir", dataDir, "--port", "0", "--host", "127.0.0.1", "--api-key", "sk-test-ranges-limit", "--ingest-concurrency", "2", "--log-level", "warn"], {}));
  try {
    // The limit is not a setting: the running pipeline's own is lowered, below the 600 pages' 1.7 million characters.
    (server.services.ingest as unknown as { limits: typeof DEFAULT_PARSE_LIMITS }).limits = { ...DEFAULT_PARSE_LIMITS, maxTextChars: 1_000_000 };
    const client = new (await import("openai")).default({ baseURL: `${server.url}/v1`, apiKey: "sk-test-ranges-limit", maxRetries: 0 });
    const f = await client.files.create({ file: new File([await bigPdf(600)], "long.pdf"), purpose: "assistants" });
    const done = await client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
    expect(done.status).toBe("error");
    expect(done.status_details).toContain("more than 1 million characters");
    expect(stored(dataDir, f.id).chunks).toEqual([]);
    // it was read in ranges (the limit met as they arrived, not in a whole read)
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/ragd_ingest_pdf_ranges_total\{reader="own"\} [1-9]/);
  } finally {
    await server.stop();
    cleanup(dataDir);
  }
});
