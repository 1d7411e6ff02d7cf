// Scale-out (#19): ragd on PostgreSQL with a shared blob store, against itself.
// - Ingestion: one process pinned to one core, against two processes pinned to one core each,
//   on one database and one shared blob directory (the same small documents, alternating rounds).
// - API and search latency: the embedded deployment (SQLite, local disk) against PostgreSQL + S3
//   (s3rver), the same documents in each.
// - Upload MB/s to S3 through ragd against a raw Bun.s3 put of the same bytes to the same server.
// PostgreSQL, s3rver and this script share the same two cores with ragd; the figures say so.
import { S3Client } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { SQL } from "bun";
import { createDatabase, dropAllDatabases, postgresMissing } from "../test/helpers/postgres";
import { listeningUrl } from "../test/helpers/ragd";
import { s3Missing, startS3 } from "../test/helpers/s3";
import { percentile, ROOT, table } from "./lib";

const KEY = "sk-bench-scaleout-key";
const SCIFACT = join(ROOT, "../shared/scifact/corpus.jsonl");
const DOCS_PER_ROUND = 240;

interface Proc {
  url: string;
  client: OpenAI;
  stop(): Promise<void>;
}

async function serve(args: string[], core?: number): Promise<Proc> {
  const dataDir = mkdtempSync(join(tmpdir(), "ragd-bench-scaleout-"));
  const cmd = ["bun", join(ROOT, "src/main.ts"), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...args];
  const proc = Bun.spawn(core === undefined ? cmd : ["taskset", "-c", String(core), ...cmd], {
    env: { ...process.env, RAGD_API_KEY: KEY, RAGD_LOG_LEVEL: "warn" },
    stdout: "pipe",
    stderr: "inherit",
  });
  const url = await listeningUrl(proc, () => "(server stderr is above)");
  return {
    url,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 }),
    async stop() {
      proc.kill();
      await proc.exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function documents(n: number, offset: number): { name: string; text: string }[] {
  if (existsSync(SCIFACT))
    return readFileSync(SCIFACT, "utf8").split("\n").filter(Boolean).slice(offset, offset + n).map((l) => {
      const d = JSON.parse(l) as { _id: string; title: string; text: string };
      return { name: `${d._id}.txt`, text: `${d.title}\n\n${d.text}` };
    });
  return Array.from({ length: n }, (_, i) => ({ name: `doc-${offset + i}.txt`, text: `Document ${offset + i}. ${"The quick brown fox jumps over the lazy dog while the committee reviews the budget. ".repeat(40)}` }));
}

/** Seconds from the first upload to the last file processed, and the chunks made. */
async function ingestRound(procs: Proc[], database: string, docs: { name: string; text: string }[]) {
  const sql = new SQL({ url: database, max: 1 });
  try {
    const t0 = performance.now();
    for (let i = 0; i < docs.length; i += 32)
      await Promise.all(docs.slice(i, i + 32).map((d, j) => procs[(i + j) % procs.length]!.client.files.create({ file: new File([d.text], d.name), purpose: "assistants" })));
    for (;;) {
      const [r] = await sql.unsafe(`SELECT COUNT(*) FILTER (WHERE status = 'uploaded')::int AS left, COUNT(*)::int AS n FROM files`);
      if (r.n === docs.length && r.left === 0) break;
      await Bun.sleep(50);
    }
    const secs = (performance.now() - t0) / 1000;
    const [c] = await sql.unsafe(`SELECT COUNT(*)::int AS n FROM chunks`);
    return { secs, chunks: c.n as number };
  } finally {
    await sql.close();
  }
}

async function ingestion(): Promise<string> {
  const rows: (string | number)[][] = [];
  const rates: Record<string, number[]> = { one: [], two: [] };
  let offset = 0;
  for (let round = 0; round < 2; round++) {
    for (const layout of ["one", "two"] as const) {
      const database = await createDatabase();
      const blobDir = mkdtempSync(join(tmpdir(), "ragd-bench-blobs-"));
      const common = ["--database-url", database, "--blob-url", `file://${blobDir}`, "--embed-threads", "1", "--ingest-concurrency", "1"];
      const procs = layout === "one" ? [await serve(common, 0)] : [await serve(common, 0), await serve(common, 1)];
      try {
        const r = await ingestRound(procs, database, documents(DOCS_PER_ROUND, offset));
        offset += DOCS_PER_ROUND;
        rates[layout]!.push(r.chunks / r.secs);
        rows.push([round + 1, layout === "one" ? "1 process, core 0" : "2 processes, cores 0 and 1", DOCS_PER_ROUND, r.chunks, r.secs.toFixed(1), (r.chunks / r.secs).toFixed(1)]);
      } finally {
        for (const p of procs) await p.stop();
        rmSync(blobDir, { recursive: true, force: true });
      }
    }
  }
  const med = (xs: number[]) => percentile(xs, 50);
  const ratio = med(rates.two!) / med(rates.one!);
  return (
    table(["round", "layout", "files", "chunks", "seconds", "chunks/s"], rows) +
    `\n\nTwo processes against one: **${ratio.toFixed(2)}x** (median chunks/s ${med(rates.two!).toFixed(1)} against ${med(rates.one!).toFixed(1)}). ` +
    "Each process runs one embedding thread and one parser; PostgreSQL and this script are not pinned and share the cores."
  );
}

async function latency(s3url: () => Promise<{ args: (p: string) => string[] }>): Promise<string> {
  const docs = documents(200, 5000);
  const queries = docs.slice(0, 100).map((d) => d.text.split("\n")[0]!.slice(0, 80));
  const rows: (string | number)[][] = [];
  const layouts: [string, () => Promise<string[]>][] = [
    ["embedded (SQLite, local disk)", async () => []],
    ["PostgreSQL + S3 (s3rver)", async () => ["--database-url", await createDatabase(), ...(await s3url()).args(`lat-${Date.now()}`)]],
  ];
  for (const [name, args] of layouts) {
    const p = await serve(await args());
    try {
      const ids: string[] = [];
      for (let i = 0; i < docs.length; i += 32) ids.push(...(await Promise.all(docs.slice(i, i + 32).map(async (d) => (await p.client.files.create({ file: new File([d.text], d.name), purpose: "assistants" })).id))));
      for (const id of ids) await p.client.files.waitForProcessing(id, { pollInterval: 50 });
      const kb = (await p.client.vectorStores.list()).data.find((s) => s.name === "knowledge base")!.id;
      const timed = async (n: number, f: (i: number) => Promise<unknown>) => {
        const ms: number[] = [];
        for (let i = 0; i < n; i++) {
          const t = performance.now();
          await f(i);
          ms.push(performance.now() - t);
        }
        return ms;
      };
      await timed(50, (i) => p.client.files.retrieve(ids[i % ids.length]!));
      const retrieve = await timed(1000, (i) => p.client.files.retrieve(ids[i % ids.length]!));
      const list = await timed(300, () => p.client.files.list({ limit: 20 }));
      const search = await timed(200, (i) => p.client.vectorStores.search(kb, { query: queries[i % queries.length]! }));
      const f = (xs: number[]) => `${percentile(xs, 50).toFixed(2)} / ${percentile(xs, 99).toFixed(2)}`;
      rows.push([name, f(retrieve), f(list), f(search)]);
    } finally {
      await p.stop();
    }
  }
  return table(["deployment", "GET /v1/files/{id} p50 / p99 ms", "GET /v1/files?limit=20 p50 / p99 ms", "search p50 / p99 ms"], rows) + `\n\n${docs.length} documents in each, one client, requests one after another.`;
}

async function uploadSpeed(s3: { endpoint: string; bucket: string; args: (p: string) => string[]; client: () => S3Client }): Promise<string> {
  const size = 128 * 1024 * 1024;
  const bytes = new Uint8Array(size).map((_, i) => (i * 2654435761) >>> 24);
  bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0);
  const path = join(mkdtempSync(join(tmpdir(), "ragd-bench-s3-")), "big.png");
  writeFileSync(path, bytes);
  const p = await serve(["--database-url", await createDatabase(), ...s3.args("speed")]);
  const raw: number[] = [];
  const ragd: number[] = [];
  try {
    for (let round = 0; round < 3; round++) {
      let t = performance.now();
      await s3.client().write(`raw/big-${round}.png`, Bun.file(path));
      raw.push(size / 2 ** 20 / ((performance.now() - t) / 1000));
      t = performance.now();
      await p.client.files.create({ file: Bun.file(path) as unknown as File, purpose: "vision" });
      ragd.push(size / 2 ** 20 / ((performance.now() - t) / 1000));
    }
  } finally {
    await p.stop();
    rmSync(path, { force: true });
  }
  const med = (xs: number[]) => percentile(xs, 50);
  return (
    table(["path", "MB/s (3 rounds: median, min, max)"], [
      ["raw Bun.s3 write of the file", `${med(raw).toFixed(0)}, ${Math.min(...raw).toFixed(0)}, ${Math.max(...raw).toFixed(0)}`],
      ["upload through ragd (multipart form, purpose vision)", `${med(ragd).toFixed(0)}, ${Math.min(...ragd).toFixed(0)}, ${Math.max(...ragd).toFixed(0)}`],
    ]) + `\n\n128 MiB each; ragd against raw: **${(med(ragd) / med(raw)).toFixed(2)}x**. s3rver (Node) writes each part to its own disk.`
  );
}

export async function scaleoutBench(): Promise<string> {
  const missing = postgresMissing ?? s3Missing;
  if (missing) return `skipped: ${missing}`;
  if (!Bun.which("taskset")) return "skipped: no taskset to pin processes to cores";
  const parts: string[] = [];
  const held: { s3: Awaited<ReturnType<typeof startS3>> | null } = { s3: null };
  const getS3 = async () => (held.s3 ??= await startS3());
  try {
    // SCALEOUT_PARTS=ingestion,latency,upload runs some of them.
    const want = (name: string) => !process.env.SCALEOUT_PARTS || process.env.SCALEOUT_PARTS.split(",").includes(name);
    if (want("ingestion")) parts.push(`### Ingestion, one process against two\n\n${await ingestion()}`);
    if (want("latency")) parts.push(`### Latency, embedded against PostgreSQL + S3\n\n${await latency(getS3)}`);
    if (want("upload")) parts.push(`### Upload to S3\n\n${await uploadSpeed(await getS3())}`);
  } finally {
    await held.s3?.stop();
    await dropAllDatabases();
  }
  return parts.join("\n\n");
}
