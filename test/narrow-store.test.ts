// A store (or a filter) that sees a small share of every chunk is searched inside its own
// chunks: neither list may show another store's chunk, and the keyword side ranks exactly as
// BM25 over the store's chunks alone would.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { idRangesOf } from "../src/search/keyword-index";
import { SqliteChunksRepo } from "../src/storage/sqlite/chunks-repo";
import { cleanup, tempDir } from "./helpers/ragd";
import { insertFiles, unitVector, withSearchService } from "./helpers/search";

const dir = tempDir();
afterAll(() => cleanup(dir));

const paragraphs = ["README.md", "docs/ARCHITECTURE.md"]
  .flatMap((f) => readFileSync(join(import.meta.dir, "..", f), "utf8").split(/\n\s*\n/))
  .map((p) => p.trim())
  .filter((p) => p.length > 40);

test("a store that sees 5% of the chunks: every hit is its own, keyword ranking as over its chunks alone", async () => {
  await withSearchService(dir, async (search, db, embedder) => {
    db.query(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_all', 'p', 0, 0), ('vs_small', 'p', 0, 0)`).run();
    // 40 files of 100 chunks (past the exact-search limit, so the HNSW index answers); the
    // small store holds two of them, one only through an attribute a filter then asks for.
    const dims = embedder.model.dims;
    insertFiles(db, {
      files: 40,
      perFile: 100,
      text: (f, i) => paragraphs[(f * 100 + i) % paragraphs.length]!,
      vector: () => unitVector(dims),
      stores: (f) => [["vs_all", "{}"], ...(f % 20 === 3 ? [["vs_small", JSON.stringify({ team: f === 3 ? "a" : "b" })] as [string, string]] : [])],
    });
    await search.catchUp();
    const now = Math.floor(Date.now() / 1000);
    const own = new Set((db.query(`SELECT c.id FROM chunks c WHERE c.file_id IN ('file-3', 'file-23')`).values() as [number][]).map((r) => r[0]));
    const team = { type: "eq" as const, key: "team", value: "a" };
    const teamOwn = new Set((db.query(`SELECT c.id FROM chunks c WHERE c.file_id = 'file-3'`).values() as [number][]).map((r) => r[0]));
    const queries = paragraphs.filter((_, i) => i % 7 === 0).map((p) => p.split(/\s+/).slice(0, 6).join(" "));
    for (const [q, query] of queries.entries()) {
      for (const [filter, allowed] of [[null, own], [team, teamOwn]] as const) {
        const o = { projectId: "p", maxResults: 20, filter, scoreThreshold: 0, now };
        for (const embeddingWeight of [0, 0.4, 1]) {
          const hits = await search.search("vs_small", [query], { ...o, embeddingWeight });
          for (const h of hits) expect(allowed.has(h.id)).toBe(true);
          if (embeddingWeight === 1) expect(hits.length).toBe(20);
        }
        // the keyword candidates: BM25 over the store's chunks alone, the same scores
        const { keyword } = await search.candidates("vs_small", query, { projectId: "p", filter, now, embeddingWeight: 0 }, 100);
        const alone = await search.keywords.search(query, 200, idRangesOf(allowed));
        expect(keyword).toEqual(alone.slice(0, 100));
        if (q === 0) expect(keyword.length).toBeGreaterThan(0);
        // the dense candidates: exact over the store's chunks (held in memory, int8-dot.c), as
        // SQLite's scan of the same rows scores them
        const { dense } = await search.candidates("vs_small", query, { projectId: "p", filter, now, embeddingWeight: 1 }, 20);
        const exact = new Map((await new SqliteChunksRepo(db).exact("vs_small", filter, now, await search.embedQuery("p", query), 40)).map((e) => [e.id, e.score]));
        expect(dense.length).toBe(20);
        for (const d of dense) expect(Math.abs(d.score - exact.get(d.id)!)).toBeLessThan(1e-4);
        expect(dense[19]!.score).toBeGreaterThan([...exact.values()][19]! - 1e-4);
      }
    }
    // the store's vectors were held for those searches, not read from SQLite's rows each time
    expect(search.exactVectorBytes).toBeGreaterThan(200 * embedder.model.dims);
  });
}, 120_000);
