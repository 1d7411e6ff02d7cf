// Databases written by earlier versions open and keep their queue: migrations are SQLite's
// own business, so this is the one storage test that reads SQL.
import { expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { MIGRATIONS, openDatabase } from "../src/storage/sqlite/db";
import { SqliteIngestionRepo } from "../src/storage/sqlite/ingestion-repo";
import { SqliteStoresRepo } from "../src/storage/sqlite/stores-repo";
import { cleanup, tempDir } from "./helpers/ragd";

function oldDatabase(version: number, fill: (db: Database) => void) {
  const dir = tempDir("ragd-migrate-");
  const path = join(dir, "ragd.db");
  const old = new Database(path, { create: true, strict: true });
  for (const m of MIGRATIONS.slice(0, version)) old.exec(m);
  old.exec(`PRAGMA user_version = ${version}`);
  old.exec(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`);
  for (const [id, status] of [["file-a", "uploaded"], ["file-b", "processed"], ["file-c", "error"]])
    old.exec(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, status_details, content_type, sha256) VALUES ('${id}', 'p', 1, 0, 'a.txt', 'assistants', '${status}', ${status === "error" ? "'unsupported format'" : "NULL"}, 'text/plain', 'x')`);
  old.exec(`INSERT INTO documents (file_id, format, text) VALUES ('file-b', 'text', 'hello')`);
  old.exec(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_1', 'p', 0, 0)`);
  fill(old);
  old.close();
  return { dir, path };
}

/** Every statement the code under test prepares, and the connection's own query to plan them. */
function recordQueries(db: Database) {
  const seen: string[] = [];
  const query = db.query.bind(db);
  db.query = ((sql: string) => (seen.push(sql), query(sql))) as typeof db.query;
  return { seen, query };
}

test("a v3 database (before per-store chunking) keeps its queued job, its memberships and its outcomes", async () => {
  const { dir, path } = oldDatabase(3, (db) => {
    db.exec(`INSERT INTO jobs (file_id, enqueued_at, state, attempts, run_after, last_error) VALUES ('file-a', 5, 'queued', 2, 0, 'boom')`);
    db.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ('vs_1', 'file-a', 0), ('vs_1', 'file-b', 0), ('vs_1', 'file-c', 0)`);
  });
  const db = openDatabase(path);
  expect(db.query(`SELECT file_id, cut, state, attempts, error FROM jobs ORDER BY file_id`).all()).toEqual([
    { file_id: "file-a", cut: "auto", state: "queued", attempts: 2, error: "boom" },
    { file_id: "file-b", cut: "auto", state: "done", attempts: 0, error: null },
    { file_id: "file-c", cut: "auto", state: "failed", attempts: 0, error: "unsupported format" },
  ]);
  expect(db.query(`SELECT cut FROM vector_store_files`).all()).toEqual([{ cut: "auto" }, { cut: "auto" }, { cut: "auto" }]);
  expect((await new SqliteStoresRepo(db).getFile("vs_1", "file-c", 0))?.errorCode).toBe("invalid_file");
  expect((await new SqliteIngestionRepo(db).claim("me", Date.now(), 1000, 3))?.fileId).toBe("file-a");
  db.close();
  cleanup(dir);
});

test("a v4 database's chunk sets become jobs: done, failed and queued cuts keep their state", async () => {
  const { dir, path } = oldDatabase(4, (db) => {
    db.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at, strategy) VALUES ('vs_1', 'file-b', 0, 'static:100:0')`);
    db.exec(`INSERT INTO chunk_sets (file_id, strategy, status, details) VALUES ('file-b', 'static:100:0', 'failed', 'embedding failed')`);
    db.exec(`INSERT INTO chunks (file_id, strategy, idx, text, location, char_start, char_end, tokens) VALUES ('file-b', 'auto', 0, 'hello', '{}', 0, 5, 1)`);
  });
  const db = openDatabase(path);
  expect(db.query(`SELECT cut, state, error FROM jobs WHERE file_id = 'file-b' ORDER BY cut`).all()).toEqual([
    { cut: "auto", state: "done", error: null },
    { cut: "static:100:0", state: "failed", error: "embedding failed" },
  ]);
  expect(db.query(`SELECT cut, text FROM chunks`).all()).toEqual([{ cut: "auto", text: "hello" }]);
  expect(db.query(`SELECT name FROM sqlite_master WHERE name = 'chunk_sets'`).get()).toBeNull();
  expect((await new SqliteStoresRepo(db).getFile("vs_1", "file-b", 0))).toMatchObject({ status: "failed", error: "embedding failed" });
  db.close();
  cleanup(dir);
});

test("files and cuts that have no job (written before jobs existed) are queued once at start", async () => {
  const { dir, path } = oldDatabase(4, (db) => {
    db.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at, strategy) VALUES ('vs_1', 'file-b', 0, 'static:100:0')`);
  });
  const db = openDatabase(path);
  db.exec(`DELETE FROM jobs`);
  const ingestion = new SqliteIngestionRepo(db);
  expect(await ingestion.enqueueMissing(["assistants"], 5)).toBe(2); // file-a's default cut, file-b's store cut
  expect(await ingestion.enqueueMissing(["assistants"], 5)).toBe(0);
  expect(db.query(`SELECT file_id, cut FROM jobs ORDER BY file_id`).all()).toEqual([
    { file_id: "file-a", cut: "auto" },
    { file_id: "file-b", cut: "static:100:0" },
  ]);
  db.close();
  cleanup(dir);
});

test("search's lookups of hits by id read the chunks' place index, not their 2 KB rows", async () => {
  const { SqliteChunksRepo } = await import("../src/storage/sqlite/chunks-repo");
  const dir = tempDir("ragd-place-");
  const db = openDatabase(join(dir, "ragd.db"));
  const { seen, query } = recordQueries(db);
  const repo = new SqliteChunksRepo(db);
  await repo.visible("vs_1", null, 0, [1, 2]);
  await repo.neighbours([1, 2], 4);
  expect(seen).toHaveLength(2);
  for (const sql of seen) {
    const plan = (query(`EXPLAIN QUERY PLAN ${sql}`).all({ storeId: "vs_1", now: 0, ids: "[1]", radius: 4 } as never) as { detail: string }[]).map((r) => r.detail);
    expect(plan).toContain("SEARCH c USING COVERING INDEX chunks_place (id=?)");
  }
  db.close();
  cleanup(dir);
});

test("a database from before cut_bytes gets each cut's bytes summed once, and a store's usage reads them", async () => {
  const version = MIGRATIONS.findIndex((m) => m.includes("CREATE TABLE cut_bytes"));
  const { dir, path } = oldDatabase(version, (db) => {
    const insert = db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES (?, 'auto', ?, ?, '{}', 0, 1, 1, ?)`);
    insert.run("file-b", 0, "héllo", new Uint8Array(6));
    insert.run("file-b", 1, "world", null);
    db.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ('vs_1', 'file-b', 0)`);
  });
  const db = openDatabase(path);
  expect(db.query(`SELECT file_id AS fileId, cut, chunks, bytes FROM cut_bytes`).all()).toEqual([{ fileId: "file-b", cut: "auto", chunks: 2, bytes: 6 + 6 + 5 }]);
  expect(await new SqliteStoresRepo(db).usageBytes("vs_1", 0)).toBe(17);
  db.close();
  cleanup(dir);
});

test("a claim reads the queue's open jobs in claim order, never every job ever run", async () => {
  const dir = tempDir("ragd-claim-plan-");
  const db = openDatabase(join(dir, "ragd.db"));
  const { seen, query } = recordQueries(db);
  const repo = new SqliteIngestionRepo(db);
  await repo.claim("runner", 0, 1000, 3);
  await repo.exhausted(3, 5, 0);
  await repo.release("runner");
  const reads = seen.filter((sql) => /\bjobs\b/.test(sql));
  expect(reads).toHaveLength(3);
  for (const sql of reads) {
    const plan = (query(`EXPLAIN QUERY PLAN ${sql}`).all({ now: 0, max: 3, maxRuns: 5, maxAttempts: 3, owner: "runner" } as never) as { detail: string }[]).map((r) => r.detail);
    // done and failed jobs are in neither index
    expect(plan.some((d) => /^(SCAN|SEARCH) j(obs)? USING INDEX jobs_(open_order|ready)\b/.test(d))).toBe(true);
    expect(plan.some((d) => /^SCAN j(obs)?$/.test(d))).toBe(false);
    expect(plan.some((d) => d.includes("TEMP B-TREE"))).toBe(false);
  }
  db.close();
  cleanup(dir);
});

test("a project's bytes and the jobs per state are kept as totals: summed once from an older database, then equal to the sums after every change", async () => {
  const version = MIGRATIONS.findIndex((m) => m.includes("CREATE TABLE project_bytes"));
  const { dir, path } = oldDatabase(version, (db) => {
    db.exec(`INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) VALUES ('file-a', 'auto', 'queued', 0, 0), ('file-b', 'auto', 'done', 0, 0), ('file-c', 'auto', 'failed', 0, 0)`);
  });
  const db = openDatabase(path);
  const { sqliteRepos } = await import("../src/storage/sqlite/index");
  const r = sqliteRepos(db);
  const kept = () => ({
    bytes: db.query(`SELECT project_id AS p, bytes FROM project_bytes ORDER BY 1`).all(),
    jobs: db.query(`SELECT state, n FROM job_counts WHERE n > 0 ORDER BY 1`).all(),
  });
  const summed = () => ({
    bytes: db.query(`SELECT project_id AS p, SUM(bytes) AS bytes FROM files GROUP BY 1 ORDER BY 1`).all(),
    jobs: db.query(`SELECT state, COUNT(*) AS n FROM jobs GROUP BY 1 ORDER BY 1`).all(),
  });
  expect(kept()).toEqual({ bytes: [{ p: "p", bytes: 3 }], jobs: [{ state: "done", n: 1 }, { state: "failed", n: 1 }, { state: "queued", n: 1 }] });

  await r.keys.createProject({ id: "q", name: "q", createdAt: 0 });
  const file = (id: string, projectId: string, bytes: number) =>
    ({ id, projectId, bytes, createdAt: 0, filename: "a.txt", purpose: "assistants", status: "uploaded", statusDetails: null, expiresAt: null, contentType: "text/plain", sha256: "x" }) as const;
  expect(await r.files.insert(file("file-d", "p", 100), 0, 0)).toBe(true);
  expect(await r.files.insert(file("file-e", "q", 40), 50, 0)).toBe(true);
  // the quota reads the kept total: 40 + 20 > 50
  expect(await r.files.insert(file("file-f", "q", 20), 50, 0)).toBe(false);
  expect(kept()).toEqual(summed());
  const job = (await r.ingestion.claim("me", 0, 60_000, 3))!;
  expect(kept()).toEqual(summed());
  await r.ingestion.finish(job, "me", { status: "processed", format: "text", text: "x", chunks: [] }, 0);
  await r.ingestion.finish((await r.ingestion.claim("me", 0, 60_000, 3))!, "me", { status: "failed", code: "invalid_file", message: "no" }, 0);
  expect(kept()).toEqual(summed());
  expect(await r.files.remove("q", "file-e", 0)).toBeTruthy();
  expect(await r.files.remove("p", "file-b", 0)).toBeTruthy();
  expect(kept()).toEqual(summed());
  // a project whose last file went is gone from the totals, as from the sums
  expect(kept().bytes).toEqual([{ p: "p", bytes: 102 }]);
  expect(await r.files.bytesByProject()).toEqual([{ project: "p", bytes: 102 }]);
  expect((await r.ingestion.stats()).states).toEqual(Object.fromEntries((summed().jobs as { state: string; n: number }[]).map((j) => [j.state, j.n])));
  db.close();
  cleanup(dir);
});

test("tombstones written before they had a time start theirs at the upgrade, and are swept a week later, not at once", async () => {
  const version = MIGRATIONS.findIndex((m) => m.includes("ADD COLUMN deleted_at"));
  const { dir, path } = oldDatabase(version, (db) => {
    db.exec(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_2', 'p', 0, 0)`);
    db.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ('vs_1', 'file-b', 0)`);
    db.exec(`DELETE FROM vector_store_files WHERE store_id = 'vs_1'`);
    db.exec(`DELETE FROM vector_stores WHERE id = 'vs_2'`);
  });
  const db = openDatabase(path);
  const stores = new SqliteStoresRepo(db);
  const now = Math.floor(Date.now() / 1000);
  expect(await stores.fileSeq("vs_1", "file-b")).not.toBeNull();
  expect(await stores.seq("p", "vs_2")).not.toBeNull();
  expect(await stores.pruneTombstones(now - 60, 100)).toBe(0);
  // removed after the upgrade: the triggers give the time
  db.exec(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_3', 'p', 0, 0)`);
  db.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ('vs_3', 'file-a', 0)`);
  db.exec(`DELETE FROM vector_store_files WHERE store_id = 'vs_3'`);
  db.exec(`DELETE FROM vector_stores WHERE id = 'vs_1'`);
  const times = db.query(`SELECT id AS k, deleted_at AS t FROM vector_store_tombstones UNION ALL SELECT store_id || '/' || file_id, deleted_at FROM store_file_tombstones ORDER BY k`).all() as { k: string; t: number }[];
  expect(times.map((r) => r.k)).toEqual(["vs_1", "vs_2", "vs_3/file-a"]);
  for (const { t } of times) expect(Math.abs(t - now)).toBeLessThan(60);
  expect(await stores.pruneTombstones(now + 60, 100)).toBe(3);
  expect(await stores.seq("p", "vs_2")).toBeNull();
  db.close();
  cleanup(dir);
});
