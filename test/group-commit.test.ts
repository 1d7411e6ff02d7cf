// Group commit on the SQLite writer thread: writes that end together share one fsync of the
// WAL, and none is answered before a sync that covers it.
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../src/storage/sqlite/db";
import { WriterThread } from "../src/storage/sqlite/writer";
import { unavailableStore } from "../src/storage/open";

const dirs: string[] = [];
const writers: WriterThread[] = [];
afterEach(async () => {
  for (const w of writers.splice(0)) await w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open() {
  const dir = mkdtempSync(join(tmpdir(), "ragd-group-commit-"));
  dirs.push(dir);
  const path = join(dir, "ragd.db");
  openDatabase(path).close();
  const w = new WriterThread(path, failOnFatal);
  writers.push(w);
  return { w, path };
}

// A failed sync stops the server by default: here it fails the test instead of the whole run.
const fatal: string[] = [];
const failOnFatal = (message: string) => void fatal.push(message);
afterEach(() => expect(fatal.splice(0)).toEqual([]));

const project = (id: string) => ({ id, name: id, createdAt: 0 });

test("writes that arrive together share a sync, and each write is answered after one", async () => {
  const { w, path } = open();
  await w.call("keys", "createProject", [project("first")]);
  const before = await w.syncs();
  expect(before).toBeGreaterThanOrEqual(1);

  // A lone write: one sync of its own before its answer.
  await w.call("keys", "createProject", [project("lone")]);
  expect(await w.syncs()).toBe(before + 1);

  // 200 at once: every one committed, far fewer syncs than writes.
  await Promise.all(Array.from({ length: 200 }, (_, i) => w.call("keys", "createProject", [project(`p${i}`)])));
  const together = (await w.syncs()) - before - 1;
  expect(together).toBeGreaterThanOrEqual(1);
  expect(together).toBeLessThan(100);

  const db = openDatabase(path);
  expect((db.query("SELECT COUNT(*) AS n FROM projects").get() as { n: number }).n).toBe(202);
  db.close();
});

test("a write that fails is answered with its error, and the writes beside it still commit", async () => {
  const { w, path } = open();
  await w.call("keys", "createProject", [project("p")]);
  const key = (id: string) => ({ id, projectId: "p", hash: `hash-${id}`, prefix: "sk-", createdAt: 0 });
  const results = await Promise.allSettled([
    w.call("keys", "insertKey", [key("a")]),
    w.call("keys", "insertKey", [key("a")]),
    w.call("keys", "insertKey", [key("b")]),
  ]);
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  expect(String((results[1] as PromiseRejectedResult).reason)).toContain("UNIQUE");
  const db = openDatabase(path);
  expect((db.query("SELECT id FROM api_keys ORDER BY id").all() as { id: string }[]).map((r) => r.id)).toEqual(["a", "b"]);
  db.close();
});

// The order of system calls, traced: every answer leaves after an fsync of the WAL that
// follows the last frame written before it.
test.skipIf(!Bun.which("strace") || process.platform !== "linux")("no write is answered before the WAL holding it is synced", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ragd-group-commit-trace-"));
  dirs.push(dir);
  const path = join(dir, "ragd.db");
  openDatabase(path).close();
  const script = join(dir, "writes.ts");
  await Bun.write(
    script,
    `import { writeFileSync } from "node:fs";
import { WriterThread } from ${JSON.stringify(join(import.meta.dir, "../src/storage/sqlite/writer"))};
const w = new WriterThread(${JSON.stringify(path)});
for (let i = 0; i < 5; i++) {
  await w.call("keys", "createProject", [{ id: "lone" + i, name: "lone" + i, createdAt: 0 }]);
  writeFileSync(${JSON.stringify(join(dir, "answered"))}, "ANSWERED " + i);
  await Promise.all([0, 1, 2].map((j) => w.call("keys", "createProject", [{ id: "burst" + i + "-" + j, name: "burst" + i + "-" + j, createdAt: 0 }])));
  writeFileSync(${JSON.stringify(join(dir, "answered"))}, "ANSWERED burst" + i);
}
await w.close();
`,
  );
  const trace = join(dir, "trace.txt");
  // Each answer is marked by a write of "ANSWERED" to a file of its own, seen in the trace.
  const p = Bun.spawn(["strace", "-f", "-qq", "-e", "trace=openat,pwrite64,write,fsync,fdatasync,close", "-o", trace, process.execPath, script], { stdout: "inherit", stderr: "inherit" });
  expect(await p.exited).toBe(0);

  // fds of the WAL: opened by SQLite to write, by the writer to sync. A call another thread
  // interrupts is split over two lines ("<unfinished ...>", then "<... fsync resumed>").
  const walFds = new Set<string>();
  const syncing = new Set<string>();
  let frames = 0;
  let syncedAfterFrame = true;
  let answers = 0;
  for (const line of readFileSync(trace, "utf8").split("\n")) {
    const tid = line.split(/\s/, 1)[0]!;
    const opened = /openat\(.*ragd\.db-wal", [^)]*\) = (\d+)/.exec(line);
    if (opened) walFds.add(opened[1]!);
    const closed = /close\((\d+)/.exec(line);
    if (closed) walFds.delete(closed[1]!);
    const wrote = /pwrite64\((\d+),/.exec(line);
    if (wrote && walFds.has(wrote[1]!)) {
      frames++;
      syncedAfterFrame = false;
    }
    const sync = /\bf(?:data)?sync\((\d+)/.exec(line);
    if (sync && walFds.has(sync[1]!)) {
      if (/\) += 0$/.test(line)) syncedAfterFrame = true;
      else syncing.add(tid);
    }
    if (/<\.\.\. f(?:data)?sync resumed>\) += 0$/.test(line) && syncing.delete(tid)) syncedAfterFrame = true;
    if (/^\d+\s+write\(\d+, "ANSWERED/.test(line)) {
      answers++;
      expect(syncedAfterFrame).toBe(true);
    }
  }
  expect(answers).toBe(10);
  expect(frames).toBeGreaterThan(0);
});

test("a database reached through a symlink has its WAL synced where SQLite keeps it, beside the target", async () => {
  const real = mkdtempSync(join(tmpdir(), "ragd-group-commit-real-"));
  const link = mkdtempSync(join(tmpdir(), "ragd-group-commit-link-"));
  dirs.push(real, link);
  openDatabase(join(real, "ragd.db")).close();
  symlinkSync(join(real, "ragd.db"), join(link, "ragd.db"));
  const w = new WriterThread(join(link, "ragd.db"), failOnFatal);
  writers.push(w);
  await w.call("keys", "createProject", [project("a")]);
  expect(existsSync(join(real, "ragd.db-wal"))).toBe(true);
  expect(await w.syncs()).toBe(1);
});

test("a failed sync answers every write waiting for it, and every later one, as the database being unavailable, before the server is told to stop", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ragd-group-commit-"));
  dirs.push(dir);
  const path = join(dir, "ragd.db");
  openDatabase(path).close();
  const stops: string[] = [];
  let waiting: Promise<unknown> = Promise.resolve();
  // (when the server is told to stop, the waiting write has its answer already)
  const w = new WriterThread(path, (m) => void stops.push(`${m}; the waiting write ${Bun.peek.status(waiting)}`));
  writers.push(w);
  await w.call("keys", "createProject", [project("before")]);
  // The thread's report of a failed fsync, as writer-worker.ts sends it, while a write waits.
  waiting = w.call("keys", "createProject", [project("waiting")]);
  const code = waiting.catch((e: { code?: string }) => e.code);
  (w as unknown as { worker: Worker }).worker.onmessage!(new MessageEvent("message", { data: { id: 0, fatal: "fsync of the WAL failed: EIO" } }));
  expect(await code).toBe("RAGD_DATABASE_SYNC_FAILED");
  const later = await w.call("keys", "createProject", [project("later")]).catch((e: { code?: string }) => e.code);
  expect(stops).toEqual(["fsync of the WAL failed: EIO; the waiting write rejected"]);
  expect(later).toBe("RAGD_DATABASE_SYNC_FAILED");
  expect(unavailableStore(Object.assign(new Error("x"), { code: later }))).toBe("database");
});
