// Search's memory of where each chunk sits must answer exactly as the database would: the
// neighbourhoods keyword ranking counts, and which hits a store may see.
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChunkPlaces, visibleByPlace } from "../src/search/chunk-places";
import { groupKey } from "../src/storage/repos";
import { KeywordSearch } from "../src/search/keyword-search";
import { SqliteChunksRepo } from "../src/storage/sqlite/chunks-repo";
import { openDatabase } from "../src/storage/sqlite/db";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const at = (fileId: string, idx: number, cut = "auto") => ({ fileId, cut, idx });

describe("ChunkPlaces", () => {
  test("a cut written in order gives each chunk the chunks within the radius, clipped at its ends", () => {
    const p = new ChunkPlaces();
    for (let i = 0; i < 6; i++) p.add(10 + i, at("file-a", i));
    p.add(16, at("file-b", 0));
    expect(p.neighbours(10, 2)).toEqual([10, 11, 12]);
    expect(p.neighbours(13, 2)).toEqual([11, 12, 13, 14, 15]);
    expect(p.neighbours(15, 4)).toEqual([11, 12, 13, 14, 15]);
    expect(p.neighbours(16, 4)).toEqual([16]);
    expect(p.neighbours(99, 4)).toBeUndefined();
    expect(p.groupOfChunk(12)).toMatchObject({ fileId: "file-a", cut: "auto" });
  });

  test("a cut read as a run of ids answers as one read chunk by chunk", () => {
    const run = new ChunkPlaces();
    run.addRun("file-a", "auto", 10, 15, 10);
    run.addRun("file-b", "auto", 16, 16, 16);
    const one = new ChunkPlaces();
    for (let i = 0; i < 6; i++) one.add(10 + i, at("file-a", i));
    one.add(16, at("file-b", 0));
    for (let id = 9; id <= 17; id++) {
      expect(run.neighbours(id, 2)).toEqual(one.neighbours(id, 2));
      expect(run.groupOfChunk(id)).toEqual(one.groupOfChunk(id));
    }
    expect(run.size).toBe(7);
    run.add(13, at("file-a", 3)); // replayed
    expect(run.size).toBe(7);
  });

  test("ids far apart, past 2^32, and across pages; a page whose chunks are gone is dropped", () => {
    const p = new ChunkPlaces();
    const big = 2 ** 33 + 65_530;
    for (let i = 0; i < 10; i++) p.add(big + i, at("file-big", i)); // crosses a page boundary
    p.add(3, at("file-small", 0));
    expect(p.neighbours(big + 5, 2)).toEqual([big + 3, big + 4, big + 5, big + 6, big + 7]);
    expect(p.neighbours(3, 2)).toEqual([3]);
    expect(p.groupOfChunk(big + 9)).toMatchObject({ fileId: "file-big" });
    for (let i = 0; i < 10; i++) p.delete(big + i);
    expect(p.size).toBe(1);
    expect((p as unknown as { pages: Map<number, unknown> }).pages.size).toBe(1);
    expect(p.groupOfChunk(big)).toBeUndefined();
  });

  test("a change seen again (a replay of the log over a scan) changes nothing", () => {
    const p = new ChunkPlaces();
    for (let i = 0; i < 3; i++) p.add(1 + i, at("file-a", i));
    for (let i = 0; i < 3; i++) p.add(1 + i, at("file-a", i));
    expect(p.size).toBe(3);
    expect(p.neighbours(2, 4)).toEqual([1, 2, 3]);
    p.delete(7);
    expect(p.size).toBe(3);
  });

  test("the chunks of some cuts as id ranges: exactly their ids, whether the cuts interleave, lost chunks or span pages", () => {
    const p = new ChunkPlaces();
    // a: ids 1-5 on its own; b and c interleaved (6-25); d across a page boundary; e not asked
    for (let i = 0; i < 5; i++) p.add(1 + i, at("file-a", i));
    for (let i = 0; i < 20; i++) p.add(6 + i, at(i % 2 ? "file-c" : "file-b", i >> 1));
    for (let i = 0; i < 10; i++) p.add(65_530 + i, at("file-d", i));
    for (let i = 0; i < 3; i++) p.add(100 + i, at("file-e", i));
    p.delete(3);
    p.delete(65_533);
    const ids = (r: Float64Array) => [...Array(r.length / 2)].flatMap((_, i) => [...Array(r[2 * i + 1]! - r[2 * i]! + 1)].map((__, j) => r[2 * i]! + j));
    const keys = ["file-a", "file-b", "file-d", "file-x"].map((f) => groupKey(f, "auto"));
    const r = p.idRanges(keys);
    // ascending and disjoint
    for (let i = 2; i < r.length; i += 2) expect(r[i]!).toBeGreaterThan(r[i - 1]!);
    const expected = [1, 2, 4, 5, ...[...Array(10)].map((_, i) => 6 + 2 * i), ...[65_530, 65_531, 65_532, 65_534, 65_535, 65_536, 65_537, 65_538, 65_539]];
    expect(ids(r)).toEqual(expected);
    expect(p.idRanges([])).toEqual(new Float64Array(0));
  });

  test("what it cannot tell exactly it leaves to the database: interleaved cuts, positions out of order, a cut missing some chunks", () => {
    const p = new ChunkPlaces();
    // two files written at once, their ids interleaved
    for (let i = 0; i < 4; i++) {
      p.add(1 + 2 * i, at("file-a", i));
      p.add(2 + 2 * i, at("file-b", i));
    }
    expect(p.neighbours(3, 1)).toBeUndefined();
    expect(p.neighbours(4, 1)).toBeUndefined();
    // ids not following positions
    p.add(20, at("file-c", 1));
    p.add(21, at("file-c", 0));
    expect(p.neighbours(20, 1)).toBeUndefined();
    // one chunk of a cut gone
    for (let i = 0; i < 3; i++) p.add(30 + i, at("file-d", i));
    p.delete(32);
    expect(p.neighbours(30, 4)).toBeUndefined();
    // every chunk of the cut gone, then the cut written again: known afresh
    p.delete(30);
    p.delete(31);
    expect(p.groupOfChunk(30)).toBeUndefined();
    for (let i = 0; i < 3; i++) p.add(40 + i, at("file-d", i));
    expect(p.neighbours(41, 4)).toEqual([40, 41, 42]);
    // a different cut of the same file is a run of its own
    for (let i = 0; i < 2; i++) p.add(50 + i, at("file-d", i, "static:100:0"));
    expect(p.neighbours(50, 4)).toEqual([50, 51]);
    expect(p.neighbours(42, 4)).toEqual([40, 41, 42]);
  });
});

// Paragraphs of the project's own documentation, as chunks of several files.
const paragraphs = ["README.md", "docs/ARCHITECTURE.md"]
  .flatMap((f) => readFileSync(join(import.meta.dir, "..", f), "utf8").split(/\n\s*\n/))
  .map((p) => p.trim())
  .filter((p) => p.length > 40);
const queries = paragraphs.filter((_, i) => i % 4 === 0).map((p) => p.split(/\s+/).slice(0, 5).join(" "));

function file(db: Database, fileId: string, status: string, o: { expiresAt?: number } = {}) {
  db.query(
    `INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256, expires_at) VALUES (?, 'p', 1, 0, 'a.txt', 'assistants', ?, 'text/plain', 'x', ?)`,
  ).run(fileId, status, o.expiresAt ?? null);
}
const member = (db: Database, store: string, fileId: string, cut = "auto", cancelled = 0) =>
  db.query(`INSERT INTO vector_store_files (store_id, file_id, created_at, cut, cancelled) VALUES (?, ?, 0, ?, ?)`).run(store, fileId, cut, cancelled);
const insertChunk = (db: Database, fileId: string, idx: number, text: string, cut = "auto") =>
  db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens) VALUES (?, ?, ?, ?, '{}', 0, 0, 1)`).run(fileId, cut, idx, text);

describe("search with places against the database's answers", () => {
  test("keyword ranking with neighbourhoods and store visibility are the same as read from SQLite", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ragd-places-"));
    dirs.push(dir);
    const db = openDatabase(join(dir, "ragd.db"));
    const repo = new SqliteChunksRepo(db);
    db.query(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`).run();
    db.query(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_1', 'p', 0, 0)`).run();
    const per = Math.ceil(paragraphs.length / 8);
    const files = Array.from({ length: 8 }, (_, f) => ({ id: `file-${f}`, texts: paragraphs.slice(f * per, (f + 1) * per) }));
    // Files written one after another, except two written at once (interleaved ids), one
    // still processing, one expired, one whose membership was cancelled, one outside the store.
    for (const f of files) file(db, f.id, f.id === "file-5" ? "uploaded" : "processed", { expiresAt: f.id === "file-6" ? 1 : undefined });
    for (const f of files.slice(0, 2)) db.transaction(() => f.texts.forEach((t, i) => insertChunk(db, f.id, i, t)))();
    db.transaction(() => files[2]!.texts.forEach((t, i) => (insertChunk(db, files[2]!.id, i, t), files[3]!.texts[i] && insertChunk(db, files[3]!.id, i, files[3]!.texts[i]!))))();
    for (const f of files.slice(4)) db.transaction(() => f.texts.forEach((t, i) => insertChunk(db, f.id, i, t)))();
    for (const f of files.slice(0, 7)) member(db, "vs_1", f.id, "auto", f.id === "file-4" ? 1 : 0);
    const search = new KeywordSearch(repo, join(dir, "kw"));
    await search.start();
    expect(search.places.size).toBe(paragraphs.length);

    const same = async () => {
      const fromPlaces = await Promise.all(queries.map((q) => search.search(q, 50)));
      const places = search.places;
      search.places = new ChunkPlaces(); // every neighbourhood read from SQLite
      const fromSql = await Promise.all(queries.map((q) => search.search(q, 50)));
      search.places = places;
      expect(fromPlaces).toEqual(fromSql);
      expect(fromPlaces.flat().length).toBeGreaterThan(queries.length * 10);
      const ids = (db.query(`SELECT id FROM chunks`).values() as [number][]).map((r) => r[0]);
      const now = Math.floor(Date.now() / 1000);
      const sql = await repo.visible("vs_1", null, now, ids);
      expect(await visibleByPlace(repo, places, "vs_1", null, now, ids)).toEqual(sql);
      // chunks it does not know (not caught up yet) are asked of the database
      const half = new ChunkPlaces();
      const runs = await repo.placeRuns(null, 100);
      for (const r of runs.slice(0, runs.length / 2)) for (const c of await repo.placesOf(r.fileId, r.cut)) half.add(c.id, { ...r, idx: c.idx });
      expect(await visibleByPlace(repo, half, "vs_1", null, now, ids)).toEqual(sql);
      return sql;
    };
    const before = await same();
    // neither the processing, the expired, the cancelled nor the outside file is seen
    expect(before.size).toBe(files.slice(0, 4).reduce((n, f) => n + f.texts.length, 0));

    // Changes after start reach the places through the log: a file processed, one removed,
    // and the same chunks asked about again while the places hold some that the log has not.
    db.query(`UPDATE files SET status = 'processed' WHERE id = 'file-5'`).run();
    db.query(`DELETE FROM chunks WHERE file_id = 'file-1'`).run();
    db.transaction(() => paragraphs.slice(0, 5).forEach((t, i) => insertChunk(db, "file-1", i, t)))();
    await search.catchUp();
    const after = await same();
    expect(after.size).toBe(before.size - files[1]!.texts.length + 5 + files[5]!.texts.length);
  });
});

describe("places across a restart and behind the log", () => {
  const words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"];
  const text = (f: number, i: number) => `${words[(f + i) % 8]} ${words[(f * 3 + i) % 8]} common ${f}`;
  function database() {
    const dir = mkdtempSync(join(tmpdir(), "ragd-places-"));
    dirs.push(dir);
    const db = openDatabase(join(dir, "ragd.db"));
    db.query(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`).run();
    db.query(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_1', 'p', 0, 0)`).run();
    for (let f = 0; f < 8; f++) {
      file(db, `file-${f}`, "processed");
      member(db, "vs_1", `file-${f}`);
    }
    return { dir, db, repo: new SqliteChunksRepo(db) };
  }
  async function withoutPlaces<T>(search: KeywordSearch, run: () => Promise<T>) {
    const places = search.places;
    search.places = new ChunkPlaces();
    try {
      return await run();
    } finally {
      search.places = places;
    }
  }

  test("a restart loads the saved index, reads places ahead of it, replays the log: the same answers as SQLite's", async () => {
    const { dir, db, repo } = database();
    for (let f = 0; f < 6; f++) db.transaction(() => Array.from({ length: 12 }, (_, i) => insertChunk(db, `file-${f}`, i, text(f, i))))();
    const first = new KeywordSearch(repo, join(dir, "kw"));
    await first.start();
    await first.save();
    // After the save: a file written again, one removed, two written at once, one chunk deleted.
    db.transaction(() => {
      db.query(`DELETE FROM chunks WHERE file_id = 'file-1'`).run();
      for (let i = 0; i < 7; i++) insertChunk(db, "file-1", i, text(1, i + 3));
    })();
    db.query(`DELETE FROM chunks WHERE file_id = 'file-2'`).run();
    db.transaction(() => {
      for (let i = 0; i < 10; i++) {
        insertChunk(db, "file-6", i, text(6, i));
        insertChunk(db, "file-7", i, text(7, i));
      }
    })();
    db.query(`DELETE FROM chunks WHERE file_id = 'file-3' AND idx = 5`).run();

    const second = new KeywordSearch(repo, join(dir, "kw"));
    await second.start();
    const ids = (db.query(`SELECT id FROM chunks`).values() as [number][]).map((r) => r[0]);
    expect(second.places.size).toBe(ids.length);
    const asked = [...ids, 1, 2, 30]; // and some deleted
    expect(await visibleByPlace(repo, second.places, "vs_1", null, 10, asked)).toEqual(await repo.visible("vs_1", null, 10, asked));
    const sql = await repo.neighbours(ids, 4);
    let known = 0;
    for (const id of ids) {
      const near = second.places.neighbours(id, 4);
      if (near) expect(near).toEqual(sql.get(id)!.sort((a, b) => a - b)), known++;
    }
    expect(known).toBeGreaterThan(ids.length / 2);
    const qs = ["alpha common", "beta gamma", "zeta 3", "theta eta"];
    const fromPlaces = await Promise.all(qs.map((q) => second.search(q, 40)));
    expect(fromPlaces).toEqual(await withoutPlaces(second, () => Promise.all(qs.map((q) => second.search(q, 40)))));
  });

  test("while the index is behind the log (a delete not replayed yet), neighbourhoods are SQLite's", async () => {
    const { dir, db, repo } = database();
    db.transaction(() => Array.from({ length: 9 }, (_, i) => insertChunk(db, "file-0", i, i === 4 ? "apple banana" : `filler words ${i} apple`)))();
    db.transaction(() => Array.from({ length: 3 }, (_, i) => insertChunk(db, "file-1", i, i === 1 ? "apple cherry" : `other text ${i}`)))();
    const search = new KeywordSearch(repo, join(dir, "kw"));
    await search.start();
    // another process deleted file-0; this one has not replayed it
    db.query(`DELETE FROM chunks WHERE file_id = 'file-0'`).run();
    const fromPlaces = await search.search("apple", 20);
    expect(fromPlaces).toEqual(await withoutPlaces(search, () => search.search("apple", 20)));
  });
});
