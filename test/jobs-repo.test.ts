// The queue's storage rules on a real SQLite database.
import { expect, test } from "bun:test";
import { openDatabase } from "../src/storage/db";
import { SqliteFilesRepo, type FileRow } from "../src/storage/files-repo";
import { SqliteJobsRepo } from "../src/storage/jobs-repo";

const row = (id: string, status: FileRow["status"], purpose = "assistants"): FileRow => ({
  id, projectId: "p", bytes: 1, createdAt: 1, filename: "a.txt", purpose, status, statusDetails: null, expiresAt: null, contentType: "text/plain", sha256: "x",
});

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
  expect(claimed).toEqual({ fileId: "file-a", filename: "a.txt", attempts: 1 });
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
  expect(await jobs.finish("file-a", "old", { status: "processed", format: "text", text: "x", chunks: [chunk] })).toBe(false);
  expect(db.query(`SELECT count(*) AS n FROM chunks`).get()).toEqual({ n: 0 });
  expect(await jobs.finish("file-a", "new", { status: "processed", format: "text", text: "x", chunks: [chunk] })).toBe(true);
  expect(db.query(`SELECT status FROM files WHERE id = 'file-a'`).get()).toEqual({ status: "processed" });
});

test("a job out of attempts becomes an error with its last failure", async () => {
  const { db, files, jobs } = setup();
  await files.insert(row("file-a", "uploaded"), 0);
  await jobs.claim("me", Date.now(), 1000, 1);
  await jobs.retry("file-a", "me", Date.now(), "could not read the stored file");
  expect(await jobs.claim("me", Date.now(), 1000, 1)).toBeNull();
  await jobs.exhausted(1, Date.now());
  expect(db.query(`SELECT status, status_details AS d FROM files`).get()).toEqual({
    status: "error",
    d: "processing failed after 1 attempt (last: could not read the stored file); upload the file again or report it",
  });
});
