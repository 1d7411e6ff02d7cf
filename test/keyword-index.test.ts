import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { analyze, parseQuery } from "../src/search/analyzer";
import { idRangesOf, KeywordIndex } from "../src/search/keyword-index";
import { loadKeywordIndex, saveKeywordIndex, snapshot } from "../src/search/keyword-files";
import { KeywordSearch } from "../src/search/keyword-search";
import { SqliteChunksRepo } from "../src/storage/sqlite/chunks-repo";
import { openDatabase } from "../src/storage/sqlite/db";

// A small real corpus: the paragraphs of the project's own documentation.
const root = join(import.meta.dir, "..");
const paragraphs = ["README.md", "docs/ARCHITECTURE.md", "bench/README.md"]
  .flatMap((f) => readFileSync(join(root, f), "utf8").split(/\n\s*\n/))
  .map((p) => p.trim())
  .filter((p) => p.length > 40);
const queries = [
  ...paragraphs.filter((_, i) => i % 3 === 0).map((p) => p.split(/\s+/).slice(0, 6).join(" ")),
  "vector index rebuild after a crash",
  "upload a PDF and search it",
  "API keys hashed constant time",
  "résumé naïve café",
  "the of and",
];

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "ragd-kw-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** FTS5 as ragd used it before its own index: the reference ranking. */
function fts5(texts: Map<number, string>) {
  const db = new Database(":memory:");
  db.exec(`CREATE VIRTUAL TABLE f USING fts5(text, content='', contentless_delete=1, tokenize='porter unicode61 remove_diacritics 2')`);
  const ins = db.query("INSERT INTO f (rowid, text) VALUES (?, ?)");
  db.transaction(() => texts.forEach((t, id) => ins.run(id, t)))();
  return {
    db,
    delete: (id: number) => db.query("DELETE FROM f WHERE rowid = ?").run(id),
    search(query: string, k: number, only?: number[]) {
      // The query ragd gave FTS5: every kept word an OR'ed phrase, stemmed by FTS5 itself.
      const words = rawWords(query);
      if (!words.length) return [];
      const match = words.map((w) => `"${w}"`).join(" OR ");
      const where = only ? ` AND rowid IN (${only.join(",")})` : "";
      return db.query(`SELECT rowid AS id, -bm25(f) AS score FROM f WHERE f MATCH ?${where} ORDER BY bm25(f), rowid LIMIT ?`).all(match, k) as { id: number; score: number }[];
    },
  };
}

/** The words parseQuery keeps, before stemming (what ragd put in its FTS5 query). */
function rawWords(query: string) {
  const stop = new Set("a an and are as at be but by for from has have in is it its of on or that the this to was were will with which who whom what when where why how do does did not no can".split(" "));
  const all = [...new Set(query.normalize("NFKC").toLowerCase().match(/[\p{L}\p{N}\p{Co}]+/gu) ?? [])];
  const content = all.filter((t) => !stop.has(t));
  return (content.length ? content : all).slice(0, 64);
}

/** Same ids in the same order, where equal scores may come in either order; same scores. */
function expectSameRanking(ours: { id: number; score: number }[], ref: { id: number; score: number }[]) {
  expect(ours.length).toBe(ref.length);
  // Scores are kept at float32 precision (equal chunks must tie wherever they are scored).
  ours.forEach((h, i) => expect(Math.abs(h.score - ref[i]!.score)).toBeLessThan(1e-6 * Math.max(1, ref[i]!.score)));
  // The same chunks; positions may differ only between scores equal to that precision.
  expect(ours.map((h) => h.id).sort((a, b) => a - b)).toEqual(ref.map((h) => h.id).sort((a, b) => a - b));
}

function build(texts: Map<number, string>, sealEvery = 0) {
  const index = new KeywordIndex(false);
  let n = 0;
  for (const [id, t] of texts) {
    index.add(id, analyze(t));
    if (sealEvery && ++n % sealEvery === 0) index.sealTail();
  }
  return index;
}

const corpus = new Map(paragraphs.map((p, i) => [i * 3 + 1, p] as [number, string]));

describe("keyword index", () => {
  test("ranks as FTS5's bm25() does: the same top 10 with the same scores", async () => {
    expect(corpus.size).toBeGreaterThan(60);
    const ref = fts5(corpus);
    // One unsealed tail, many small segments, and segments merged down: all rank alike.
    const tailOnly = build(corpus);
    const segmented = build(corpus, 7);
    const merged = build(corpus, 7);
    merged.sealTail();
    await merged.merge();
    expect(segmented.segments.length).toBeGreaterThan(merged.segments.length);
    let compared = 0;
    for (const q of queries) {
      const expected = ref.search(q, 10);
      for (const index of [tailOnly, segmented, merged]) expectSameRanking(index.search(parseQuery(q)!, 10), expected);
      if (expected.length) compared++;
    }
    expect(compared).toBeGreaterThan(20);
  });

  test("deleted chunks are never found; once merged away, scores match FTS5 after the same deletes", async () => {
    const ref = fts5(corpus);
    const index = build(corpus, 10);
    const gone = [...corpus.keys()].filter((_, i) => i % 4 === 1);
    for (const id of gone) {
      expect(index.delete(id, analyze(corpus.get(id)!))).toBe(true);
      ref.delete(id);
    }
    expect(index.delete(gone[0]!, [])).toBe(false);
    expect(index.delete(999_999, [])).toBe(false);
    expect(index.size).toBe(corpus.size - gone.length);
    const goneSet = new Set(gone);
    for (const q of queries) for (const h of index.search(parseQuery(q)!, 20)) expect(goneSet.has(h.id)).toBe(false);
    // A merge drops the deleted chunks and with them their share of the term statistics.
    index.sealTail();
    await index.merge();
    expect(index.segments.reduce((n, s) => n + s.deletedCount, 0)).toBe(0);
    for (const q of queries) expectSameRanking(index.search(parseQuery(q)!, 10), ref.search(q, 10));
  });

  test("many chunks' lengths and term counts at once, across segments, an empty one, the tail and deletes", async () => {
    const ids = [...corpus.keys()];
    const index = build(new Map(ids.slice(0, 21).map((id) => [id, corpus.get(id)!])), 7);
    const drop = (id: number) => expect(index.delete(id, analyze(corpus.get(id)!))).toBe(true);
    // the second segment's chunks all deleted and purged: an empty segment between two others
    ids.slice(7, 14).forEach(drop);
    await index.merge();
    expect(index.segments.map((s) => s.size)).toEqual([7, 0, 7]);
    for (const id of ids.slice(21, 40)) index.add(id, analyze(corpus.get(id)!));
    [ids[2]!, ids[30]!].forEach(drop);
    const gone = new Set([...ids.slice(7, 14), ids[2], ids[30]]);
    const terms = [...new Set(queries.slice(0, 12).flatMap((q) => [...(parseQuery(q)?.terms.keys() ?? [])]))];
    expect(terms.length).toBeGreaterThan(20);
    // unsorted, with ids never added (past the tail, inside a segment's range, unknown)
    const asked = [999_999, ids[3]! - 1, ...ids.slice(0, 45).reverse()];
    const expected = new Map<number, { dl: number; tfs: number[] }>();
    for (const id of asked) {
      if (gone.has(id) || !(ids.indexOf(id) >= 0 && ids.indexOf(id) < 40)) continue;
      const words = analyze(corpus.get(id)!);
      expected.set(id, { dl: words.length, tfs: terms.map((t) => words.filter((w) => w === t).length) });
    }
    const got = index.counts(asked, terms);
    expect([...got.keys()].sort((a, b) => a - b)).toEqual([...expected.keys()].sort((a, b) => a - b));
    for (const [id, c] of expected) expect(got.get(id)).toEqual(c);
    expect([...expected.values()].some((c) => c.tfs.some((n) => n > 1))).toBe(true);
  });

  test("a filter narrows the ranking to the chunks it accepts, as a restricted FTS5 query", () => {
    const ref = fts5(corpus);
    const index = build(corpus, 16);
    const allowed = [...corpus.keys()].filter((id) => id % 5 === 1);
    for (const q of queries) expectSameRanking(index.search(parseQuery(q)!, 10, idRangesOf(allowed)), ref.search(q, 10, allowed));
  });

  test("terms are FTS5's, non-ASCII and odd words included", () => {
    const words = "straße μs µs naïve cafés über größten ﬁles élèves ys éss çs running connected ΑΘΗΝΑ ς ﬀ 10ms x86_64 über-cool ǅemal".split(" ");
    const db = new Database(":memory:");
    db.exec(`CREATE VIRTUAL TABLE f USING fts5(text, tokenize='porter unicode61 remove_diacritics 2'); CREATE VIRTUAL TABLE v USING fts5vocab(f, instance);`);
    words.forEach((w, i) => db.query("INSERT INTO f (rowid, text) VALUES (?, ?)").run(i + 1, w));
    const fts = db.query("SELECT doc, term FROM v ORDER BY doc, offset").all() as { doc: number; term: string }[];
    expect(words.flatMap((w, i) => analyze(w).map((term) => ({ doc: i + 1, term })))).toEqual(fts);
  });

  test("chunks that tie the k-th score are ordered by id, whichever segments hold them", () => {
    const index = new KeywordIndex(false);
    for (let id = 1; id <= 10; id++) index.add(id, analyze(id === 5 ? "apple pie" : "plain bread"));
    index.sealTail();
    for (let id = 11; id <= 400; id++) index.add(id, analyze(id % 10 === 0 ? "apple pie" : "plain bread"));
    index.sealTail();
    const texts = new Map<number, string>();
    for (let id = 1; id <= 400; id++) texts.set(id, (id <= 10 ? id === 5 : id % 10 === 0) ? "apple pie" : "plain bread");
    expect(index.search(parseQuery("apple")!, 3).map((h) => h.id)).toEqual([5, 20, 30]);
    expect(index.search(parseQuery("apple")!, 3).map((h) => h.id)).toEqual(fts5(texts).search("apple", 3).map((h) => h.id));
  });

  test("a quoted phrase lifts chunks that hold it verbatim", async () => {
    const db = openDatabase(join(tempDir(), "ragd.db"));
    seedDb(db, ["storage interfaces for the index and the vector data", "the vector index keeps storage apart", "vector storage in one place"]);
    const kw = new KeywordSearch(new SqliteChunksRepo(db), join(tempDir(), "kw"));
    await kw.start();
    const plain = await kw.search("vector storage", 3);
    const quoted = await kw.search(`"vector storage"`, 3);
    expect(plain.length).toBe(3);
    expect(quoted[0]!.id).toBe(3);
    expect(quoted[0]!.score).toBeGreaterThan(plain.find((h) => h.id === 3)!.score);
  });

  test("saved and loaded: the same answers; a damaged or foreign file is refused, never loaded", async () => {
    const dir = tempDir();
    const index = build(corpus, 20);
    const removed = [...corpus.keys()][3]!;
    index.delete(removed, analyze(corpus.get(removed)!));
    index.seq = 42;
    await saveKeywordIndex(dir, snapshot(index));
    const loaded = loadKeywordIndex(dir);
    if (!("index" in loaded)) throw new Error(loaded.reason);
    expect(loaded.index.seq).toBe(42);
    expect(loaded.index.maxId).toBe(index.maxId);
    expect(loaded.index.size).toBe(index.size);
    for (const q of queries) expectSameRanking(loaded.index.search(parseQuery(q)!, 10), index.search(parseQuery(q)!, 10));

    const seg = readdirSync(dir).find((f) => f.endsWith(".seg"))!;
    const bytes = readFileSync(join(dir, seg));
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(join(dir, seg), bytes);
    expect(loadKeywordIndex(dir)).toEqual({ reason: `the keyword segment ${seg} does not match its checksum` });

    const manifest = JSON.parse(readFileSync(join(dir, "keyword.json"), "utf8"));
    writeFileSync(join(dir, "keyword.json"), JSON.stringify({ ...manifest, analyzer: "other" }));
    expect(loadKeywordIndex(dir)).toEqual({ reason: "the saved keyword index was made by another analyzer (other)" });
    writeFileSync(join(dir, "keyword.json"), "{ torn");
    expect(loadKeywordIndex(dir)).toEqual({ reason: "the keyword index manifest is unreadable" });
  });
});

/** A real data directory's database with one file whose chunks are the given texts (ids 1..n). */
function seedDb(db: Database, texts: string[]) {
  db.query(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`).run();
  addFile(db, "file-a", texts);
}

function addFile(db: Database, fileId: string, texts: string[]) {
  db.query(
    `INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES (?, 'p', 1, 0, 'a.txt', 'assistants', 'processed', 'text/plain', 'x')`,
  ).run(fileId);
  const ins = db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens) VALUES (?, 'auto', ?, ?, '{}', 0, 0, 1)`);
  db.transaction(() => texts.forEach((t, i) => ins.run(fileId, i, t)))();
}

describe("keyword index upkeep from SQLite", () => {
  const texts = [...corpus.values()];
  const half = Math.floor(texts.length / 2);

  /** A database holding every text, and a keyword index started over it. */
  async function startedOnTexts() {
    const dataDir = tempDir();
    const db = openDatabase(join(dataDir, "ragd.db"));
    seedDb(db, texts);
    const repo = new SqliteChunksRepo(db);
    const kwDir = join(dataDir, "kw");
    const first = new KeywordSearch(repo, kwDir);
    await first.start();
    return { db, repo, kwDir, first };
  }

  test("a rebuild leaves one segment, the fastest to search, ranking as the segments it merged did", async () => {
    const dataDir = tempDir();
    const db = openDatabase(join(dataDir, "ragd.db"));
    // Six tails' worth: the merge policy alone would keep several segments.
    const many = Array.from({ length: 6_000 }, (_, i) => `${texts[i % texts.length]} part ${i % 97} of ${i % 13}`);
    seedDb(db, many);
    const repo = new SqliteChunksRepo(db);
    const rebuilt = new KeywordSearch(repo, join(dataDir, "kw"));
    await rebuilt.start();
    expect(rebuilt.index.size).toBe(many.length);
    expect(rebuilt.index.segments.length).toBe(1);
    const added = new KeywordIndex();
    const ids = (db.query("SELECT id, text FROM chunks ORDER BY id").all() as { id: number; text: string }[]);
    for (const r of ids) added.add(r.id, analyze(r.text));
    expect(added.segments.length).toBeGreaterThan(1);
    for (const q of queries) {
      const query = parseQuery(q)!;
      expect(rebuilt.index.search(query, 20)).toEqual(added.search(query, 20));
    }
    db.close();
  });

  test("a restart after a crash between commit and save replays the change log; the result equals a rebuild", async () => {
    const dataDir = tempDir();
    const db = openDatabase(join(dataDir, "ragd.db"));
    seedDb(db, texts.slice(0, half));
    const repo = new SqliteChunksRepo(db);
    const first = new KeywordSearch(repo, join(dataDir, "kw"));
    await first.start();
    await first.save();
    // The saved index no longer needs the log it reflects.
    expect((db.query("SELECT COUNT(*) AS n FROM chunk_changes").get() as { n: number }).n).toBe(0);

    // Committed after the save, and the process dies before the next one.
    addFile(db, "file-b", texts.slice(half));
    db.query(`DELETE FROM files WHERE id = 'file-a'`).run();
    addFile(db, "file-c", texts.slice(0, 10));
    const pending = (db.query("SELECT COUNT(*) AS n FROM chunk_changes").get() as { n: number }).n;
    expect(pending).toBe(texts.length - half + half + 10);

    const restarted = new KeywordSearch(repo, join(dataDir, "kw"));
    await restarted.start();
    expect(restarted.index.seq).toBe(await repo.lastChange());
    const rebuilt = new KeywordSearch(repo, join(tempDir(), "kw"));
    await rebuilt.start();
    expect(restarted.index.size).toBe(texts.length - half + 10);
    const live = new Set((db.query("SELECT id FROM chunks").values() as [number][]).map((r) => r[0]));
    for (const q of queries) {
      const got = await restarted.search(q, 10);
      for (const h of got) expect(live.has(h.id)).toBe(true);
      expect(got.map((h) => h.id).sort()).toEqual((await rebuilt.search(q, 10)).map((h) => h.id).sort());
    }
    db.close();
  });

  test("an index saved with more segments than the merge policy keeps (a stop mid-merge) merges them after loading", async () => {
    const { db, repo, kwDir, first } = await startedOnTexts();
    // The same chunks in a segment of two each, as a stop before any merge would leave them.
    const unmerged = new KeywordIndex(false);
    for (const [i, r] of (await repo.textsAfter(0, 10_000)).entries()) {
      unmerged.add(r.id, analyze(r.text));
      if (i % 2 === 1) unmerged.sealTail();
    }
    unmerged.sealTail();
    unmerged.seq = first.index.seq;
    const many = unmerged.segments.length;
    expect(many).toBeGreaterThan(20);
    first.index = unmerged;
    first.dirty = true;
    await first.save();

    const second = new KeywordSearch(repo, kwDir);
    await second.start();
    // the merge runs on its own after start (nothing here asks for it)
    for (let i = 0; i < 500 && second.index.segments.length >= many / 2; i++) await Bun.sleep(10);
    expect(second.index.segments.length).toBeLessThan(many / 2);
    for (let i = 0; i < 500 && !second.dirty; i++) await Bun.sleep(10);
    expect(second.dirty).toBe(true);
    for (const q of queries) expect(await second.search(q, 10)).toEqual(await first.search(q, 10));
    // the next save writes the merged segments: a later start loads them as they are
    await second.save();
    expect(loadKeywordIndex(kwDir)).toMatchObject({ index: { segments: { length: second.index.segments.length } } });
    db.close();
  });

  test("saves that overlap run one after the other; a database restored from an older backup is never served from a newer index", async () => {
    const dataDir = tempDir();
    const dbPath = join(dataDir, "ragd.db");
    const db = openDatabase(dbPath);
    seedDb(db, ["alpha one", "alpha two"]);
    const repo = new SqliteChunksRepo(db);
    const kwDir = join(dataDir, "kw");
    const kw = new KeywordSearch(repo, kwDir);
    await kw.start();
    await kw.save();
    db.exec(`VACUUM INTO '${join(dataDir, "backup.db")}'`);
    addFile(db, "file-b", ["bravo one", "bravo two", "bravo three"]);
    await kw.catchUp();
    // Two saves at once (a timer and a shutdown): both complete, the files they name exist.
    kw.index.sealTail();
    kw.dirty = true;
    const first = kw.save();
    kw.dirty = true;
    await Promise.all([first, kw.save()]);
    const manifest = JSON.parse(readFileSync(join(kwDir, "keyword.json"), "utf8"));
    for (const s of manifest.segments) expect(readdirSync(kwDir)).toContain(s.name);
    expect(readdirSync(kwDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    db.close();

    // The backup comes back, and new chunks take the ids bravo had.
    rmSync(dbPath);
    rmSync(`${dbPath}-wal`, { force: true });
    rmSync(`${dbPath}-shm`, { force: true });
    writeFileSync(dbPath, readFileSync(join(dataDir, "backup.db")));
    const restored = openDatabase(dbPath);
    addFile(restored, "file-c", ["charlie one", "charlie two", "charlie three"]);
    const again = new KeywordSearch(new SqliteChunksRepo(restored), kwDir);
    await again.start();
    expect((await again.search("bravo", 10)).length).toBe(0);
    expect((await again.search("charlie", 10)).length).toBe(3);
    restored.close();
  });

  test("a corrupt segment, a missing one, or a log pruned past the saved index means a rebuild from the chunks table", async () => {
    const { db, repo, kwDir, first } = await startedOnTexts();
    await first.save();
    const expected = await Promise.all(queries.map((q) => first.search(q, 10)));
    const check = async () => {
      const again = new KeywordSearch(repo, kwDir);
      await again.start();
      expect(again.index.size).toBe(texts.length);
      for (let i = 0; i < queries.length; i++) expectSameRanking(await again.search(queries[i]!, 10), expected[i]!);
      return again;
    };

    const seg = readdirSync(kwDir).find((f) => f.endsWith(".seg"))!;
    writeFileSync(join(kwDir, seg), readFileSync(join(kwDir, seg)).subarray(0, 100));
    const rebuilt = await check();
    expect(rebuilt.dirty).toBe(true);
    await rebuilt.save();

    rmSync(join(kwDir, readdirSync(kwDir).find((f) => f.endsWith(".seg"))!));
    await (await check()).save();

    // Another writer saved and pruned further than this replica's files: its sequence is behind the log.
    const manifest = JSON.parse(readFileSync(join(kwDir, "keyword.json"), "utf8"));
    addFile(db, "file-d", ["one more chunk about vector storage"]);
    await repo.pruneChanges(await repo.lastChange());
    expect(await repo.changeLogReaches(manifest.seq)).toBe(false);
    const behind = new KeywordSearch(repo, kwDir);
    await behind.start();
    expect(behind.index.size).toBe(texts.length + 1);
    db.close();
  });
});
