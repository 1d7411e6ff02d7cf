// Retrieval quality on BEIR SciFact (../shared/scifact): the corpus goes through the real
// pipeline (upload -> parse -> chunk -> embed -> index), then the train queries are ranked
// by BM25 alone, dense alone and hybrids. Document score = its best chunk.
// Also: embedding throughput of the pipeline against the raw model on the same texts, and
// HNSW recall@10 against exact search.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { startServer } from "../src/server";
import { DEFAULT_EMBEDDING_WEIGHT } from "../src/services/search";
import { NO_FILTER } from "../src/storage/stores-repo";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { ROOT } from "./lib";

const SCIFACT = join(ROOT, "../shared/scifact");

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

export async function retrievalBench(weights = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 1]): Promise<string> {
  if (!existsSync(SCIFACT)) return "skipped: ../shared/scifact is absent";
  const docs = readFileSync(join(SCIFACT, "corpus.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Doc);
  const queries = new Map(readFileSync(join(SCIFACT, "queries.train.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => {
    const q = JSON.parse(l);
    return [q._id as string, q.text as string];
  }));
  const qrels = new Map<string, Set<string>>();
  for (const line of readFileSync(join(SCIFACT, "qrels/train.tsv"), "utf8").split("\n").slice(1).filter(Boolean)) {
    const [q, d, score] = line.split("\t");
    if (Number(score) > 0) (qrels.get(q!) ?? qrels.set(q!, new Set()).get(q!)!).add(d!);
  }
  const dir = mkdtempSync(join(tmpdir(), "ragd-bench-scifact-"));
  const server = await startServer(loadConfig(["--data-dir", dir, "--port", "0", "--host", "127.0.0.1", "--api-key", "sk-bench-scifact", "--log-level", "warn"], {}));
  const lines: string[] = [];
  try {
    const client = new (await import("openai")).default({ baseURL: `${server.url}/v1`, apiKey: "sk-bench-scifact", maxRetries: 0 });
    const t0 = performance.now();
    const fileToDoc = new Map<string, string>();
    for (let i = 0; i < docs.length; i += 64) {
      await Promise.all(
        docs.slice(i, i + 64).map(async (d) => {
          const f = await client.files.create({ file: new File([`${d.title}\n\n${d.text}`], `${d._id}.txt`), purpose: "assistants" });
          fileToDoc.set(f.id, d._id);
        }),
      );
    }
    for (const id of fileToDoc.keys()) await client.files.waitForProcessing(id, { pollInterval: 200, maxWait: 3_600_000 });
    const ingestS = (performance.now() - t0) / 1000;
    const db = server.services.db;
    const chunkCount = (db.query("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n;
    lines.push(`SciFact: ${docs.length} documents -> ${chunkCount} chunks, ingested through the API in ${ingestS.toFixed(0)} s (${(chunkCount / ingestS).toFixed(0)} chunks/s end to end).`);
    const kb = (await client.vectorStores.list()).data[0]!.id;
    const judged = [...qrels.keys()].filter((q) => queries.has(q));
    lines.push(`Train queries with judgements: ${judged.length}.`, "", "| ranking | nDCG@10 | recall@100 |", "|---|---|---|");
    for (const w of weights) {
      let ndcg = 0;
      let recall = 0;
      for (const q of judged) {
        const hits = await server.services.search.search(kb, [queries.get(q)!], { maxResults: 300, filter: NO_FILTER, scoreThreshold: 0, embeddingWeight: w, now: Math.floor(Date.now() / 1000) });
        const ranked: string[] = [];
        for (const h of hits) {
          const d = fileToDoc.get(h.fileId)!;
          if (!ranked.includes(d)) ranked.push(d);
        }
        ndcg += ndcgAt(ranked, qrels.get(q)!, 10);
        recall += recallAt(ranked, qrels.get(q)!, 100);
      }
      const label = w === 0 ? "BM25 alone" : w === 1 ? "dense alone" : `hybrid, embedding weight ${w}${w === DEFAULT_EMBEDDING_WEIGHT ? " (default)" : ""}`;
      lines.push(`| ${label} | ${(ndcg / judged.length).toFixed(3)} | ${(recall / judged.length).toFixed(3)} |`);
    }
    // Embedding throughput: the raw model on the stored chunk texts, same batches, no pipeline.
    const sample = (db.query("SELECT text FROM chunks ORDER BY id LIMIT 2000").all() as { text: string }[]).map((r) => r.text);
    const e0 = performance.now();
    for (let i = 0; i < sample.length; i += 32) await server.services.embedder.embed(sample.slice(i, i + 32), "ingest");
    const rawRate = sample.length / ((performance.now() - e0) / 1000);
    lines.push("", `Embedding: raw model ${rawRate.toFixed(0)} chunks/s on ${sample.length} stored chunks (batches of 32, int8, ${server.services.embedder.model.id}); the whole pipeline (upload, parse, chunk, embed, commit, index) ${(chunkCount / ingestS).toFixed(0)} chunks/s, ${((chunkCount / ingestS / rawRate) * 100).toFixed(0)}% of the raw model.`);
    // HNSW against exact search on the same vectors
    const index = server.services.search.vectorIndex;
    let agree = 0;
    const probes = judged.slice(0, 200);
    for (const q of probes) {
      const v = await server.services.search.embedQuery(queries.get(q)!);
      const approx = new Set(index.search(v, 10).map((m) => m.id));
      const exact = await server.services.search.exactForBench(kb, v, 10);
      agree += exact.filter((e) => approx.has(e.id)).length / Math.max(1, exact.length);
    }
    lines.push(`HNSW recall@10 against exact search (${chunkCount} vectors, ${probes.length} queries): ${(agree / probes.length).toFixed(3)}.`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return lines.join("\n");
}

if (import.meta.main) console.log(await retrievalBench());
