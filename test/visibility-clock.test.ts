// The embedded store keeps which file cuts a store sees between writes (chunks-repo.ts), and
// only writes that may change it (writes.ts, KEEPS_VISIBILITY) make it ask SQLite again. To see
// whether an answer was kept or asked again, a second connection changes a membership behind
// the writer's back: a kept answer does not show that change, a fresh one does.
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChunkRow, FileRow, Repos } from "../src/storage/repos";
import { openSqliteRepos } from "../src/storage/sqlite";
import { KEEPS_VISIBILITY, WRITE_METHODS } from "../src/storage/sqlite/writes";

const T = 1_000_000;
const opened: { repos: Repos; dir: string }[] = [];
const closeAfter: Database[] = [];
afterEach(async () => {
  for (const db of closeAfter.splice(0)) db.close();
  for (const { repos, dir } of opened.splice(0)) {
    await repos.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const row = (id: string): FileRow => ({ id, projectId: "p", bytes: 10, createdAt: 1, filename: "a.txt", purpose: "assistants", status: "uploaded", statusDetails: null, expiresAt: null, contentType: "text/plain", sha256: "x" });
const chunk = (text: string): ChunkRow => ({ text, location: { page: 1 }, charStart: 0, charEnd: text.length, tokens: 1, embedding: null });

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), "ragd-visibility-"));
  const r = openSqliteRepos(dir);
  opened.push({ repos: r, dir });
  await r.keys.createProject({ id: "p", name: "p", createdAt: 0 });
  for (const id of ["file-a", "file-b"]) await r.files.insert(row(id), 0, T);
  for (let job = await r.ingestion.claim("me", T, 60_000, 3); job; job = await r.ingestion.claim("me", T, 60_000, 3))
    await r.ingestion.finish(job, "me", { status: "processed", format: "text", text: "x", chunks: [chunk(`text of ${job.fileId}`)] }, T);
  await r.stores.create({ id: "vs_v", projectId: "p", name: "v", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
  await r.stores.attach("vs_v", [{ id: "file-a", attributes: "{}" }, { id: "file-b", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T);
  const groups = ["file-a", "file-b"].map((fileId) => ({ fileId, cut: "auto" }));
  const seen = async () => [...(await r.chunks.visibleGroups("vs_v", null, 50, groups))].map((k) => k.split("\u0000")[0]!.slice(5)).sort().join("");
  const behindTheWritersBack = new Database(join(dir, "ragd.db"));
  closeAfter.push(behindTheWritersBack);
  const hideB = () => behindTheWritersBack.run(`UPDATE vector_store_files SET cancelled = 1 WHERE file_id = 'file-b'`);
  // Every cut the store sees, as a search of a narrow store asks it.
  const whole = async (now = 50) => [...(await r.chunks.storeGroups("vs_v", null, now))].map((k) => k.split("\u0000")[0]!.slice(5)).sort().join("");
  return { r, seen, whole, hideB, behindTheWritersBack };
}

test("the queue's idle poll, a store's last-activity touch and other bookkeeping writes keep what a store sees", async () => {
  const { r, seen, hideB } = await setup();
  expect(await seen()).toBe("ab");
  hideB();
  expect(await r.ingestion.claim("me", T, 60_000, 3)).toBeNull();
  expect(await r.ingestion.exhausted(3, 3, T)).toEqual([]);
  expect(await r.ingestion.heartbeat({ fileId: "file-a", cut: "auto" }, "me", T, 60_000, "50%")).toBe(false);
  await r.ingestion.release("nobody");
  await r.stores.touch("vs_v", 60);
  await r.chunks.setMeta("probe", "1");
  await r.chunks.pruneChanges(0);
  await r.keys.createProject({ id: "q", name: "q", createdAt: 0 });
  // kept: the change made behind the writer's back does not show
  expect(await seen()).toBe("ab");
  // a write that may change what the store sees makes it ask again
  await r.stores.updateAttributes("vs_v", "file-a", '{"team":"x"}');
  expect(await seen()).toBe("a");
});

test("a poll that fails a job whose attempts ran out makes searches ask again", async () => {
  const { r, seen, hideB } = await setup();
  await r.files.insert(row("file-c"), 0, T);
  const job = await r.ingestion.claim("me", T, 60_000, 1);
  expect(job?.fileId).toBe("file-c");
  await r.ingestion.retry(job!, "me", T, { code: "server_error", message: "boom" });
  expect(await seen()).toBe("ab");
  hideB();
  expect(await r.ingestion.exhausted(1, 10, T)).toEqual([{ fileId: "file-c", cut: "auto" }]);
  expect(await seen()).toBe("a");
});

test("a store's whole set of cuts is kept between writes too, and a kept file's expiry still counts", async () => {
  const { r, whole, hideB, behindTheWritersBack } = await setup();
  behindTheWritersBack.run(`UPDATE files SET expires_at = 100 WHERE id = 'file-a'`);
  expect(await whole(50)).toBe("ab");
  hideB();
  await r.stores.touch("vs_v", 60);
  // kept: the membership cancelled behind the writer's back does not show...
  expect(await whole(50)).toBe("ab");
  // ...while file-a's expiry, read with the rest, hides it once its time has passed
  expect(await whole(150)).toBe("b");
  await r.stores.updateAttributes("vs_v", "file-a", '{"team":"x"}');
  expect(await whole(50)).toBe("a");
});

test("every write said to keep visibility is a write (a misspelt or read method there would mean nothing)", () => {
  for (const [repo, methods] of Object.entries(KEEPS_VISIBILITY)) for (const m of methods) expect(WRITE_METHODS[repo as keyof typeof WRITE_METHODS] as readonly string[]).toContain(m);
});
