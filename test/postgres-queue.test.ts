// What only a shared database can get wrong: several processes (here, separate connection
// pools) claiming and committing at once. Skipped, saying why, without PostgreSQL.
import { afterAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeywordSearch } from "../src/search/keyword-search";
import { openPostgresRepos } from "../src/storage/postgres";
import type { FileRow, Repos } from "../src/storage/repos";
import { createDatabase, dropAllDatabases, postgresMissing } from "./helpers/postgres";

afterAll(() => dropAllDatabases());

const T = 1_000_000;
const row = (id: string): FileRow => ({
  id, projectId: "p", bytes: 10, createdAt: 1, filename: `${id}.txt`, purpose: "assistants", status: "uploaded", statusDetails: null, expiresAt: null, contentType: "text/plain", sha256: "x",
});

describe.skipIf(postgresMissing !== null)("PostgreSQL between processes", () => {
  async function processes(n: number, changeLogRetentionMs?: number) {
    const url = await createDatabase();
    const all: Repos[] = [];
    for (let i = 0; i < n; i++) all.push(await openPostgresRepos(url, { max: 4, changeLogRetentionMs }));
    await all[0]!.keys.createProject({ id: "p", name: "p", createdAt: 0 });
    return { url, all, close: () => Promise.all(all.map((r) => r.close())) };
  }

  test("processes racing for jobs never both get one, and every job is taken", async () => {
    const { all, close } = await processes(3);
    try {
      for (let i = 0; i < 40; i++) await all[0]!.files.insert(row(`file-${String(i).padStart(2, "0")}`), 0, T);
      const taken: string[][] = all.map(() => []);
      await Promise.all(
        all.flatMap((r, p) =>
          [0, 1, 2].map(async () => {
            for (let job = await r.ingestion.claim(`proc-${p}`, T, 60_000, 3); job; job = await r.ingestion.claim(`proc-${p}`, T, 60_000, 3)) taken[p]!.push(job.fileId);
          }),
        ),
      );
      const flat = taken.flat().sort();
      expect(flat.length).toBe(40);
      expect(new Set(flat).size).toBe(40);
      // The lease is what a runner holds: another process's finish is refused.
      const mine = taken.findIndex((t) => t.length > 0);
      const other = (mine + 1) % all.length;
      const key = { fileId: taken[mine]![0]!, cut: "auto" };
      expect(await all[other]!.ingestion.finish(key, `proc-${other}`, { status: "processed", format: "text", text: "x", chunks: [] }, T)).toBe(false);
      expect(await all[mine]!.ingestion.finish(key, `proc-${mine}`, { status: "processed", format: "text", text: "x", chunks: [] }, T)).toBe(true);
    } finally {
      await close();
    }
  });

  test("chunks committed at once by several processes reach the change log gapless, in commit order, ids rising with it", async () => {
    const { url, all, close } = await processes(3);
    try {
      for (let i = 0; i < 9; i++) await all[0]!.files.insert(row(`doc-${i}`), 0, T);
      const chunks = (i: number) => Array.from({ length: 600 }, (_, k) => ({ text: `doc ${i} chunk ${k}`, location: {}, charStart: 0, charEnd: 1, tokens: 1, embedding: new Uint8Array([i, k & 255]) }));
      await Promise.all(
        all.map(async (r, p) => {
          for (let job = await r.ingestion.claim(`proc-${p}`, T, 60_000, 3); job; job = await r.ingestion.claim(`proc-${p}`, T, 60_000, 3)) {
            const i = Number(job.fileId.slice(4));
            expect(await r.ingestion.finish(job, `proc-${p}`, { status: "processed", format: "text", text: "x", chunks: chunks(i) }, T)).toBe(true);
          }
        }),
      );
      // Then deletes from two processes at once.
      await Promise.all([all[1]!.files.remove("p", "doc-0", 2), all[2]!.files.remove("p", "doc-1", 2)]);
      const changes = await all[0]!.chunks.changesAfter(0, 100_000);
      expect(changes.length).toBe(9 * 600 + 2 * 600);
      expect(changes.map((c) => c.seq)).toEqual(changes.map((_, i) => i + 1));
      const adds = changes.filter((c) => c.op === "add").map((c) => c.id);
      expect(adds).toEqual([...adds].sort((a, b) => a - b));
      expect(await all[2]!.chunks.lastChange()).toBe(changes.length);
      expect(await all[2]!.chunks.chunkIdsIssued()).toBe(Math.max(...adds));
      const sql = new SQL({ url, max: 1 });
      try {
        const [n] = await sql.unsafe(`SELECT COUNT(*)::int AS n, COUNT(DISTINCT (file_id, idx))::int AS d FROM chunks`);
        expect(n).toEqual({ n: 7 * 600, d: 7 * 600 });
      } finally {
        await sql.close();
      }
      // A reader replaying up to any point sees a prefix of the commits: the embeddings are there.
      expect((await all[1]!.chunks.embeddedAfter(0, 100_000)).length).toBe(7 * 600);
    } finally {
      await close();
    }
  });

  test("a keyword replica whose log entries another process pruned finds the gap and rebuilds to the same answers", async () => {
    const { all, close } = await processes(2, 0);
    const dirs = [mkdtempSync(join(tmpdir(), "ragd-kw-a-")), mkdtempSync(join(tmpdir(), "ragd-kw-b-"))];
    const [a, b] = dirs.map((d, i) => new KeywordSearch(all[i]!.chunks, d));
    try {
      await a!.start();
      await b!.start();
      const add = async (id: string, texts: string[]) => {
        await all[0]!.files.insert(row(id), 0, T);
        const job = (await all[0]!.ingestion.claim("w", T, 60_000, 3))!;
        await all[0]!.ingestion.finish(job, "w", { status: "processed", format: "text", text: texts.join(" "), chunks: texts.map((t) => ({ text: t, location: {}, charStart: 0, charEnd: 1, tokens: 1, embedding: null })) }, T);
      };
      await add("doc-1", ["alpha beta gamma", "beta delta"]);
      await add("doc-2", ["alpha alpha epsilon", "zeta"]);
      // A replays and saves, pruning the shared log; B has not looked yet.
      await a!.catchUp();
      await a!.save();
      expect(await all[0]!.chunks.changeLogReaches(0)).toBe(false);
      await all[1]!.files.remove("p", "doc-1", 2);
      await add("doc-3", ["alpha omega"]);
      await a!.catchUp();
      await b!.catchUp();
      for (const q of ["alpha", "beta", "omega zeta"]) expect(await b!.search(q, 10)).toEqual(await a!.search(q, 10));
      expect((await b!.search("alpha", 10)).length).toBe(2);
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await close();
    }
  });
});

describe.skipIf(postgresMissing !== null)("PostgreSQL's kept project bytes", () => {
  test("are summed once from a database migrated from before them, and stay exact while processes upload, delete and fold at once", async () => {
    const { MIGRATIONS, migrate } = await import("../src/storage/postgres/schema");
    const url = await createDatabase({ empty: true });
    const sql = new SQL(url);
    const before = MIGRATIONS.findIndex((m) => m.includes("CREATE TABLE project_bytes"));
    expect(before).toBeGreaterThan(0);
    await sql.begin(async (tx) => {
      await tx.unsafe(`CREATE TABLE ragd_schema (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL)`);
      for (const m of MIGRATIONS.slice(0, before)) await tx.unsafe(m);
      await tx.unsafe(`INSERT INTO ragd_schema VALUES (1, ${before})`);
      await tx.unsafe(`INSERT INTO projects VALUES ('p', 'p', 0), ('q', 'q', 0)`);
      await tx.unsafe(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256)
        SELECT 'file-old' || g, CASE WHEN g % 3 = 0 THEN 'q' ELSE 'p' END, g, 0, 'a.txt', 'assistants', 'processed', 'text/plain', 'x' FROM generate_series(1, 300) g`);
    });
    await migrate(sql);
    const summed = async () => (await sql.unsafe(`SELECT project_id AS project, SUM(bytes)::float8 AS bytes FROM files GROUP BY project_id ORDER BY project_id`)) as { project: string; bytes: number }[];
    const all: Repos[] = [];
    for (let i = 0; i < 3; i++) all.push(await openPostgresRepos(url, { max: 4 }));
    try {
      expect(await all[0]!.files.bytesByProject()).toEqual(await summed());
      // Three processes upload (one with a quota), delete and fold at once.
      await Promise.all(
        all.map(async (r, i) => {
          for (let n = 0; n < 40; n++) {
            await r.files.insert({ ...row(`file-${i}-${n}`), projectId: n % 2 ? "p" : "q", bytes: 1000 + n, status: "processed" }, i === 0 ? 10 ** 9 : 0, T);
            if (n % 4 === 3) await r.files.remove(n % 2 ? "p" : "q", `file-${i}-${n - 2}`, T);
            if (n % 10 === 0) await r.files.foldTotals();
          }
        }),
      );
      const expected = await summed();
      expect(await all[1]!.files.bytesByProject()).toEqual(expected);
      for (const { project, bytes } of expected) expect(await all[2]!.files.usedBytes(project)).toBe(bytes);
      // Every delta was moved into its project's row exactly once.
      expect((await sql.unsafe(`SELECT count(*)::int AS n FROM project_bytes_deltas`))[0].n).toBe(0);
      expect((await sql.unsafe(`SELECT project_id AS project, bytes::float8 AS bytes FROM project_bytes WHERE files > 0 ORDER BY project_id`)) as unknown[]).toEqual(expected);
    } finally {
      await Promise.all(all.map((r) => r.close()));
      await sql.close();
    }
  });
});
