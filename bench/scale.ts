// Search and start-up at 10k, 100k and 1M chunks of real model vectors: the SciFact data set
// that the retrieval suite ingests through the API (24,683 chunks; RAGD_BENCH_SCIFACT_DIR keeps
// it), cut down to 10k, or grown with texts cut from the same abstracts and embedded by the
// same model (bench/scale-vectors.ts caches them; a size whose vectors are not cached yet is
// skipped). Reports start-up time (empty data directory,
// first start that builds the index, restart that loads it), search latency through the API
// and HNSW recall@10 against exact search.
import { Database } from "bun:sqlite";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { startServer } from "../src/server";
import { exactSearch, MetricKind } from "usearch";
import { decodeVector } from "../src/storage/vector-codec";
import { randomBase62 } from "../src/util/ids";
import { ROOT, table } from "./lib";
import { cachedVectors, hasCachedVectors } from "./scale-vectors";

const KEY = "sk-bench-scale-key-000000000000";
const TARGETS = (process.env.RAGD_BENCH_SCALE_SIZES || "10000,100000,1000000").split(",").filter(Boolean).map(Number);

const percentile = (xs: number[], p: number) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

function queries(): string[] {
  return readFileSync(join(ROOT, "../shared/scifact/queries.train.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).text as string);
}

/** A copy of the SciFact data directory holding `target` chunks (its saved index left out). */
export function makeDataDir(source: string, target: number): string {
  const dir = mkdtempSync(join(tmpdir(), `ragd-scale-${target}-`));
  for (const f of ["ragd.db", "ragd.db-wal", "ragd.db-shm", "blobs"]) if (existsSync(join(source, f))) cpSync(join(source, f), join(dir, f), { recursive: true });
  const db = new Database(join(dir, "ragd.db"));
  const have = (db.query("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n;
  if (target < have) {
    const cut = (db.query("SELECT id FROM chunks ORDER BY id LIMIT 1 OFFSET ?").get(target) as { id: number }).id;
    db.run("DELETE FROM chunks WHERE id >= ?", [cut]);
  } else if (target > have) {
    const extra = cachedVectors(target - have)!;
    const { project_id } = db.query("SELECT project_id FROM files LIMIT 1").get() as { project_id: string };
    const { id: store } = db.query("SELECT id FROM vector_stores WHERE is_default = 1 AND project_id = ?").get(project_id) as { id: string };
    const now = Math.floor(Date.now() / 1000);
    const need = target - have;
    const insertFile = db.prepare("INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES (?, ?, ?, ?, ?, 'assistants', 'processed', 'text/plain', '')");
    const insertDoc = db.prepare("INSERT INTO documents (file_id, format, text) VALUES (?, 'text', ?)");
    const insertMember = db.prepare("INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES (?, ?, ?)");
    const insertChunk = db.prepare("INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES (?, 'auto', ?, ?, ?, ?, ?, ?, ?)");
    db.transaction(() => {
      for (let start = 0, n = 0; start < need; start += 1000, n++) {
        const texts = extra.texts.slice(start, Math.min(need, start + 1000));
        const fileId = `file-${randomBase62(24)}`;
        const doc = texts.join("\n");
        insertFile.run(fileId, project_id, doc.length, now, `scale-${n}.txt`);
        insertDoc.run(fileId, doc);
        insertMember.run(store, fileId, now);
        let at = 0;
        texts.forEach((t, i) => {
          insertChunk.run(fileId, i, t, JSON.stringify({ lines: [i + 1, i + 1] }), at, at + t.length, Math.ceil(t.length / 4), extra.vectors[start + i]!);
          at += t.length + 1;
        });
      }
    })();
  }
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return dir;
}

function chunkCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.query("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Each query's 10 nearest stored vectors by cosine, brute force (usearch's exact search over every vector). */
function exactCosineTop10(dbPath: string, queries: Float32Array[]): number[][] {
  const db = new Database(dbPath, { readonly: true });
  try {
    const dims = queries[0]!.length;
    const n = (db.query("SELECT COUNT(*) AS n FROM chunks WHERE embedding IS NOT NULL").get() as { n: number }).n;
    const flat = new Float32Array(n * dims);
    const ids = new Float64Array(n);
    let i = 0;
    for (const r of db.query("SELECT id, embedding FROM chunks WHERE embedding IS NOT NULL").iterate() as Iterable<{ id: number; embedding: Uint8Array }>) {
      flat.set(decodeVector(r.embedding), i * dims);
      ids[i++] = r.id;
    }
    const q = new Float32Array(queries.length * dims);
    queries.forEach((v, j) => q.set(v, j * dims));
    const found = exactSearch(flat, q, dims, 10, MetricKind.Cos, 0);
    return queries.map((_, j) => Array.from(found.keys.slice(j * 10, j * 10 + 10), (k) => ids[Number(k)]!));
  } finally {
    db.close();
  }
}

/** Reads a process's resident memory now and its peak, in MiB (Linux). */
function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

interface Running {
  proc: ReturnType<typeof Bun.spawn>;
  url: string;
  /** Wall time from spawning the executable until it accepted requests. */
  seconds: number;
  /** Resident memory once it answered its first request, and the peak until then (MiB). */
  rss: number;
  peak: number;
}

/** Spawns the executable on `dataDir` and waits until it accepts requests (and has answered one). */
async function serve(cmd: string[], dataDir: string): Promise<Running> {
  const t = performance.now();
  const proc = Bun.spawn([...cmd, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir], { env: { PATH: "/usr/bin:/bin", RAGD_API_KEY: KEY, RAGD_LOG_LEVEL: "warn" }, stdout: "pipe", stderr: "ignore" });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let out = "";
  while (!/listening on (\S+)/.test(out)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`ragd exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  // (drained, so a full pipe never blocks the server)
  void (async () => {
    while (!(await reader.read().catch(() => ({ done: true }))).done);
  })();
  const url = /listening on (\S+)/.exec(out)![1]!;
  const seconds = (performance.now() - t) / 1000;
  try {
    await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
    return { proc, url, seconds, ...memoryMiB(proc.pid) };
  } catch (e) {
    proc.kill();
    throw e;
  }
}

async function stop(running: Running) {
  running.proc.kill();
  await running.proc.exited;
}

/** Wall time from spawning the executable until it accepts requests, and its memory then. */
async function startup(cmd: string[], dataDir: string): Promise<{ seconds: number; rss: number; peak: number }> {
  const running = await serve(cmd, dataDir);
  await stop(running);
  return { seconds: running.seconds, rss: running.rss, peak: running.peak };
}

export async function scaleBench(): Promise<string> {
  const source = process.env.RAGD_BENCH_SCIFACT_DIR;
  if (!source || !existsSync(join(source, "ragd.db"))) return "skipped: set RAGD_BENCH_SCIFACT_DIR to the data directory the retrieval suite ingested";
  const bin = join(ROOT, "dist/ragd");
  // (built every time, a few seconds: a binary left from older code would time that code)
  if (Bun.spawnSync(["make", "-s", "build"], { cwd: ROOT }).exitCode !== 0) return "skipped: make build failed";
  const qs = queries().slice(0, 300);
  const lines: string[] = [];
  const empty = mkdtempSync(join(tmpdir(), "ragd-empty-"));
  const cold = (await startup([bin], empty)).seconds;
  const { seconds: warm, rss: idleRss } = await startup([bin], empty);
  rmSync(empty, { recursive: true, force: true });
  lines.push(`Start-up of the binary (${(Bun.file(bin).size / 2 ** 20).toFixed(0)} MiB) until it accepts requests, empty data directory: first start ${cold.toFixed(2)} s (writes out its native libraries), second ${warm.toFixed(2)} s, ${idleRss.toFixed(0)} MiB resident.`, "");
  const rows: (string | number)[][] = [];
  const have = chunkCount(join(source, "ragd.db"));
  for (const target of TARGETS) {
    if (target > have && !hasCachedVectors(target - have)) {
      lines.push(`${target.toLocaleString("en")} chunks: skipped until \`nice bun bench/scale-vectors.ts ${target - have}\` has cached the vectors (resumable; about ${Math.ceil((target - have) / 600 / 60)} minutes on 2 cores).`, "");
      continue;
    }
    const dir = makeDataDir(source, target);
    try {
      const build = await startup([bin], dir);
      // The timed passes go to the binary as users run it, in a process of its own: the bench's
      // process, which made the data directory, holds none of its heap.
      const load = await serve([bin], dir);
      let timings: Record<"first" | "cached" | "keywordOnly" | "vectorOnly", number[]> & { qps: number; qps8: number };
      const narrowTimes: number[] = [];
      let narrowChunks: number;
      let kb: string;
      let chunks: number;
      const db = new Database(join(dir, "ragd.db"), { readonly: true });
      try {
        kb = (db.query("SELECT id FROM vector_stores WHERE is_default = 1").get() as { id: string }).id;
        chunks = (db.query("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n;
        // The load comes from a client process of its own, as a user's would.
        const queriesFile = join(dir, "bench-queries.json");
        await Bun.write(queriesFile, JSON.stringify(qs));
        const client = Bun.spawn(["bun", join(ROOT, "bench/search-client.ts"), load.url, KEY, kb, queriesFile], { stdout: "pipe", stderr: "inherit" });
        const out = await new Response(client.stdout).text();
        if ((await client.exited) !== 0) throw new Error("the search client failed");
        timings = JSON.parse(out);
        // A store of every 20th file (5% of the files, and of the chunks at 10k-100k; at 1M the
        // grown files are larger), created through the API: searched inside its own chunks.
        const fileIds = (db.query("SELECT id FROM files WHERE status = 'processed' ORDER BY seq").values() as [string][]).filter((_, i) => i % 20 === 0).map((r) => r[0]);
        const api = (path: string, body: unknown) =>
          fetch(`${load.url}/v1${path}`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then(async (r) => {
            if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
            return r.json() as Promise<{ id: string; status: string }>;
          });
        const narrow = await api("/vector_stores", { name: "every 20th file" });
        for (let i = 0; i < fileIds.length; i += 500) await api(`/vector_stores/${narrow.id}/file_batches`, { file_ids: fileIds.slice(i, i + 500) });
        narrowChunks = (db.query("SELECT COUNT(*) AS n FROM chunks c JOIN vector_store_files v ON v.file_id = c.file_id AND v.cut = c.cut AND v.store_id = ?").get(narrow.id) as { n: number }).n;
        for (const q of qs.slice(0, 100)) {
          const t = performance.now();
          const res = await fetch(`${load.url}/v1/vector_stores/${narrow.id}/search`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify({ query: q }) });
          if (!res.ok) throw new Error(`narrow search failed: ${res.status}`);
          await res.json();
          narrowTimes.push(performance.now() - t);
        }
      } finally {
        db.close();
        await stop(load);
      }
      const { first: times, cached, keywordOnly, vectorOnly, qps, qps8 } = timings;
      // Recall and the exact reference need the server's services: a server in this process.
      const server = await startServer(loadConfig(["--data-dir", dir, "--port", "0", "--host", "127.0.0.1", "--api-key", KEY, "--log-level", "warn"], {}));
      try {
        const search = server.services.search;
        // (a server of its own, after the timed passes: it embeds the queries again, untimed)
        // Recall@10 of the index asked for 10 (its own expansion), and of the top 10 among the
        // 200 candidates a search asks it for (the dense side of every search; see services/search.ts),
        // against exact search by the index's own metric (cosine) over the same stored vectors.
        const probes = await Promise.all(qs.slice(0, 200).map((q) => search.embedQuery("bench", q)));
        const exact = exactCosineTop10(join(dir, "ragd.db"), probes);
        let agree = 0;
        let agreeDeep = 0;
        for (const [i, v] of probes.entries()) {
          const share = (found: { id: number }[]) => exact[i]!.filter((id) => found.some((m) => m.id === id)).length / Math.max(1, exact[i]!.length);
          agree += share(await search.vectorIndex.search(v, 10));
          agreeDeep += share((await search.vectorIndex.search(v, 200)).sort((a, b) => b.similarity - a.similarity).slice(0, 10));
        }
        // Brute force in the same run: exact cosine over every vector of the store.
        const exactTimes: number[] = [];
        for (const q of qs.slice(0, 50)) {
          const v = await search.embedQuery("bench", q);
          const t = performance.now();
          await search.exactForBench(kb, v, 100);
          exactTimes.push(performance.now() - t);
        }
        rows.push([
          chunks,
          build.seconds.toFixed(2),
          build.peak.toFixed(0),
          load.seconds.toFixed(2),
          load.rss.toFixed(0),
          `${percentile(times, 50).toFixed(1)} / ${percentile(times, 99).toFixed(1)}`,
          `${percentile(cached, 50).toFixed(1)} / ${percentile(cached, 99).toFixed(1)}`,
          qps.toFixed(0),
          qps8.toFixed(0),
          percentile(keywordOnly, 99).toFixed(1),
          percentile(vectorOnly, 99).toFixed(1),
          // (the first search reads the store's vectors into memory: shown on its own)
          `${percentile(narrowTimes.slice(1), 50).toFixed(1)} / ${percentile(narrowTimes.slice(1), 99).toFixed(1)} (first ${narrowTimes[0]!.toFixed(0)}; ${narrowChunks.toLocaleString("en")} chunks)`,
          percentile(exactTimes, 50).toFixed(1),
          `${(agree / 200).toFixed(3)} / ${(agreeDeep / 200).toFixed(3)}`,
        ]);
      } finally {
        await server.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  lines.push(
    table(
      [
        "chunks",
        "start, indexes built (s)",
        "peak memory then (MiB)",
        "start, indexes loaded (s)",
        "memory once loaded (MiB)",
        "hybrid p50 / p99 (ms, 1 client)",
        "same, query vectors cached",
        "queries/s (1 client)",
        "queries/s (8 clients)",
        "keyword-only p99",
        "vector-only p99",
        "store of every 20th file: hybrid p50 / p99",
        "exact cosine, top 100 (ms, p50)",
        "HNSW recall@10: asked for 10 / top 10 of a search's 200",
      ],
      rows,
    ),
    "",
    `Search: ${qs.length} SciFact train queries through POST /v1/vector_stores/{id}/search (hybrid, 10 results; the first pass embeds each query, the second and the later ones find its vector cached); recall on 200 of them against exact cosine search over the same stored vectors (usearch's brute force); the exact cosine timing is the server's own exact search, SQLite's rows scanned (50 queries); the store of every 20th file, created through the API after the timed passes, is searched with 100 of the queries from the bench's process (p50 / p99 of the 99 after the first, which reads the store's vectors into memory and is shown on its own).`,
  );
  return lines.join("\n");
}

if (import.meta.main) console.log(await scaleBench());
