// Ingestion throughput on small files against the raw model: SciFact abstracts (one .txt file
// each, ~5 chunks) are uploaded through the API and ingested (parse, chunk, embed, commit,
// index); then the same chunk texts go straight to the model, in the same process. Rounds
// alternate the two, on new documents each round, so drift of a shared machine hits both. The
// uploads come from a client process of their own, as a user's would; a first round of 64
// files, not counted, starts the parse processes and warms both paths.
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config";
import { startServer } from "../src/server";
import { ROOT, table } from "./lib";

const SCIFACT = join(ROOT, "../shared/scifact/corpus.jsonl");
const KEY = "sk-bench-pipeline-key";
const PER_ROUND = 400;
const ROUNDS = 5;
const WARM_UP = 64;

export async function pipelineBench(): Promise<string> {
  if (!existsSync(SCIFACT)) return "skipped: ../shared/scifact is absent";
  const docs = readFileSync(SCIFACT, "utf8").split("\n").filter(Boolean).slice(0, WARM_UP + PER_ROUND * ROUNDS).map((l) => JSON.parse(l) as { _id: string; title: string; text: string });
  const dir = mkdtempSync(join(tmpdir(), "ragd-bench-pipeline-"));
  const server = await startServer(loadConfig(["--data-dir", dir, "--port", "0", "--host", "127.0.0.1", "--api-key", KEY, "--log-level", "warn"], {}));
  const rows: (string | number)[][] = [];
  let pipeChunks = 0;
  let pipeSecs = 0;
  let rawSecs = 0;
  let besidesAll = 0;
  let clientCpuAll = 0;
  const ratios: number[] = [];
  try {
    // Read straight from the data directory's SQLite file, beside the running server.
    const db = new Database(join(dir, "ragd.db"), { readonly: true });
    // Only the round's files are waiting at any time: their jobs are the queue's only ones,
    // counted through its index of waiting jobs (a count of the files table read every row
    // again after each commit, up to 0.45 ms a poll by the last round, in this process). The
    // condition must read as the index's own does, or SQLite finds no plan for INDEXED BY.
    const pending = db.query(`SELECT COUNT(*) AS n FROM jobs INDEXED BY jobs_ready WHERE state IN ('queued', 'running')`);
    const ingest = async (round: typeof docs) => {
      const docsFile = join(dir, "round.json");
      writeFileSync(docsFile, JSON.stringify(round));
      const p = Bun.spawn(["bun", join(ROOT, "bench/pipeline-client.ts"), `${server.url}/v1`, KEY, docsFile], { stdout: "pipe", stderr: "inherit" });
      const cpu0 = process.cpuUsage();
      const out = await new Response(p.stdout).text();
      if ((await p.exited) !== 0) throw new Error("the upload client failed");
      while ((pending.get() as { n: number }).n > 0) await Bun.sleep(20);
      const cpu = process.cpuUsage(cpu0);
      // timed from the client's first request, not from its process start
      const { started, ids } = JSON.parse(out) as { started: number; ids: string[] };
      const usage = p.resourceUsage();
      const clientCpu = usage ? (Number(usage.cpuTime.user) + Number(usage.cpuTime.system)) / 1e6 : NaN;
      return { ids, secs: (Date.now() - started) / 1000, serverCpu: (cpu.user + cpu.system) / 1e6, clientCpu };
    };
    await ingest(docs.slice(0, WARM_UP));
    for (let r = 0; r < ROUNDS; r++) {
      const round = docs.slice(WARM_UP + r * PER_ROUND, WARM_UP + (r + 1) * PER_ROUND);
      const { ids, secs, serverCpu, clientCpu } = await ingest(round);
      clientCpuAll += clientCpu;
      const texts = (db.query(`SELECT c.text FROM chunks c WHERE c.file_id IN (SELECT value FROM json_each(?)) ORDER BY c.id`).all(JSON.stringify(ids)) as { text: string }[]).map((x) => x.text);
      const e0 = performance.now();
      const rawCpu0 = process.cpuUsage();
      // all queued at once, so every worker of the embedder is busy, as during ingestion
      await server.services.embedder.embed(texts, "ingest");
      const raw = (performance.now() - e0) / 1000;
      const rawCpu = process.cpuUsage(rawCpu0);
      // CPU besides the model: the server's beyond what the model took alone on the same texts, and the client's
      const besides = serverCpu - (rawCpu.user + rawCpu.system) / 1e6;
      besidesAll += besides;
      pipeChunks += texts.length;
      pipeSecs += secs;
      rawSecs += raw;
      ratios.push(raw / secs);
      rows.push([r + 1, round.length, texts.length, (texts.length / secs).toFixed(1), (texts.length / raw).toFixed(1), `${((raw / secs) * 100).toFixed(0)}%`, `${((besides * 1000) / round.length).toFixed(2)} / ${((clientCpu * 1000) / round.length).toFixed(2)}`]);
    }
    rows.push(["all", PER_ROUND * ROUNDS, pipeChunks, (pipeChunks / pipeSecs).toFixed(1), (pipeChunks / rawSecs).toFixed(1), `**${((rawSecs / pipeSecs) * 100).toFixed(0)}%**`, `${((besidesAll * 1000) / (PER_ROUND * ROUNDS)).toFixed(2)} / ${((clientCpuAll * 1000) / (PER_ROUND * ROUNDS)).toFixed(2)}`]);
    ratios.sort((a, b) => a - b);
    rows.push(["median / min round", "", "", "", "", `${(ratios[ratios.length >> 1]! * 100).toFixed(0)}% / ${(ratios[0]! * 100).toFixed(0)}%`, ""]);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return [
    table(["round", "files", "chunks", "pipeline chunks/s (upload to processed)", "raw model chunks/s (same texts)", "pipeline / raw", "CPU ms a file besides the model: server / upload client"], rows),
    "",
    `Pipeline: ${PER_ROUND} SciFact abstracts per round uploaded through the API (64 at a time, by a client process of its own) until every one is processed, after a warm-up round of ${WARM_UP}; raw: the same chunk texts queued at once to the server's own embedder. CPU besides the model: the server process's CPU time while the round ingests, less its CPU time while the model embeds the same texts alone; the client's from its own resource usage (both share the 2 cores with the model; parse processes, which small text files do not use, are not counted).`,
  ].join("\n");
}

if (import.meta.main) console.log(await pipelineBench());
