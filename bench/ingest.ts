// Ingestion benchmarks: parser throughput per format against a reference extractor, and
// API latency while large documents are being ingested.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { cpus } from "node:os";
import OpenAI from "openai";
import { chunkBlocks, resolveChunking } from "../src/ingest/chunker";
import { parseDocument } from "../src/ingest/parsers/index";
import { DEFAULT_PARSE_LIMITS } from "../src/ingest/types";
import { bigPdf } from "../test/helpers/docs";
import { autocannon } from "./files";
import { ocrSettings } from "../src/server";
import { nativePaths } from "../src/native/assets";
import { defaults } from "../src/config";

// From source the cache directory is unused: native libraries load from node_modules.
const OCR = ocrSettings({ ...defaults(), dataDir: "/nonexistent" });
const NATIVES = nativePaths("/nonexistent");
import { percentile, ROOT, startServer, table, waitIdle } from "./lib";

const CORPUS = join(ROOT, "../shared/corpus");
const SAMPLES: [string, string][] = [
  ["PDF", "unstructured/pdf/DA-619p.pdf"],
  ["DOCX", "unstructured/handbook-872p.docx"],
  ["PPTX", "unstructured/fake-power-point-many-pages.pptx"],
  ["XLSX", "unstructured/more-than-1k-cells.xlsx"],
  ["CSV", "unstructured/csv-with-long-lines.csv"],
  ["HTML", "unstructured/example-10k.html"],
  ["EPUB", "unstructured/winter-sports.epub"],
  ["TXT", "unstructured/book-war-and-peace-1225p.txt"],
  ["SRT", "srt/windows-1252.srt"],
  ["DOC", "unstructured/simple.doc"],
  ["PPT", "unstructured/fake-power-point.ppt"],
  ["RTF", "unstructured/fake-doc.rtf"],
  ["MSG", "unstructured/fake-email-attachment.msg"],
  ["EML", "unstructured/eml/email-replace-mime-encodings-error-3.eml"],
  ["DOCX with pictures (OCR)", "unstructured/contains-pictures.docx"],
  ["PPTX picture (OCR)", "unstructured/picture.pptx"],
];

async function parseOnce(bytes: Uint8Array, name: string) {
  const t = performance.now();
  const doc = await parseDocument({ bytes: bytes.slice(), filename: name, limits: DEFAULT_PARSE_LIMITS, progress: () => {}, ocr: OCR, natives: NATIVES });
  const { chunks, text } = chunkBlocks(doc.blocks, resolveChunking({ type: "auto" }, 128));
  return { s: (performance.now() - t) / 1000, chunks: chunks.length, chars: text.length, pages: (doc as { pages?: number }).pages };
}

const best = async <T extends { s: number }>(n: number, f: () => Promise<T>) => {
  let r: T | null = null;
  for (let i = 0; i < n; i++) {
    const x = await f();
    if (!r || x.s < r.s) r = x;
  }
  return r!;
};

export async function parseBench(): Promise<string> {
  if (!existsSync(CORPUS)) return "_skipped: ../shared/corpus is absent_";
  const rows: (string | number)[][] = [];
  for (const [format, rel] of SAMPLES) {
    const path = join(CORPUS, rel);
    const bytes = new Uint8Array(readFileSync(path));
    const mb = statSync(path).size / 1e6;
    const r = await best(3, () => parseOnce(bytes, rel.split("/").pop()!));
    let reference = "";
    if (format === "PDF" && Bun.which("pdftotext")) {
      const ref = await best(3, async () => {
        const t = performance.now();
        const p = Bun.spawnSync(["pdftotext", "-enc", "UTF-8", path, "-"]);
        return { s: (performance.now() - t) / 1000, chars: p.stdout.length };
      });
      reference = `pdftotext: ${(r.pages! / ref.s).toFixed(0)} pages/s (ours ${((r.pages! / r.s) / (r.pages! / ref.s)).toFixed(2)}x)`;
    }
    rows.push([
      format,
      rel.split("/").pop()!,
      mb.toFixed(2),
      r.s.toFixed(3),
      (mb / r.s).toFixed(1),
      r.pages ? (r.pages / r.s).toFixed(0) : "",
      r.chars,
      r.chunks,
      reference,
    ]);
  }
  return (
    table(["format", "file", "MB", "parse+chunk s (best of 3)", "MB/s", "pages/s", "chars", "chunks", "reference"], rows) +
    "\n\nIn-process timing of the same code the parse worker runs; a worker adds its start-up (below).\n\n" +
    (await pdfRangesBench())
  );
}

/**
 * DA-619p.pdf through a server's parse processes: its parse time as the server measures it
 * (ragd_ingest_parse_duration_seconds: a process taken, the pages read, the chunks back), with one parse process against every free one reading page
 * ranges side by side, beside `pdftotext` on the same file; rounds alternate.
 */
export async function pdfRangesBench(rounds = 4): Promise<string> {
  const path = join(CORPUS, "unstructured/pdf/DA-619p.pdf");
  const pages = 619;
  const bytes = readFileSync(path);
  const parallel = Math.max(2, cpus().length);
  const servers = { one: await startServer(["--ingest-concurrency", "1"]), all: await startServer(["--ingest-concurrency", String(parallel)]) };
  const timed = { one: [] as number[], all: [] as number[], pdftotext: [] as number[] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const k of ["one", "all"] as const) {
        const server = servers[k];
        const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.key, maxRetries: 0 });
        // the server's own parse timer (from a process taken to the chunks back), read from /metrics
        const parsed = async () => {
          const text = await (await fetch(`${server.url}/metrics`)).text();
          const read = (k: string) => Number(new RegExp(`ragd_ingest_parse_duration_seconds_${k}\\{format="pdf"\\} ([\\d.e+-]+)`).exec(text)?.[1] ?? 0);
          return { count: read("count"), sum: read("sum") };
        };
        const before = await parsed();
        const f = await client.files.create({ file: new File([bytes], "DA-619p.pdf"), purpose: "assistants" });
        let after = before;
        while (after.count === before.count) {
          await Bun.sleep(20);
          after = await parsed();
        }
        timed[k].push(after.sum - before.sum);
        // its embedding stops at the end of the batch under way: the next parse gets both cores
        await client.files.delete(f.id);
        await waitIdle(server.pid);
      }
      if (Bun.which("pdftotext")) {
        const t = performance.now();
        Bun.spawnSync(["pdftotext", "-enc", "UTF-8", path, "-"]);
        timed.pdftotext.push((performance.now() - t) / 1000);
      }
    }
  } finally {
    await Promise.all([servers.one.stop(), servers.all.stop()]);
  }
  const med = (xs: number[]) => percentile(xs, 50);
  const rate = (xs: number[]) => (xs.length ? (pages / med(xs)).toFixed(0) : "");
  const ref = timed.pdftotext.length ? pages / med(timed.pdftotext) : 0;
  const ratio = (xs: number[]) => (ref ? `${(pages / med(xs) / ref).toFixed(2)}x` : "");
  // The first round meets parse processes that never read a PDF (PDFium compiled in each);
  // later rounds meet the processes earlier PDFs left, as a server ingesting PDFs does.
  const later = (xs: number[]) => (xs.length > 1 ? xs.slice(1) : xs);
  const first = (xs: number[]) => (xs.length ? `${xs[0]!.toFixed(2)} (${ratio([xs[0]!])})` : "");
  return [
    `DA-619p.pdf (${pages} pages) through the server's parse processes, parse and chunk time as /metrics reports it (the first round, then the median of ${Math.max(1, rounds - 1)} more; rounds alternate, each on an idle server):`,
    "",
    table(
      ["reader", "first round: s (against pdftotext)", "later rounds: seconds", "pages/s", "against pdftotext"],
      [
        ["one parse process (`--ingest-concurrency 1`)", first(timed.one), med(later(timed.one)).toFixed(2), rate(later(timed.one)), ratio(later(timed.one))],
        [`page ranges over ${parallel} parse processes`, first(timed.all), med(later(timed.all)).toFixed(2), rate(later(timed.all)), ratio(later(timed.all))],
        ["pdftotext (poppler-utils)", "", timed.pdftotext.length ? med(timed.pdftotext).toFixed(2) : "not installed", ref ? ref.toFixed(0) : "", ""],
      ],
    ),
  ].join("\n");
}

/** GET /v1/files/{id} at a fixed rate, on an idle server and while 20 large PDFs ingest. */
export async function latencyBench(seconds = 10): Promise<string> {
  const server = await startServer();
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.key, maxRetries: 0 });
    // A file that is never ingested, so the reads measure the API alone.
    const probe = await client.files.create({ file: new File(["{}\n"], "probe.jsonl"), purpose: "batch" });
    const url = `${server.url}/v1/files/${probe.id}`;
    const load = ["-c", "8", "-R", "400"];
    const idle = await autocannon(url, server.key, seconds, load);
    const da = join(CORPUS, "unstructured/pdf/DA-619p.pdf");
    const doc = existsSync(da) ? new Uint8Array(readFileSync(da)) : await bigPdf(600);
    const docName = existsSync(da) ? "DA-619p.pdf (619 pages)" : "a generated 600-page PDF";
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await client.files.create({ file: new File([doc], `doc-${i}.pdf`), purpose: "assistants" })).id);
    const t = performance.now();
    const busy = await autocannon(url, server.key, seconds, load);
    const stillIngesting = (await client.files.list()).data.filter((f) => f.status === "uploaded").length;
    for (const id of ids) await client.files.waitForProcessing(id, { pollInterval: 250, maxWait: 600_000 });
    const ingestSeconds = (performance.now() - t) / 1000;
    return (
      table(
        ["GET /v1/files/{id}, 400 req/s, 8 connections", "req/s", "p50 ms", "p99 ms"],
        [
          ["idle server", idle.rps.toFixed(0), idle.p50, idle.p99],
          [`while 20 x ${docName} ingest`, busy.rps.toFixed(0), busy.p50, busy.p99],
          ["ratio (busy / idle)", "", (busy.p50 / Math.max(idle.p50, 1)).toFixed(2), (busy.p99 / Math.max(idle.p99, 1)).toFixed(2)],
        ],
      ) +
      `\n\n${20 - stillIngesting} of 20 documents were done when the ${seconds} s measurement ended; all 20 took ${ingestSeconds.toFixed(1)} s ` +
      `(${((20 * 619) / ingestSeconds).toFixed(0)} pages/s with ${cpus().length} parse workers).`
    );
  } finally {
    await server.stop();
  }
}

/**
 * Search latency on an idle server against the same while 20 large PDFs ingest (#15: "search
 * p99 while 20 large PDFs ingest <= 2x idle"): 400 SciFact abstracts (or generated notes) in the
 * knowledge base, one client asking hybrid searches one after another for `seconds` each.
 */
export async function searchBusyBench(seconds = 15): Promise<string> {
  const server = await startServer();
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.key, maxRetries: 0 });
    const scifact = join(ROOT, "../shared/scifact/corpus.jsonl");
    const docs = existsSync(scifact)
      ? readFileSync(scifact, "utf8").split("\n").filter(Boolean).slice(0, 400).map((l) => JSON.parse(l) as { title: string; text: string })
      : Array.from({ length: 400 }, (_, i) => ({ title: `Note ${i}`, text: `Note ${i} on quarry ${i % 37}: granite, basalt and slate yields for region ${i % 11}.` }));
    const ids: string[] = [];
    for (let i = 0; i < docs.length; i += 32)
      ids.push(...(await Promise.all(docs.slice(i, i + 32).map(async (d, j) => (await client.files.create({ file: new File([`${d.title}\n\n${d.text}`], `n-${i + j}.txt`), purpose: "assistants" })).id))));
    for (const id of ids) await client.files.waitForProcessing(id, { pollInterval: 100 });
    const kb = (await client.vectorStores.list()).data.find((s) => s.name === "knowledge base")!.id;
    const queries = docs.map((d) => d.title.slice(0, 80));
    const measure = async () => {
      const ms: number[] = [];
      const until = performance.now() + seconds * 1000;
      for (let i = 0; performance.now() < until; i++) {
        const t = performance.now();
        await client.vectorStores.search(kb, { query: queries[i % queries.length]! });
        ms.push(performance.now() - t);
      }
      return ms;
    };
    const idle = await measure();
    const da = join(CORPUS, "unstructured/pdf/DA-619p.pdf");
    const doc = existsSync(da) ? new Uint8Array(readFileSync(da)) : await bigPdf(600);
    for (let i = 0; i < 20; i++) await client.files.create({ file: new File([doc], `doc-${i}.pdf`), purpose: "assistants" });
    // Parsing and embedding under way on every core before the clock starts.
    await Bun.sleep(3000);
    const busy = await measure();
    const row = (name: string, ms: number[]) => [name, ms.length, percentile(ms, 50).toFixed(2), percentile(ms, 99).toFixed(2)];
    return (
      table(["hybrid search, 1 client", "searches", "p50 ms", "p99 ms"], [
        row("idle server", idle),
        row(`while 20 x ${existsSync(da) ? "DA-619p.pdf" : "a 600-page PDF"} ingest`, busy),
        ["ratio (busy / idle)", "", (percentile(busy, 50) / percentile(idle, 50)).toFixed(2), `**${(percentile(busy, 99) / percentile(idle, 99)).toFixed(2)}**`],
      ]) + `\n\n${docs.length} documents searched; target for p99: <= 2x idle.`
    );
  } finally {
    await server.stop();
  }
}
