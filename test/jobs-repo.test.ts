// The queue's storage rules on a real SQLite database.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIGRATIONS, openDatabase } from "../src/storage/db";
import { SqliteFilesRepo, type FileRow } from "../src/storage/files-repo";
import { SqliteJobsRepo } from "../src/storage/jobs-repo";
import { SqliteStoresRepo } from "../src/storage/stores-repo";

const row = (id: string, status: FileRow["status"], purpose = "assistants"): FileRow => ({
  id, projectId: "p", bytes: 1, createdAt: 1, filename: "a.txt", purpose, status, statusDetails: null, expiresAt: null, contentType: "text/plain", sha256: "x",
});

const A = { fileId: "file-a", strategy: "auto" };

function setup() {
  const db = openDatabase(":memory:");
  db.query(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`).run();
  return { db, files: new SqliteFilesRepo(db), jobs: new SqliteJobsRepo(db) };
}

test("an uploaded file is stored with its job in one transaction; a processed one has none", async () => {
  const { files, jobs } = setup();
  await files.insert(row("file-a", "uploaded"), 0);
  await files.insert(row("file-b", "processed", "batch"), 0);
  const claimed = await jobs.claim("me", Date.now(), 1000, 3);
  expect(claimed).toEqual({ fileId: "file-a", strategy: "auto", filename: "a.txt", attempts: 1 });
  expect(await jobs.claim("me", Date.now(), 1000, 3)).toBeNull();
});

test("files stored before ingestion existed are queued; others are not queued twice", async () => {
  const { db, files, jobs } = setup();
  await files.insert(row("file-a", "uploaded"), 0);
  db.query(`DELETE FROM jobs`).run(); // as a database written by the previous version
  await files.insert(row("file-b", "uploaded"), 0);
  await files.insert(row("file-c", "uploaded", "batch"), 0);
  db.query(`DELETE FROM jobs WHERE file_id = 'file-c'`).run();
  expect(await jobs.enqueueMissing(["assistants"], Date.now())).toBe(1);
  expect(await jobs.enqueueMissing(["assistants"], Date.now())).toBe(0);
});

test("a lost lease writes nothing; an expired lease can be claimed by another runner", async () => {
  const { db, files, jobs } = setup();
  await files.insert(row("file-a", "uploaded"), 0);
  const t = Date.now();
  await jobs.claim("old", t, 1000, 3);
  expect(await jobs.claim("new", t + 500, 1000, 3)).toBeNull();
  expect((await jobs.claim("new", t + 1500, 1000, 3))?.attempts).toBe(2);
  const chunk = { text: "x", location: {}, charStart: 0, charEnd: 1, tokens: 1, embedding: null };
  expect(await jobs.finish(A, "old", { status: "processed", format: "text", text: "x", chunks: [chunk] })).toBe(false);
  expect(db.query(`SELECT count(*) AS n FROM chunks`).get()).toEqual({ n: 0 });
  expect(await jobs.finish(A, "new", { status: "processed", format: "text", text: "x", chunks: [chunk] })).toBe(true);
  expect(db.query(`SELECT status FROM files WHERE id = 'file-a'`).get()).toEqual({ status: "processed" });
});

test("a job out of attempts becomes an error with its last failure", async () => {
  const { db, files, jobs } = setup();
  await files.insert(row("file-a", "uploaded"), 0);
  await jobs.claim("me", Date.now(), 1000, 1);
  await jobs.retry(A, "me", Date.now(), "could not read the stored file");
  expect(await jobs.claim("me", Date.now(), 1000, 1)).toBeNull();
  await jobs.exhausted(1, Date.now());
  expect(db.query(`SELECT status, status_details AS d FROM files`).get()).toEqual({
    status: "error",
    d: "processing failed after 1 attempt (last: could not read the stored file); upload the file again or report it",
  });
});

describe("chunk sets for a store's own chunking", () => {
  const chunk = (text: string) => ({ text, location: {}, charStart: 0, charEnd: text.length, tokens: 1, embedding: null });
  const SMALL = "static:100:0";

  async function withStore() {
    const t = setup();
    await t.files.insert(row("file-a", "uploaded"), 0);
    t.db.query(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_1', 'p', 0, 0), ('vs_2', 'p', 0, 0)`).run();
    const stores = new SqliteStoresRepo(t.db);
    const chunking = { json: "{}", key: SMALL };
    return { ...t, stores, chunking };
  }

  test("attaching queues one job per size; it writes its own chunks and status, never the file's", async () => {
    const { db, jobs, stores, chunking } = await withStore();
    await stores.attach("vs_1", ["file-a"], 0, () => "{}", chunking, null);
    await stores.attach("vs_2", ["file-a"], 0, () => "{}", chunking, null); // the same size: shared, not queued twice
    const claimed = [await jobs.claim("me", Date.now(), 1000, 3), await jobs.claim("me", Date.now(), 1000, 3)];
    expect(claimed.map((j) => j?.strategy).sort()).toEqual(["auto", SMALL]);
    expect(await jobs.claim("me", Date.now(), 1000, 3)).toBeNull();
    expect(await jobs.finish({ fileId: "file-a", strategy: SMALL }, "me", { status: "processed", format: "text", text: "x", chunks: [chunk("a"), chunk("b")] })).toBe(true);
    expect(db.query(`SELECT status FROM chunk_sets`).get()).toEqual({ status: "completed" });
    expect(db.query(`SELECT status FROM files`).get()).toEqual({ status: "uploaded" });
    expect((await stores.getFile("vs_1", "file-a", 0))?.status).toBe("in_progress"); // the file itself is not processed yet
    expect(await jobs.finish(A, "me", { status: "processed", format: "text", text: "x", chunks: [chunk("whole")] })).toBe(true);
    expect((await stores.getFile("vs_1", "file-a", 0))?.status).toBe("completed");
    expect(db.query(`SELECT strategy, COUNT(*) AS n FROM chunks GROUP BY 1 ORDER BY 1`).all()).toEqual([{ strategy: "auto", n: 1 }, { strategy: SMALL, n: 2 }]);
    expect((await stores.getFile("vs_1", "file-a", 0))?.usageBytes).toBe(2);
  });

  test("a set out of attempts fails alone; attaching again retries it", async () => {
    const { db, jobs, stores, chunking } = await withStore();
    expect(await jobs.finish(A, "nobody", { status: "error", details: "x" })).toBe(false); // lease not held: nothing happens
    expect(db.query(`SELECT status FROM files`).get()).toEqual({ status: "uploaded" });
    await stores.attach("vs_1", ["file-a"], 0, () => "{}", chunking, null);
    db.query(`DELETE FROM jobs WHERE strategy = 'auto'`).run();
    db.query(`UPDATE files SET status = 'processed'`).run();
    const job = (await jobs.claim("me", Date.now(), 1000, 1))!;
    await jobs.retry(job, "me", Date.now(), "embedding failed: down");
    await jobs.exhausted(1, Date.now());
    const f = (await stores.getFile("vs_1", "file-a", 0))!;
    expect(f.status).toBe("failed");
    expect(f.fileStatusDetails).toContain("embedding failed: down");
    expect(db.query(`SELECT status FROM files`).get()).toEqual({ status: "processed" });
    await stores.attach("vs_1", ["file-a"], 0, () => "{}", chunking, null);
    expect((await stores.getFile("vs_1", "file-a", 0))?.status).toBe("in_progress");
    expect((await jobs.claim("me", Date.now(), 1000, 1))?.strategy).toBe(SMALL);
  });

  test("cancelling a batch stops the sets only it wanted; a file already searchable keeps its membership", async () => {
    const { db, files, stores, chunking } = await withStore();
    await files.insert(row("file-b", "processed"), 0);
    db.query(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ('vs_1', 'file-b', 0)`).run(); // cut with auto, done
    await stores.attach("vs_2", ["file-b"], 0, () => "{}", chunking, { id: "vsfb_1" });
    await stores.attach("vs_1", ["file-a"], 0, () => "{}", { json: "{}", key: "auto" }, { id: "vsfb_2" });
    expect((await stores.getFile("vs_2", "file-b", 0))?.status).toBe("in_progress"); // processed, but its own cut is not
    await stores.cancelBatch("vs_2", "vsfb_1");
    expect((await stores.getFile("vs_2", "file-b", 0))?.status).toBe("cancelled");
    expect(db.query(`SELECT COUNT(*) AS n FROM jobs WHERE file_id = 'file-b'`).get()).toEqual({ n: 0 });
    expect(db.query(`SELECT COUNT(*) AS n FROM chunk_sets`).get()).toEqual({ n: 0 });
    expect((await stores.getFile("vs_1", "file-b", 0))?.status).toBe("completed");
    await stores.cancelBatch("vs_1", "vsfb_2"); // file-a is still uploaded: cancelled, but its file's own job stays
    expect((await stores.getFile("vs_1", "file-a", 0))?.status).toBe("cancelled");
    expect(db.query(`SELECT strategy FROM jobs WHERE file_id = 'file-a'`).all()).toEqual([{ strategy: "auto" }]);
  });

  test("a set no store uses any more goes: chunks, job and status", async () => {
    const { db, jobs, stores, chunking } = await withStore();
    await stores.attach("vs_1", ["file-a"], 0, () => "{}", chunking, null);
    await stores.attach("vs_2", ["file-a"], 0, () => "{}", chunking, null);
    const small = { fileId: "file-a", strategy: SMALL };
    db.query(`UPDATE jobs SET state = 'running', lease_owner = 'me', lease_until = $t WHERE strategy = $s`).run({ t: Date.now() + 9e6, s: SMALL });
    await jobs.finish(small, "me", { status: "processed", format: "text", text: "x", chunks: [chunk("a")] });
    const count = () => db.query(`SELECT (SELECT COUNT(*) FROM chunks WHERE strategy <> 'auto') + (SELECT COUNT(*) FROM chunk_sets) AS n`).get();
    await stores.detach("vs_1", "file-a");
    expect(count()).toEqual({ n: 2 }); // vs_2 still searches it
    await stores.attach("vs_2", ["file-a"], 0, () => "{}", { json: "{}", key: "auto" }, null); // vs_2 switches to auto
    expect(count()).toEqual({ n: 0 });
    await stores.attach("vs_1", ["file-a"], 0, () => "{}", chunking, null);
    expect(db.query(`SELECT COUNT(*) AS n FROM jobs WHERE strategy = $s`).get({ s: SMALL })).toEqual({ n: 1 });
    await stores.remove("vs_1"); // deleting the store drops its queued set too
    expect(db.query(`SELECT COUNT(*) AS n FROM jobs WHERE strategy = $s`).get({ s: SMALL })).toEqual({ n: 0 });
    expect(count()).toEqual({ n: 0 });
  });
});

test("a database from before per-store chunking keeps its queued jobs and memberships", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ragd-migrate-"));
  const path = join(dir, "ragd.db");
  const old = new Database(path, { create: true, strict: true });
  for (const m of MIGRATIONS.slice(0, 3)) old.exec(m);
  old.exec(`PRAGMA user_version = 3`);
  old.exec(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`);
  old.exec(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES ('file-a', 'p', 1, 0, 'a.txt', 'assistants', 'uploaded', 'text/plain', 'x')`);
  old.exec(`INSERT INTO jobs (file_id, enqueued_at, state, attempts, run_after, last_error) VALUES ('file-a', 5, 'queued', 2, 0, 'boom')`);
  old.exec(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_1', 'p', 0, 0)`);
  old.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ('vs_1', 'file-a', 0)`);
  old.close();
  const db = openDatabase(path);
  expect(db.query(`SELECT file_id, strategy, attempts, last_error FROM jobs`).all()).toEqual([{ file_id: "file-a", strategy: "auto", attempts: 2, last_error: "boom" }]);
  expect(db.query(`SELECT strategy FROM vector_store_files`).all()).toEqual([{ strategy: "auto" }]);
  expect((await new SqliteJobsRepo(db).claim("me", Date.now(), 1000, 3))?.fileId).toBe("file-a");
  db.close();
  rmSync(dir, { recursive: true, force: true });
});
