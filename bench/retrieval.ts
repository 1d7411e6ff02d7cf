// Retrieval on BEIR SciFact (../shared/scifact): the corpus goes through the real pipeline
// (upload -> parse -> chunk -> embed -> commit -> index), then the train queries are ranked
// by BM25 alone, dense alone and hybrid weights. Document score = its best chunk. Each
// query's candidate lists are fetched once and fused with every weight by the server's own
// `fuse`. Also: embedding throughput of the pipeline against the raw model on the same
// texts, HNSW recall@10 against exact search, and search latency through the HTTP API.
//
// RAGD_BENCH_SCIFACT_DIR=dir keeps the ingested data directory, so a rerun skips ingestion.
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { startServer } from "../src/server";
import { DEFAULT_EMBEDDING_WEIGHT, fuse } from "../src/services/search";
import { NO_FILTER } from "../src/storage/repos";
import { percentile, ROOT } from "./lib";
import { analyze, parseQuery } from "../src/search/analyzer";
import { KeywordIndex } from "../src/search/keyword-index";

const SCIFACT = join(ROOT, "../shared/scifact");
const CANDIDATES = 1000;
const KEY = "sk-bench-scifact";

interface Doc {
  _id: string;
  title: string;
  text: string;
}

const ndcgAt = (ranked: string[], relevant: Set<string>, k: number) => {
  let dcg = 0;
  ranked.slice(0, k).forEach((d, i) => relevant.has(d) && (dcg += 1 / Math.log2(i + 2)));
  let ideal = 0;
  for (let i = 0; i < Math.min(k, relevant.size); i++) ideal += 1 / Math.log2(i + 2);
  return ideal ? dcg / ideal : 0;
};
const recallAt = (ranked: string[], relevant: Set<string>, k: number) => ranked.slice(0, k).filter((d) => relevant.has(d)).length / relevant.size;

function loadScifact() {
  const docs = readFileSync(join(SCIFACT, "corpus.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Doc);
  const queries = new Map<string, string>();
  for (const l of readFileSync(join(SCIFACT, "queries.train.jsonl"), "utf8").split("\n").filter(Boolean)) {
    const q = JSON.parse(l);
    queries.set(q._id, q.text);
  }
  const qrels = new Map<string, Set<string>>();
  for (const line of readFileSync(join(SCIFACT, "qrels/train.tsv"), "utf8").split("\n").slice(1).filter(Boolean)) {
    const [q, d, score] = line.split("\t");
    if (Number(score) > 0 && queries.has(q!)) (qrels.get(q!) ?? qrels.set(q!, new Set()).get(q!)!).add(d!);
  }
  return { docs, queries, qrels };
}

export async function retrievalBench(weights = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1]): Promise<string> {
  if (!existsSync(SCIFACT)) return "skipped: ../shared/scifact is absent";
  const { docs, queries, qrels } = loadScifact();
  const keep = process.env.RAGD_BENCH_SCIFACT_DIR;
  const dir = keep ?? mkdtempSync(join(tmpdir(), "ragd-bench-scifact-"));
  const reuse = keep !== undefined && existsSync(join(dir, "ragd.db"));
  const server = await startServer(loadConfig(["--data-dir", dir, "--port", "0", "--host", "127.0.0.1", "--api-key", KEY, "--log-level", "warn"], {}));
  const lines: string[] = [];
  try {
    const client = new (await import("openai")).default({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
    // Read straight from the data directory's SQLite file, beside the running server.
    const db = new Database(join(dir, "ragd.db"), { readonly: true });
    if (!reuse) {
      const t0 = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < docs.length; i += 64)
        ids.push(...(await Promise.all(docs.slice(i, i + 64).map(async (d) => (await client.files.create({ file: new File([`${d.title}\n\n${d.text}`], `${d._id}.txt`), purpose: "assistants" })).id))));
      for (const id of ids) await client.files.waitForProcessing(id, { pollInterval: 200, maxWait: 3_600_000 });
      const s = (performance.now() - t0) / 1000;
      const chunks = (db.query("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n;
      lines.push(`Ingestion: ${docs.length} documents -> ${chunks} chunks through the API in ${s.toFixed(0)} s: ${(docs.length / s).toFixed(1)} documents/s, ${(chunks / s).toFixed(0)} chunks/s end to end.`);
    }
    const fileToDoc = new Map((db.query("SELECT id, filename FROM files").all() as { id: string; filename: string }[]).map((r) => [r.id, r.filename.replace(/\.txt$/, "")]));
    const chunkCount = (db.query("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n;
    const kb = (await client.vectorStores.list()).data[0]!.id;
    const judged = [...qrels.keys()];
    const now = Math.floor(Date.now() / 1000);

    // 1. quality
    const totals = weights.map(() => ({ ndcg: 0, recall: 0 }));
    for (const q of judged) {
      const c = await server.services.search.candidates(kb, queries.get(q)!, { projectId: "bench", filter: NO_FILTER, now, embeddingWeight: 0.5 }, CANDIDATES);
      weights.forEach((w, wi) => {
        const ranked: string[] = [];
        for (const s of fuse(w === 0 ? [] : c.dense, w === 1 ? [] : c.keyword, w, w === 0 ? null : c.cosines).sort((a, b) => b.score - a.score || a.id - b.id)) {
          const doc = fileToDoc.get(chunkFile(db, s.id))!;
          if (!ranked.includes(doc)) ranked.push(doc);
          if (ranked.length >= 100) break;
        }
        totals[wi]!.ndcg += ndcgAt(ranked, qrels.get(q)!, 10);
        totals[wi]!.recall += recallAt(ranked, qrels.get(q)!, 100);
      });
    }
    lines.push(
      `Quality: ${docs.length} documents, ${chunkCount} chunks, ${judged.length} judged train queries, ${CANDIDATES} candidates per list.`,
      "",
      "| ranking | nDCG@10 | recall@100 |",
      "|---|---|---|",
      ...weights.map((w, i) => {
        const label = w === 0 ? "keywords alone (BM25 + neighbourhood)" : w === 1 ? "dense alone" : `hybrid, embedding weight ${w}${w === DEFAULT_EMBEDDING_WEIGHT ? " (default)" : ""}`;
        return `| ${label} | ${(totals[i]!.ndcg / judged.length).toFixed(3)} | ${(totals[i]!.recall / judged.length).toFixed(3)} |`;
      }),
      ...(await references(db, judged, queries, qrels, fileToDoc)),
    );

    // 1b. the same through the HTTP API: default options, 50 results, documents in order of their first chunk
    let apiNdcg = 0;
    for (const q of judged) {
      const res = await client.vectorStores.search(kb, { query: queries.get(q)!, max_num_results: 50 });
      const ranked: string[] = [];
      for (const r of res.data) {
        const doc = fileToDoc.get(r.file_id)!;
        if (!ranked.includes(doc)) ranked.push(doc);
      }
      apiNdcg += ndcgAt(ranked, qrels.get(q)!, 10);
    }
    lines.push("", `Through the API (\`POST /v1/vector_stores/{id}/search\`, default ranking, max_num_results 50): nDCG@10 ${(apiNdcg / judged.length).toFixed(3)} on the ${judged.length} train queries.`);

    // 2. embedding: the raw model on stored chunk texts against the pipeline's rate
    const sample = (db.query("SELECT text FROM chunks ORDER BY id LIMIT 2000").all() as { text: string }[]).map((r) => r.text);
    const e0 = performance.now();
    await server.services.embedder.embed(sample, "ingest");
    lines.push("", `Embedding, raw model: ${(sample.length / ((performance.now() - e0) / 1000)).toFixed(0)} chunks/s on ${sample.length} stored chunks (queued at once, as ingestion does, ${server.services.embedder.model.id}).`);

    // 3. HNSW against exact search
    const index = server.services.search.vectorIndex;
    let agree = 0;
    const probes = judged.slice(0, 200);
    for (const q of probes) {
      const v = await server.services.search.embedQuery("bench", queries.get(q)!);
      const approx = new Set((await index.search(v, 10)).map((m) => m.id));
      const exact = await server.services.search.exactForBench(kb, v, 10);
      agree += exact.filter((e) => approx.has(e.id)).length / Math.max(1, exact.length);
    }
    lines.push(`HNSW recall@10 against exact search: ${(agree / probes.length).toFixed(3)} (${index.size()} vectors, ${probes.length} queries).`);

    // 4. latency through the API, one client at a time, default options (10 results)
    const times: number[] = [];
    const l0 = performance.now();
    for (const q of judged.slice(0, 300)) {
      const t = performance.now();
      const res = await fetch(`${server.url}/v1/vector_stores/${kb}/search`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: JSON.stringify({ query: queries.get(q) }) });
      await res.json();
      times.push(performance.now() - t);
    }
    const secs = (performance.now() - l0) / 1000;
    lines.push(`Search through the API at ${chunkCount} chunks: p50 ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms, ${(times.length / secs).toFixed(0)} queries/s sequential.`);
  } finally {
    await server.stop();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
  return lines.join("\n");
}

/** Reference rankings over the same data: plain chunk BM25 (as FTS5 ranked) and BM25 over whole documents. */
async function references(db: Database, judged: string[], queries: Map<string, string>, qrels: Map<string, Set<string>>, fileToDoc: Map<string, string>) {
  const chunks = new KeywordIndex();
  for (const r of db.query("SELECT id, text FROM chunks ORDER BY id").iterate() as Iterable<{ id: number; text: string }>) chunks.add(r.id, analyze(r.text));
  const docs = new KeywordIndex();
  const docFile: string[] = [];
  for (const r of db.query("SELECT file_id, text FROM documents").iterate() as Iterable<{ file_id: string; text: string }>) {
    docFile.push(r.file_id);
    docs.add(docFile.length, analyze(r.text));
  }
  chunks.sealTail();
  docs.sealTail();
  await Promise.all([chunks.merge(), docs.merge()]);
  let chunkNdcg = 0;
  let docNdcg = 0;
  for (const q of judged) {
    const query = parseQuery(queries.get(q)!)!;
    const ranked: string[] = [];
    for (const h of chunks.search(query, 1000)) {
      const doc = fileToDoc.get(chunkFile(db, h.id))!;
      if (!ranked.includes(doc)) ranked.push(doc);
      if (ranked.length >= 10) break;
    }
    chunkNdcg += ndcgAt(ranked, qrels.get(q)!, 10);
    docNdcg += ndcgAt(docs.search(query, 10).map((h) => fileToDoc.get(docFile[h.id - 1]!)!), qrels.get(q)!, 10);
  }
  return [
    `| reference: BM25 over chunks alone (FTS5's ranking) | ${(chunkNdcg / judged.length).toFixed(3)} | |`,
    `| reference: BM25 over whole documents | ${(docNdcg / judged.length).toFixed(3)} | |`,
  ];
}

const fileOf = new Map<number, string>();
function chunkFile(db: import("bun:sqlite").Database, id: number) {
  let f = fileOf.get(id);
  if (f === undefined) {
    f = (db.query("SELECT file_id FROM chunks WHERE id = ?").get(id) as { file_id: string }).file_id;
    fileOf.set(id, f);
  }
  return f;
}

if (import.meta.main) console.log(await retrievalBench());
