// Hybrid search fuses cosines with BM25: a chunk only the keyword side found is given its
// true cosine (read from its stored vector), a chunk the graph found keeps the graph's own,
// whichever side finished first.
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fuse } from "../src/services/search";
import { dotEncoded } from "../src/storage/vector-codec";
import { cleanup, tempDir } from "./helpers/ragd";
import { insertFiles, unitVector, withSearchService } from "./helpers/search";

const dir = tempDir();
afterAll(() => cleanup(dir));

const paragraphs = readFileSync(join(import.meta.dir, "../docs/ARCHITECTURE.md"), "utf8")
  .split(/\n\s*\n/)
  .map((p) => p.trim())
  .filter((p) => p.length > 40);

test("every candidate of a hybrid search has a cosine: the graph's for its own, the stored vector's for keyword-only hits", async () => {
  await withSearchService(dir, async (search, db, embedder) => {
    db.query(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_all', 'p', 0, 0)`).run();
    // 30 files of 100 chunks (past the exact-search limit: the graph answers), random vectors,
    // so the two sides find mostly different chunks
    const dims = embedder.model.dims;
    insertFiles(db, { files: 30, perFile: 100, text: (f, i) => paragraphs[(f * 100 + i) % paragraphs.length]!, vector: () => unitVector(dims), stores: () => [["vs_all", "{}"]] });
    await search.catchUp();
    const stored = db.query(`SELECT embedding FROM chunks WHERE id = ?`);
    const now = Math.floor(Date.now() / 1000);
    let keywordOnly = 0;
    for (const query of ["the keyword index replays the change log", "vectors in the graph", "a store's file counts"]) {
      // twice: the first embeds the query (the keyword side may finish before the graph is
      // asked), the second finds it cached (the graph is asked first)
      for (let pass = 0; pass < 2; pass++) {
        const c = await search.candidates("vs_all", query, { projectId: "p", filter: null, now, embeddingWeight: 0.4 }, 100);
        expect(c.keyword.length).toBeGreaterThan(0);
        expect(c.dense.length).toBe(100);
        const vector = await search.embedQuery("p", query);
        const dense = new Map(c.dense.map((d) => [d.id, d.score]));
        for (const d of c.dense) expect(c.cosines!.get(d.id)).toBe(d.score);
        for (const k of c.keyword) {
          if (dense.has(k.id)) continue;
          keywordOnly++;
          expect(c.cosines!.get(k.id)).toBe(dotEncoded(vector, (stored.get(k.id) as { embedding: Uint8Array }).embedding));
        }
        expect(c.cosines!.size).toBe(new Set([...c.dense, ...c.keyword].map((s) => s.id)).size);
        // what the search returns is those lists fused
        const hits = await search.search("vs_all", [query], { projectId: "p", maxResults: 20, filter: null, scoreThreshold: 0, now, embeddingWeight: 0.4 });
        const fused = fuse(c.dense, c.keyword, 0.4, c.cosines).sort((a, b) => b.score - a.score || a.id - b.id).slice(0, 20);
        expect(hits.map((h) => h.id)).toEqual(fused.map((f) => f.id));
      }
    }
    expect(keywordOnly).toBeGreaterThan(20);
  });
}, 120_000);
