// A query's vector is kept for the project that asked it: another project asking the same
// text has it embedded for itself, so a search's timing tells nothing of others' questions.
import { afterAll, expect, test } from "bun:test";
import { cleanup, tempDir } from "./helpers/ragd";
import { insertFiles, unitVector, withSearchService } from "./helpers/search";

const dir = tempDir();
afterAll(() => cleanup(dir));

test("the query-vector cache is kept per project", async () => {
  await withSearchService(dir, async (search, db, embedder) => {
    db.query(`INSERT INTO projects (id, name, created_at) VALUES ('q', 'q', 0)`).run();
    db.query(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_p', 'p', 0, 0), ('vs_q', 'q', 0, 0)`).run();
    const dims = embedder.model.dims;
    insertFiles(db, { files: 2, perFile: 5, text: (f, i) => `passage ${i} of file ${f} about search`, vector: () => unitVector(dims), stores: (f) => [[f === 0 ? "vs_p" : "vs_q", "{}"]] });
    await search.catchUp();
    const embedded: string[] = [];
    const embed = embedder.embed.bind(embedder);
    embedder.embed = (texts, kind) => (embedded.push(...texts), embed(texts, kind));
    const now = Math.floor(Date.now() / 1000);
    const ask = (projectId: string, storeId: string, query: string) => search.search(storeId, [query], { projectId, maxResults: 5, filter: null, scoreThreshold: 0, now, embeddingWeight: 0.5 });
    await ask("p", "vs_p", "how does search work");
    await ask("p", "vs_p", "how does search work");
    expect(embedded).toEqual(["how does search work"]);
    // the same text from another project is embedded again, not found in p's entries
    await ask("q", "vs_q", "how does search work");
    expect(embedded).toEqual(["how does search work", "how does search work"]);
    await ask("q", "vs_q", "how does search work");
    await ask("p", "vs_p", "how does search work");
    expect(embedded.length).toBe(2);
    // the same vector either way: only the cache entry is per project
    expect(await search.embedQuery("p", "how does search work")).toEqual(await search.embedQuery("q", "how does search work"));
  });
}, 120_000);
