// A store's file_counts and usage_bytes are kept by SQLite triggers rather than summed over its
// members on every read: after every kind of write that moves them, in any order, they must
// equal the sums over the members (the queries ragd ran before), expired files left out.
import { afterAll, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { fileCountsOf, type StoreFileStatus } from "../src/storage/repos";
import { LIVE_FILE, MEMBER_STATUS, STORE_MEMBERS } from "../src/storage/sql-common";
import { MIGRATIONS, openDatabase } from "../src/storage/sqlite/db";
import { SqliteStoresRepo } from "../src/storage/sqlite/stores-repo";
import { cleanup, tempDir } from "./helpers/ragd";

const dirs: string[] = [];
afterAll(() => dirs.forEach(cleanup));

/** What every membership sums to, as ragd read it before the counts were kept. */
function summed(db: Database, storeId: string, now: number) {
  const rows = db
    .query(`SELECT ${MEMBER_STATUS} AS status, COUNT(*) AS n FROM ${STORE_MEMBERS} WHERE vsf.store_id = $storeId AND ${LIVE_FILE} GROUP BY 1`)
    .all({ storeId, now }) as { status: StoreFileStatus; n: number }[];
  const usage = db
    .query(
      `SELECT COALESCE(SUM(cb.bytes), 0) AS n FROM vector_store_files vsf JOIN files f ON f.id = vsf.file_id JOIN cut_bytes cb ON cb.file_id = vsf.file_id AND cb.cut = vsf.cut
       WHERE vsf.store_id = $storeId AND vsf.cancelled = 0 AND ${LIVE_FILE}`,
    )
    .get({ storeId, now }) as { n: number };
  return { counts: fileCountsOf(rows), usage: usage.n };
}

/** A fresh database holding project p and its store vs_1. */
function oneStore() {
  const dir = tempDir("ragd-counts-");
  dirs.push(dir);
  const db = openDatabase(join(dir, "ragd.db"));
  db.exec(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`);
  db.exec(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_1', 'p', 0, 0)`);
  return { db, repo: new SqliteStoresRepo(db) };
}

/** A small deterministic generator, so a failure replays. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("file_counts and usage_bytes kept by triggers equal the sums over the members after every write", async () => {
  const dir = tempDir("ragd-counts-");
  dirs.push(dir);
  const db = openDatabase(join(dir, "ragd.db"));
  const repo = new SqliteStoresRepo(db);
  const now = 1_000_000;
  db.exec(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`);
  const rnd = random(20261206);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const stores = new Set<string>();
  const files = new Set<string>();
  let nextStore = 0;
  let nextFile = 0;
  const cuts = ["auto", "c300-o50", "c800-o400"];
  const kinds = new Map<string, number>();
  /** A row of `table` matching `where`, chosen by the generator (not SQLite's random()). */
  const row = (key: string, table: string, where = "1") => {
    const n = (db.query(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).get() as { n: number }).n;
    return n ? (db.query(`SELECT ${key} AS k FROM ${table} WHERE ${where} ORDER BY ${key} LIMIT 1 OFFSET ?`).get(Math.floor(rnd() * n)) as { k: string | number }).k : null;
  };
  const ops: [string, () => void][] = [
    ["store", () => {
      const id = `vs_${nextStore++}`;
      db.query(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES (?, 'p', 0, 0)`).run(id);
      stores.add(id);
    }],
    ["store deleted", () => {
      if (stores.size < 2) return;
      const id = pick([...stores]);
      db.query(`DELETE FROM vector_stores WHERE id = ?`).run(id);
      stores.delete(id);
    }],
    ["file", () => {
      const id = `file-${nextFile++}`;
      // no expiry, expired already, or expiring later
      const expires = pick([null, null, now - 10, now + 10]);
      db.query(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, expires_at, content_type, sha256) VALUES (?, 'p', 1, 0, 'a.txt', 'assistants', 'uploaded', ?, 'text/plain', 'x')`).run(id, expires);
      db.query(`INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) VALUES (?, 'auto', 'queued', 0, 0)`).run(id);
      files.add(id);
    }],
    ["file status", () => {
      if (!files.size) return;
      // mostly a member's file
      const file = (rnd() < 0.7 ? row("file_id", "vector_store_files") : null) ?? pick([...files]);
      db.query(`UPDATE files SET status = ? WHERE id = ?`).run(pick(["uploaded", "processed", "processed", "error"]), file);
    }],
    ["file expiry", () => {
      if (!files.size) return;
      db.query(`UPDATE files SET expires_at = ? WHERE id = ?`).run(pick([null, now - 1, now, now + 1]), pick([...files]));
    }],
    ["file deleted", () => {
      if (!files.size) return;
      const id = pick([...files]);
      db.query(`DELETE FROM files WHERE id = ?`).run(id);
      files.delete(id);
    }],
    ["attach", () => {
      if (!files.size || !stores.size) return;
      // as the stores repo attaches: again, it revives a cancelled membership and may change its cut
      db.query(
        `INSERT INTO vector_store_files (store_id, file_id, created_at, cut) VALUES (?, ?, 0, ?)
         ON CONFLICT (store_id, file_id) DO UPDATE SET cut = excluded.cut, cancelled = 0`,
      ).run(pick([...stores]), pick([...files]), pick(cuts));
    }],
    ["cancel", () => {
      db.query(`UPDATE vector_store_files SET cancelled = 1 WHERE seq = ?`).run(row("seq", "vector_store_files"));
    }],
    ["detach", () => {
      db.query(`DELETE FROM vector_store_files WHERE seq = ?`).run(row("seq", "vector_store_files"));
    }],
    ["cut job", () => {
      if (!files.size) return;
      // mostly the cut of a membership, whose status it then decides
      const seq = rnd() < 0.8 ? row("seq", "vector_store_files", "cut <> 'auto'") : null;
      const member = db.query(`SELECT file_id, cut FROM vector_store_files WHERE seq = ?`).get(seq) as { file_id: string; cut: string } | null;
      db.query(
        `INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) VALUES (?, ?, ?, 0, 0) ON CONFLICT (file_id, cut) DO UPDATE SET state = excluded.state`,
      ).run(member?.file_id ?? pick([...files]), member?.cut ?? pick(cuts), pick(["queued", "running", "done", "failed"]));
    }],
    ["cut job deleted", () => {
      // mostly the job of a membership's cut
      const where = rnd() < 0.8 ? "cut <> 'auto' AND EXISTS (SELECT 1 FROM vector_store_files m WHERE m.file_id = jobs.file_id AND m.cut = jobs.cut)" : "cut <> 'auto'";
      db.query(`DELETE FROM jobs WHERE rowid = ?`).run(row("rowid", "jobs", where));
    }],
    ["chunks", () => {
      if (!files.size) return;
      const file = pick([...files]);
      const cut = pick(cuts);
      const n = 1 + Math.floor(rnd() * 4);
      const from = (db.query(`SELECT COALESCE(MAX(idx) + 1, 0) AS i FROM chunks WHERE file_id = ? AND cut = ?`).get(file, cut) as { i: number }).i;
      for (let i = from; i < from + n; i++)
        db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES (?, ?, ?, ?, '{}', 0, 1, 1, ?)`).run(
          file,
          cut,
          i,
          "x".repeat(1 + Math.floor(rnd() * 50)),
          rnd() < 0.5 ? new Uint8Array(8) : null,
        );
    }],
    ["chunk embedded", () => {
      db.query(`UPDATE chunks SET embedding = ? WHERE id = ?`).run(new Uint8Array(1 + Math.floor(rnd() * 20)), row("id", "chunks"));
    }],
    ["chunks deleted", () => {
      db.query(`DELETE FROM chunks WHERE file_id = ?`).run(row("file_id", "chunks"));
    }],
  ];
  ops[0]![1]();
  const seen = new Set<string>();
  let most = 0;
  let used = 0;
  for (let step = 0; step < 1500; step++) {
    // (attaching and new files weigh more, so stores grow)
    const [kind, op] = rnd() < 0.3 ? pick(ops.filter(([k]) => k === "attach" || k === "file")) : pick(ops);
    op();
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    for (const s of stores) {
      const want = summed(db, s, now);
      // the kept rows themselves, against every member (none expired at time -1)...
      const kept = {
        counts: fileCountsOf(db.query(`SELECT status, n FROM store_file_counts WHERE store_id = ?`).all(s) as { status: StoreFileStatus; n: number }[]),
        usage: (db.query(`SELECT COALESCE((SELECT bytes FROM store_bytes WHERE store_id = ?), 0) AS n`).get(s) as { n: number }).n,
      };
      const every = summed(db, s, -1);
      if (JSON.stringify(kept) !== JSON.stringify(every)) throw new Error(`after step ${step} (${kind}), store ${s}: kept ${JSON.stringify(kept)}, summed ${JSON.stringify(every)}`);
      // ...and what a read answers at `now`, expired files left out
      const got = { counts: await repo.fileCounts(s, now), usage: await repo.usageBytes(s, now) };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`after step ${step} (${kind}), store ${s}: kept ${JSON.stringify(got)}, summed ${JSON.stringify(want)}`);
      for (const status of ["in_progress", "completed", "failed", "cancelled"] as const) if (want.counts[status] > 0) seen.add(status);
      most = Math.max(most, want.counts.total);
      if (want.usage > 0) used++;
    }
  }
  // every kind of write happened, and stores held members of every status and bytes on the way
  expect(kinds.size).toBe(ops.length);
  expect([...seen].sort()).toEqual(["cancelled", "completed", "failed", "in_progress"]);
  expect(most).toBeGreaterThan(5);
  expect(used).toBeGreaterThan(50);
  // a deleted store leaves nothing behind
  expect(db.query(`SELECT COUNT(*) AS n FROM store_file_counts WHERE store_id NOT IN (SELECT id FROM vector_stores)`).get()).toEqual({ n: 0 });
  expect(db.query(`SELECT COUNT(*) AS n FROM store_bytes WHERE store_id NOT IN (SELECT id FROM vector_stores)`).get()).toEqual({ n: 0 });
  expect(kinds.get("store deleted")).toBeGreaterThan(0);
  db.close();
});

test("a database written before the counts were kept gets them from its members", async () => {
  const dir = tempDir("ragd-counts-");
  dirs.push(dir);
  const path = join(dir, "ragd.db");
  const before = MIGRATIONS.findIndex((m) => m.includes("CREATE TABLE store_file_counts"));
  expect(before).toBeGreaterThan(0);
  const { Database } = await import("bun:sqlite");
  const old = new Database(path, { create: true, strict: true });
  for (const m of MIGRATIONS.slice(0, before)) old.exec(m);
  old.exec(`PRAGMA user_version = ${before}`);
  old.exec(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`);
  old.exec(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_1', 'p', 0, 0), ('vs_2', 'p', 0, 0)`);
  for (const [id, status] of [["file-a", "uploaded"], ["file-b", "processed"], ["file-c", "error"], ["file-d", "processed"]])
    old.exec(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES ('${id}', 'p', 1, 0, 'a.txt', 'assistants', '${status}', 'text/plain', 'x')`);
  old.exec(`INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) VALUES ('file-d', 'c300-o50', 'running', 0, 0)`);
  old.exec(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens) VALUES ('file-b', 'auto', 0, 'hello', '{}', 0, 5, 1), ('file-d', 'c300-o50', 0, 'hi', '{}', 0, 2, 1)`);
  old.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at, cut, cancelled) VALUES
    ('vs_1', 'file-a', 0, 'auto', 0), ('vs_1', 'file-b', 0, 'auto', 0), ('vs_1', 'file-c', 0, 'auto', 0), ('vs_1', 'file-d', 0, 'c300-o50', 0),
    ('vs_2', 'file-b', 0, 'auto', 1)`);
  old.close();
  const db = openDatabase(path);
  const repo = new SqliteStoresRepo(db);
  expect(await repo.fileCounts("vs_1", 0)).toEqual({ in_progress: 2, completed: 1, failed: 1, cancelled: 0, total: 4 });
  expect(await repo.fileCounts("vs_2", 0)).toEqual({ in_progress: 0, completed: 0, failed: 0, cancelled: 1, total: 1 });
  for (const s of ["vs_1", "vs_2"]) {
    expect(await repo.fileCounts(s, 0)).toEqual(summed(db, s, 0).counts);
    expect(await repo.usageBytes(s, 0)).toBe(summed(db, s, 0).usage);
  }
  expect(await repo.usageBytes("vs_1", 0)).toBe(7);
  db.close();
});

test("a membership of another cut counts by its cut's job once its file is processed", async () => {
  const { db, repo } = oneStore();
  db.exec(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES ('file-a', 'p', 1, 0, 'a.txt', 'assistants', 'processed', 'text/plain', 'x')`);
  db.exec(`INSERT INTO vector_store_files (store_id, file_id, created_at, cut) VALUES ('vs_1', 'file-a', 0, 'c300-o50')`);
  const status = async () => {
    const c = await repo.fileCounts("vs_1", 0);
    expect(c).toEqual(summed(db, "vs_1", 0).counts);
    return (["in_progress", "completed", "failed", "cancelled"] as const).find((s) => c[s] === 1);
  };
  expect(await status()).toBe("in_progress");
  db.exec(`INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) VALUES ('file-a', 'c300-o50', 'done', 0, 0)`);
  expect(await status()).toBe("completed");
  db.exec(`UPDATE jobs SET state = 'failed' WHERE file_id = 'file-a' AND cut = 'c300-o50'`);
  expect(await status()).toBe("failed");
  db.exec(`UPDATE jobs SET state = 'running' WHERE file_id = 'file-a' AND cut = 'c300-o50'`);
  expect(await status()).toBe("in_progress");
  db.exec(`UPDATE jobs SET state = 'done' WHERE file_id = 'file-a' AND cut = 'c300-o50'`);
  expect(await status()).toBe("completed");
  db.exec(`DELETE FROM jobs WHERE file_id = 'file-a' AND cut = 'c300-o50'`);
  expect(await status()).toBe("in_progress");
  db.close();
});

test("files past their expiry but not swept yet are left out of a store's totals", async () => {
  const { db, repo } = oneStore();
  for (let i = 0; i < 6; i++) {
    db.query(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, expires_at, content_type, sha256) VALUES (?, 'p', 1, 0, 'a.txt', 'assistants', ?, ?, 'text/plain', 'x')`).run(`file-${i}`, i % 2 ? "processed" : "uploaded", i < 2 ? 100 : null);
    db.query(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES ('vs_1', ?, 0)`).run(`file-${i}`);
    db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens) VALUES (?, 'auto', 0, ?, '{}', 0, 1, 1)`).run(`file-${i}`, "x".repeat(10 * (i + 1)));
  }
  // before file-0 and file-1 expire, at it, and after (two expired files, six members: the kept totals less the two)
  expect(await repo.fileCounts("vs_1", 99)).toEqual({ in_progress: 3, completed: 3, failed: 0, cancelled: 0, total: 6 });
  expect(await repo.usageBytes("vs_1", 99)).toBe(210);
  for (const now of [100, 101]) {
    expect(await repo.fileCounts("vs_1", now)).toEqual({ in_progress: 2, completed: 2, failed: 0, cancelled: 0, total: 4 });
    expect(await repo.usageBytes("vs_1", now)).toBe(180);
    expect({ counts: await repo.fileCounts("vs_1", now), usage: await repo.usageBytes("vs_1", now) }).toEqual(summed(db, "vs_1", now));
  }
  db.close();
});

test("while more files in all are past their expiry than a store has members, its totals are summed over them", async () => {
  const { db, repo } = oneStore();
  db.exec(`INSERT INTO vector_stores (id, project_id, created_at, last_active_at) VALUES ('vs_2', 'p', 0, 0)`);
  // vs_1 holds one file; vs_2 holds three files past their expiry (not swept yet)
  for (const [id, store, expires] of [["file-a", "vs_1", null], ["file-b", "vs_2", 50], ["file-c", "vs_2", 50], ["file-d", "vs_2", 50]] as const) {
    db.query(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, expires_at, content_type, sha256) VALUES (?, 'p', 1, 0, 'a.txt', 'assistants', 'processed', ?, 'text/plain', 'x')`).run(id, expires);
    db.query(`INSERT INTO vector_store_files (store_id, file_id, created_at) VALUES (?, ?, 0)`).run(store, id);
    db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens) VALUES (?, 'auto', 0, 'abcd', '{}', 0, 4, 1)`).run(id);
  }
  // the same answers either way: vs_1 (1 member, 3 expired files in all) is summed over its members
  for (const s of ["vs_1", "vs_2"])
    for (const now of [49, 50]) expect({ counts: await repo.fileCounts(s, now), usage: await repo.usageBytes(s, now) }).toEqual(summed(db, s, now));
  expect(await repo.fileCounts("vs_1", 50)).toEqual({ in_progress: 0, completed: 1, failed: 0, cancelled: 0, total: 1 });
  expect(await repo.fileCounts("vs_2", 50)).toEqual({ in_progress: 0, completed: 0, failed: 0, cancelled: 0, total: 0 });
  // the summed path reads the members: a kept row made wrong on purpose does not show...
  db.exec(`UPDATE store_bytes SET bytes = 999 WHERE store_id = 'vs_1'`);
  expect(await repo.usageBytes("vs_1", 50)).toBe(4);
  // ...until the sweeper has deleted the expired files and the kept rows answer again
  db.exec(`DELETE FROM files WHERE id IN ('file-b', 'file-c', 'file-d')`);
  expect(await repo.usageBytes("vs_1", 50)).toBe(999);
  db.close();
});
