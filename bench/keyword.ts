// Keyword search at 10k, 100k and 1M chunks: ragd's own index (src/search/) against SQLite
// FTS5's bm25() over the same chunk texts (what ragd used before), in the same run, in one
// process each size (a child per size, so resident memory is the index's own). Texts are cut
// from the SciFact abstracts (bench/scale-vectors.ts scaleTexts); queries are SciFact's 809
// train queries, ranked for the top 200 (what hybrid search asks of the keyword side) and the
// top 10. Also: build time, bytes on disk, start-up load time, top-10 agreement with FTS5,
// and a filtered search (half the chunks visible, in runs of 1,000 ids).
// Run: bun bench/run.ts keyword   (RAGD_BENCH_KEYWORD_SIZES=10000,100000 to choose sizes)
import { Database } from "bun:sqlite";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { analyze, parseQuery } from "../src/search/analyzer";
import { idRangesOf, KeywordIndex } from "../src/search/keyword-index";
import { loadKeywordIndex, saveKeywordIndex, snapshot } from "../src/search/keyword-files";
import { percentile, ROOT, table } from "./lib";
import { scaleTexts } from "./scale-vectors";

const SIZES = (process.env.RAGD_BENCH_KEYWORD_SIZES ?? "10000,100000,1000000").split(",").map(Number);
const STOP = new Set("a an and are as at be but by for from has have in is it its of on or that the this to was were will with which who whom what when where why how do does did not no can".split(" "));

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;

function ftsMatch(query: string) {
  const all = [...new Set(query.normalize("NFKC").toLowerCase().match(/[\p{L}\p{N}\p{Co}]+/gu) ?? [])];
  const content = all.filter((t) => !STOP.has(t));
  return (content.length ? content : all).slice(0, 64).map((w) => `"${w}"`).join(" OR ");
}

/** Phase 1 (a child process): both indexes over the same texts, built and saved in `dir`. */
async function buildSize(size: number, dir: string) {
  const texts = scaleTexts(size);
  const db = new Database(join(dir, "fts.db"));
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(`CREATE VIRTUAL TABLE f USING fts5(text, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')`);
  let t = performance.now();
  const ins = db.query("INSERT INTO f (rowid, text) VALUES (?, ?)");
  db.transaction(() => texts.forEach((x, i) => ins.run(i + 1, x)))();
  const ftsBuildS = (performance.now() - t) / 1000;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  t = performance.now();
  const index = new KeywordIndex();
  texts.forEach((x, i) => index.add(i + 1, analyze(x)));
  index.sealTail();
  await index.merge();
  const oursBuildS = (performance.now() - t) / 1000;
  const segments = index.segments.length;
  await saveKeywordIndex(join(dir, "kw"), snapshot(index));
  return { ftsBuildS, oursBuildS, segments };
}

/** Phase 2 (a fresh child process): the saved index loaded, both engines queried in turn. */
async function querySize(dir: string) {
  const queries = readFileSync(join(ROOT, "../shared/scifact/queries.train.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).text as string);
  Bun.gc(true);
  const before = rss();
  const t = performance.now();
  const loaded = loadKeywordIndex(join(dir, "kw"));
  const oursLoadS = (performance.now() - t) / 1000;
  if (!("index" in loaded)) throw new Error(loaded.reason);
  const index = loaded.index;
  Bun.gc(true);
  const oursRssMiB = rss() - before;
  const db = new Database(join(dir, "fts.db"), { readonly: true });
  const ftsQ = db.query("SELECT rowid AS id, -bm25(f) AS score FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT ?");
  const time = (fn: () => unknown) => {
    const s = performance.now();
    fn();
    return performance.now() - s;
  };
  const parsed = queries.map((q) => parseQuery(q)!);
  const matches = queries.map(ftsMatch);
  // Warm both (page cache, JIT), then alternate query by query.
  for (let i = 0; i < 100; i++) {
    ftsQ.all(matches[i]!, 200);
    index.search(parsed[i]!, 200);
  }
  const f200: number[] = [], o200: number[] = [], f10: number[] = [], o10: number[] = [], oFiltered: number[] = [];
  let agree = 0;
  // half the chunks, in runs of 1,000 ids (as files' cuts are)
  const half = idRangesOf([...Array(index.size)].map((_, i) => i + 1).filter((id) => Math.floor(id / 1000) % 2 === 0));
  queries.forEach((_, i) => {
    f200.push(time(() => ftsQ.all(matches[i]!, 200)));
    o200.push(time(() => index.search(parsed[i]!, 200)));
    let a: { id: number }[] = [];
    let b: { id: number }[] = [];
    f10.push(time(() => (a = ftsQ.all(matches[i]!, 10) as { id: number }[])));
    o10.push(time(() => (b = index.search(parsed[i]!, 10))));
    oFiltered.push(time(() => index.search(parsed[i]!, 200, half)));
    const ids = new Set(a.map((x) => x.id));
    agree += b.filter((x) => ids.has(x.id)).length / Math.max(1, a.length);
  });
  const passStart = performance.now();
  for (const p of parsed) index.search(p, 200);
  const qps = queries.length / ((performance.now() - passStart) / 1000);
  const bytes = (p: string) => (statSync(p).isDirectory() ? readdirSync(p).reduce((n, f) => n + statSync(join(p, f)).size, 0) : statSync(p).size);
  return {
    oursLoadS,
    oursRssMiB,
    oursBytes: bytes(join(dir, "kw")),
    ftsBytes: bytes(join(dir, "fts.db")),
    fts: { p50: percentile(f200, 50), p99: percentile(f200, 99), top10p50: percentile(f10, 50), top10p99: percentile(f10, 99) },
    ours: { p50: percentile(o200, 50), p99: percentile(o200, 99), top10p50: percentile(o10, 50), top10p99: percentile(o10, 99), filteredP99: percentile(oFiltered, 99), qps },
    agreement: agree / queries.length,
  };
}

type SizeResult = Awaited<ReturnType<typeof buildSize>> & Awaited<ReturnType<typeof querySize>> & { size: number };

function child(args: string[]) {
  const c = Bun.spawnSync(["bun", join(import.meta.dir, "keyword.ts"), ...args], { stderr: "inherit" });
  if (c.exitCode !== 0) throw new Error(`exit ${c.exitCode}`);
  return JSON.parse(c.stdout.toString());
}

export async function keywordBench(): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const size of SIZES) {
    const dir = mkdtempSync(join(tmpdir(), "ragd-bench-kw-"));
    let r: SizeResult;
    try {
      r = { size, ...child(["build", String(size), dir]), ...child(["query", dir]) };
    } catch (e) {
      rows.push([size.toLocaleString("en"), `failed (${(e as Error).message})`]);
      continue;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const ms = (x: number) => x.toFixed(2);
    rows.push([
      r.size.toLocaleString("en"),
      `${ms(r.ours.p50)} / ${ms(r.ours.p99)}`,
      `${ms(r.fts.p50)} / ${ms(r.fts.p99)}`,
      `${(r.fts.p99 / r.ours.p99).toFixed(1)}x`,
      `${ms(r.ours.top10p50)} / ${ms(r.ours.top10p99)}`,
      `${ms(r.fts.top10p50)} / ${ms(r.fts.top10p99)}`,
      ms(r.ours.filteredP99),
      r.ours.qps.toFixed(0),
      `${(r.agreement * 100).toFixed(1)}%`,
      `${r.oursBuildS.toFixed(1)} / ${r.ftsBuildS.toFixed(1)}`,
      `${(r.oursBytes / 2 ** 20).toFixed(0)} / ${(r.ftsBytes / 2 ** 20).toFixed(0)}`,
      r.oursLoadS.toFixed(2),
      r.oursRssMiB.toFixed(0),
      r.segments,
    ]);
  }
  return table(
    [
      "chunks",
      "ragd top 200 p50 / p99 (ms)",
      "FTS5 top 200 p50 / p99",
      "p99 ratio",
      "ragd top 10 p50 / p99",
      "FTS5 top 10 p50 / p99",
      "ragd filtered top 200 p99",
      "ragd queries/s (one core)",
      "top 10 same as FTS5",
      "build s ragd / FTS5",
      "MiB on disk ragd / FTS5",
      "ragd load s",
      "ragd resident MiB",
      "segments",
    ],
    rows,
  );
}

if (import.meta.main) {
  const [phase, a, b] = process.argv.slice(2);
  process.stdout.write(JSON.stringify(phase === "build" ? await buildSize(Number(a), b!) : await querySize(a!)));
}
