// Bringing the vector index up to date after a large document commits must not freeze the
// server: vectors are added a few milliseconds at a time, and the event loop (which serves
// every HTTP request) gets a turn between slices.
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { SearchService } from "../src/services/search";
import { encodeVector } from "../src/storage/vector-codec";
import { cleanup, tempDir } from "./helpers/ragd";
import { unitVector, withSearchService } from "./helpers/search";

const dir = tempDir();
afterAll(() => cleanup(dir));

/** A search service over a fresh SQLite file holding one processed file, whose chunks `add` commits straight into the database, as ingestion's commits leave them. */
async function withSearch(name: string, run: (search: SearchService, add: (from: number, n: number) => void) => Promise<void>) {
  await withSearchService(join(dir, name), async (search, db, embedder) => {
    db.query(
      `INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES ('file-big', 'p', 1, 0, 'big.pdf', 'assistants', 'processed', 'application/pdf', 'x')`,
    ).run();
    const insert = db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES ('file-big', 'auto', ?, 'x', '{}', 0, 1, 1, ?)`);
    const add = (from: number, n: number) =>
      db.transaction(() => {
        for (let i = from; i < from + n; i++) insert.run(i, encodeVector(unitVector(embedder.model.dims)));
      })();
    await run(search, add);
  });
}

test("catching up 8,000 vectors leaves the event loop free between slices", async () => {
  await withSearch("slices", async (search, add) => {
    // One large document's chunks, committed as ingestion commits them.
    add(0, 8_000);

    // A timer that asks for the loop every millisecond records the longest wait it had.
    let done = false;
    let longest = 0;
    let turns = 0;
    const watch = (async () => {
      while (!done) {
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 0));
        longest = Math.max(longest, performance.now() - t);
        turns++;
      }
    })();
    const started = performance.now();
    await search.catchUp();
    const took = performance.now() - started;
    done = true;
    await watch;

    expect(search.vectorIndex.size()).toBe(8_000);
    // The loop turned many times while the catch-up ran, and no single wait came near the
    // whole of it (one blocking add would be one turn as long as the catch-up; how long the
    // catch-up takes is the machine's business: about 1 s on 2 cores).
    expect(turns).toBeGreaterThan(100);
    expect(longest).toBeLessThan(took / 10);
  });
}, 120_000);

test("a search whose catch-up meets the vector index thread being replaced is answered, not failed", async () => {
  await withSearch("replaced", async (search, add) => {
    // past the exact-search limit, so searches use the index
    add(0, 3_000);
    await search.catchUp();
    // committed after the last catch-up: the next search adds them first, while the thread is replaced
    add(3_000, 10);
    (search.vectorIndex as unknown as { worker: Worker }).worker.terminate();
    const hits = await search.search("vs-none", ["anything"], { projectId: "p", maxResults: 5, filter: null, scoreThreshold: 0, embeddingWeight: 1, now: 0 });
    expect(Array.isArray(hits)).toBe(true);
  });
}, 120_000);

test("a stored vector of another dimension is left out of vector search, not a failure of every search", async () => {
  await withSearchService(join(dir, "wrong-dims"), async (search, db, embedder) => {
    db.query(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES ('file-w', 'p', 1, 0, 'w.txt', 'assistants', 'processed', 'text/plain', 'x')`).run();
    const insert = db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES ('file-w', 'auto', ?, 'x', '{}', 0, 1, 1, ?)`);
    // past the exact-search limit, so searches use the index; the last one of another model
    for (let i = 0; i < 2_500; i++) insert.run(i, encodeVector(unitVector(embedder.model.dims)));
    insert.run(2_500, encodeVector(unitVector(embedder.model.dims + 8)));
    await search.catchUp();
    expect(search.vectorIndex.size()).toBe(2_500);
    const hits = await search.search("vs-none", ["anything"], { projectId: "p", maxResults: 5, filter: null, scoreThreshold: 0, embeddingWeight: 1, now: 0 });
    expect(Array.isArray(hits)).toBe(true);
  });
}, 120_000);

test("a saved vector index ahead of the database (commits lost with the power, an older backup) is built again, not trusted", async () => {
  const dataDir = join(dir, "ahead");
  const dbPath = join(dataDir, "ragd.db");
  const backup = join(dir, "ahead-backup.db");
  const vectors = new Map<number, Float32Array>();
  await withSearchService(dataDir, async (search, db, embedder) => {
    const add = (file: string, n: number) => {
      db.query(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES (?, 'p', 1, 0, 'a.txt', 'assistants', 'processed', 'text/plain', 'x')`).run(file);
      for (let i = 0; i < n; i++) {
        const v = unitVector(embedder.model.dims);
        const { id } = db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES (?, 'auto', ?, 'x', '{}', 0, 1, 1, ?) RETURNING id`).get(file, i, encodeVector(v)) as { id: number };
        vectors.set(id, v);
      }
    };
    add("file-kept", 5);
    // What SQLite holds after a power loss: the commits up to here.
    db.exec(`VACUUM INTO '${backup}'`);
    // Committed (visible, not yet on disk), taken into the index, and saved with it at stop.
    add("file-lost", 5);
    await search.catchUp();
    expect(search.vectorIndex.size()).toBe(10);
  });
  for (const f of ["", "-wal", "-shm"]) rmSync(dbPath + f, { force: true });
  copyFileSync(backup, dbPath);

  await withSearchService(dataDir, async (search, db, embedder) => {
    // The lost chunks' ids go to new chunks.
    db.query(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES ('file-new', 'p', 1, 0, 'a.txt', 'assistants', 'processed', 'text/plain', 'x')`).run();
    const fresh = unitVector(embedder.model.dims);
    const { id } = db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES ('file-new', 'auto', 0, 'x', '{}', 0, 1, 1, ?) RETURNING id`).get(encodeVector(fresh)) as { id: number };
    expect(id).toBe(6);
    await search.catchUp();
    // Before: the saved 10 vectors, the new chunk never added (its id was below the saved high-water mark).
    expect(search.vectorIndex.size()).toBe(6);
    const [best] = await search.vectorIndex.search(fresh, 1);
    expect(best!.id).toBe(6);
    expect(best!.similarity).toBeGreaterThan(0.95);
  }, { project: false });
}, 120_000);
