// Ingestion throughput on small files against the raw model: SciFact abstracts (one .txt file
// each, ~5 chunks) are uploaded through the API and ingested (parse, chunk, embed, commit,
// index); then the same chunk texts go straight to the model, in the same process. Rounds
// alternate the two, on new documents each round, so drift of a shared machine hits both.
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { startServer } from "../src/server";
import { ROOT, table } from "./lib";

const SCIFACT = join(ROOT, "../shared/scifact/corpus.jsonl");
const KEY = "sk-bench-pipeline-key";
const PER_ROUND = 400;
const ROUNDS = 3;

export async function pipelineBench(): Promise<string> {
  if (!existsSync(SCIFACT)) return "skipped: ../shared/scifact is absent";
  const docs = readFileSync(SCIFACT, "utf8").split("\n").filter(Boolean).slice(0, PER_ROUND * ROUNDS).map((l) => JSON.parse(l) as { _id: string; title: string; text: string });
  const dir = mkdtempSync(join(tmpdir(), "ragd-bench-pipeline-"));
  const server = await startServer(loadConfig(["--data-dir", dir, "--port", "0", "--host", "127.0.0.1", "--api-key", KEY, "--log-level", "warn"], {}));
  const rows: (string | number)[][] = [];
  let pipeChunks = 0;
  let pipeSecs = 0;
  let rawSecs = 0;
  try {
    const client = new (await import("openai")).default({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
    // Read straight from the data directory's SQLite file, beside the running server.
    const db = new Database(join(dir, "ragd.db"), { readonly: true });
    for (let r = 0; r < ROUNDS; r++) {
      const round = docs.slice(r * PER_ROUND, (r + 1) * PER_ROUND);
      const t0 = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < round.length; i += 64)
        ids.push(...(await Promise.all(round.slice(i, i + 64).map(async (d) => (await client.files.create({ file: new File([`${d.title}\n\n${d.text}`], `${d._id}.txt`), purpose: "assistants" })).id))));
      const pending = db.query(`SELECT COUNT(*) AS n FROM files WHERE status = 'uploaded' AND id IN (SELECT value FROM json_each(?))`);
      while ((pending.get(JSON.stringify(ids)) as { n: number }).n > 0) await Bun.sleep(20);
      const secs = (performance.now() - t0) / 1000;
      const texts = (db.query(`SELECT c.text FROM chunks c WHERE c.file_id IN (SELECT value FROM json_each(?)) ORDER BY c.id`).all(JSON.stringify(ids)) as { text: string }[]).map((x) => x.text);
      const e0 = performance.now();
      // all queued at once, so every worker of the embedder is busy, as during ingestion
      await server.services.embedder.embed(texts, "ingest");
      const raw = (performance.now() - e0) / 1000;
      pipeChunks += texts.length;
      pipeSecs += secs;
      rawSecs += raw;
      rows.push([r + 1, round.length, texts.length, (texts.length / secs).toFixed(1), (texts.length / raw).toFixed(1), `${((raw / secs) * 100).toFixed(0)}%`]);
    }
    rows.push(["all", PER_ROUND * ROUNDS, pipeChunks, (pipeChunks / pipeSecs).toFixed(1), (pipeChunks / rawSecs).toFixed(1), `**${((rawSecs / pipeSecs) * 100).toFixed(0)}%**`]);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return [
    table(["round", "files", "chunks", "pipeline chunks/s (upload to processed)", "raw model chunks/s (same texts)", "pipeline / raw"], rows),
    "",
    `Pipeline: ${PER_ROUND} SciFact abstracts per round uploaded through the API (64 at a time) until every one is processed; raw: the same chunk texts queued at once to the server's own embedder.`,
  ].join("\n");
}

if (import.meta.main) console.log(await pipelineBench());
