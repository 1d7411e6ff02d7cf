// The storage contract (src/storage/repos.ts), run against every implementation: today the
// embedded SQLite one; a Postgres one adds an entry to IMPLEMENTATIONS and must pass unchanged.
// Only the interfaces are used here, never SQL, so the rules are stated once for all backends.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { groupKey, type AttributeFilter, type ChunkRow, type FileRow, type Repos, type ResponseRow, type UploadRow } from "../src/storage/repos";
import { openPostgresRepos } from "../src/storage/postgres";
import { openSqliteRepos } from "../src/storage/sqlite";
import { missingReference } from "../src/storage/open";
import { createDatabase, dropAllDatabases, dropDatabase, postgresMissing } from "./helpers/postgres";

const opened: { repos: Repos; dir?: string; database?: string }[] = [];
afterEach(async () => {
  for (const { repos, dir, database } of opened.splice(0)) {
    await repos.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (database) await dropDatabase(database);
  }
});
afterAll(() => dropAllDatabases());

const IMPLEMENTATIONS: { name: string; open: () => Promise<Repos> }[] = [
  { name: "sqlite", open: async () => track(openSqliteRepos(":memory:")) },
  // A data directory's database: reads on this thread, every write on the writer thread.
  {
    name: "sqlite on disk, writes on the writer thread",
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), "ragd-contract-"));
      return track(openSqliteRepos(dir), dir);
    },
  },
  // PostgreSQL, a database of its own per test (skipped, saying why, when no server answers).
  ...(postgresMissing
    ? []
    : [
        {
          name: "postgres",
          open: async () => {
            const database = await createDatabase();
            // The log is pruned at once here, as the contract describes for one process.
            const repos = await openPostgresRepos(database, { changeLogRetentionMs: 0 });
            opened.push({ repos, database });
            return repos;
          },
        },
      ]),
];

function track(repos: Repos, dir?: string) {
  opened.push({ repos, dir });
  return repos;
}

const row = (id: string, status: FileRow["status"], o: Partial<FileRow> = {}): FileRow => ({
  id, projectId: "p", bytes: 10, createdAt: 1, filename: "a.txt", purpose: "assistants", status, statusDetails: null, expiresAt: null, contentType: "text/plain", sha256: "x", ...o,
});
const chunk = (text: string): ChunkRow => ({ text, location: { page: 1 }, charStart: 0, charEnd: text.length, tokens: 1, embedding: null });
const processed = (...texts: string[]) => ({ status: "processed" as const, format: "text", text: texts.join("\n\n"), chunks: texts.map(chunk) });
const A = { fileId: "file-a", cut: "auto" };
const SMALL = "static:100:0";
const T = 1_000_000;

describe.each(IMPLEMENTATIONS)("$name", ({ name, open }) => {
  async function setup() {
    const r = await open();
    await r.keys.createProject({ id: "p", name: "p", createdAt: 0 });
    await r.keys.createProject({ id: "q", name: "q", createdAt: 0 });
    return r;
  }
  async function withStores() {
    const r = await setup();
    await r.files.insert(row("file-a", "uploaded"), 0, T);
    await r.stores.create({ id: "vs_1", projectId: "p", name: "one", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
    await r.stores.create({ id: "vs_2", projectId: "p", name: "two", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
    return { r, small: { json: "{}", cut: SMALL } };
  }

  describe("files", () => {
    test("the change token holds while nothing is written, and moves with every committed write", async () => {
      const r = await setup();
      const t0 = await r.files.changeToken();
      await r.files.list("p", { offset: 0, limit: 10, order: "desc" }, 0);
      expect(await r.files.changeToken()).toBe(t0);
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      const t1 = await r.files.changeToken();
      expect(t1).not.toBe(t0);
      const job = await r.ingestion.claim("me", T, 60_000, 3);
      const t2 = await r.files.changeToken();
      expect(t2).not.toBe(t1);
      await r.ingestion.finish(job!, "me", processed("a"), T);
      const t3 = await r.files.changeToken();
      expect(t3).not.toBe(t2);
      await r.files.remove("p", "file-a", 2);
      expect(await r.files.changeToken()).not.toBe(t3);
    });

    test("an upload is stored with its job and its knowledge-base membership; other purposes get neither", async () => {
      const r = await setup();
      expect(await r.files.insert(row("file-a", "uploaded"), 0, T)).toBe(true);
      expect(await r.files.insert(row("file-b", "processed", { purpose: "batch" }), 0, T)).toBe(true);
      expect(await r.ingestion.job(A)).toMatchObject({ state: "queued", enqueuedAt: T, attempts: 0, runs: 0 });
      expect(await r.ingestion.job({ fileId: "file-b", cut: "auto" })).toBeNull();
      const kb = await r.stores.ensureDefault("p", 0);
      expect((await r.stores.getFile(kb, "file-a", 0))?.status).toBe("in_progress");
      expect(await r.stores.getFile(kb, "file-b", 0)).toBeNull();
      expect((await r.ingestion.claim("me", T, 1000, 3))?.fileId).toBe("file-a");
      expect(await r.ingestion.claim("me", T, 1000, 3)).toBeNull();
    });

    test("a project's bytes follow its uploads and deletes, folded or not, and its quota sees every one", async () => {
      const r = await setup();
      const totals = async () => ({ p: await r.files.usedBytes("p"), q: await r.files.usedBytes("q"), all: await r.files.bytesByProject() });
      for (let i = 0; i < 6; i++) expect(await r.files.insert(row(`file-p${i}`, "processed", { bytes: 100 + i }), 0, T)).toBe(true);
      expect(await r.files.insert(row("file-q0", "processed", { projectId: "q", bytes: 7 }), 0, T)).toBe(true);
      expect(await r.files.insert(row("file-q1", "processed", { projectId: "q", bytes: 0 }), 0, T)).toBe(true);
      expect(await totals()).toEqual({ p: 615, q: 7, all: [{ project: "p", bytes: 615 }, { project: "q", bytes: 7 }] });
      await r.files.remove("p", "file-p0", 0);
      expect(await r.files.usedBytes("p")).toBe(515);
      await r.files.foldTotals();
      await r.files.foldTotals();
      expect(await r.files.usedBytes("p")).toBe(515);
      // The quota check counts what was folded and what was not.
      expect(await r.files.insert(row("file-p6", "processed", { bytes: 85 }), 600, T)).toBe(true);
      expect(await r.files.insert(row("file-p7", "processed", { bytes: 1 }), 600, T)).toBe(false);
      await r.files.remove("p", "file-p6", 0);
      expect(await r.files.insert(row("file-p7", "processed", { bytes: 1 }), 600, T)).toBe(true);
      // A project keeps its entry while it has a file, empty or not; with none, it has none.
      await r.files.remove("q", "file-q0", 0);
      expect(await totals()).toEqual({ p: 516, q: 0, all: [{ project: "p", bytes: 516 }, { project: "q", bytes: 0 }] });
      await r.files.remove("q", "file-q1", 0);
      await r.files.foldTotals();
      expect(await totals()).toEqual({ p: 516, q: 0, all: [{ project: "p", bytes: 516 }] });
    });

    test("quota, listing in both orders, count, expiry, remove with a tombstone cursor", async () => {
      const r = await setup();
      for (let i = 0; i < 5; i++) expect(await r.files.insert(row(`file-${i}`, "processed", { purpose: i % 2 ? "batch" : "vision", bytes: 100 }), 500, T)).toBe(true);
      expect(await r.files.insert(row("file-x", "processed", { bytes: 1 }), 500, T)).toBe(false);
      expect(await r.files.usedBytes("p")).toBe(500);
      const asc = await r.files.list("p", { order: "asc", limit: 2, offset: 0 }, 0);
      expect(asc.rows.map((f) => f.id)).toEqual(["file-0", "file-1"]);
      expect(asc.hasMore).toBe(true);
      const next = await r.files.list("p", { order: "asc", limit: 10, offset: 0, afterSeq: (await r.files.cursorSeq("p", "file-1"))! }, 0);
      expect(next.rows.map((f) => f.id)).toEqual(["file-2", "file-3", "file-4"]);
      expect(next.hasMore).toBe(false);
      expect((await r.files.list("p", { order: "desc", limit: 2, offset: 1 }, 0)).rows.map((f) => f.id)).toEqual(["file-3", "file-2"]);
      expect(await r.files.count("p", "batch", 0)).toBe(2);
      expect(await r.files.count("q", undefined, 0)).toBe(0);
      // another project sees nothing
      expect(await r.files.get("q", "file-0", 0)).toBeNull();
      expect(await r.files.remove("q", "file-0", 0)).toBeNull();
      const gone = await r.files.remove("p", "file-1", 0);
      expect(gone?.id).toBe("file-1");
      expect(await r.files.get("p", "file-1", 0)).toBeNull();
      expect(await r.files.exists("file-1")).toBe(false);
      expect(await r.files.cursorSeq("p", "file-1")).not.toBeNull();
      await r.files.insert(row("file-e", "processed", { purpose: "vision", bytes: 0, expiresAt: 50 }), 0, T);
      expect(await r.files.get("p", "file-e", 49)).not.toBeNull();
      expect(await r.files.get("p", "file-e", 50)).toBeNull();
      expect(await r.files.expired(50, 10)).toEqual([{ projectId: "p", id: "file-e" }]);
    });

    test("a file read again after each kind of write reads what was written (reads may be kept between writes)", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded", { expiresAt: 50 }), 0, T);
      const read = () => r.files.get("p", "file-a", 0);
      expect(await read()).toMatchObject({ status: "uploaded", statusDetails: null });
      expect(await read()).toMatchObject({ status: "uploaded" });
      expect(await r.files.get("q", "file-a", 0)).toBeNull();
      expect(await r.files.get("p", "file-a", 50)).toBeNull();
      await r.ingestion.claim("me", T, 1000, 3);
      await r.ingestion.heartbeat(A, "me", T + 1, 1000, "parsing page 1 of 2");
      expect(await read()).toMatchObject({ status: "uploaded", statusDetails: "parsing page 1 of 2" });
      await r.ingestion.finish(A, "me", processed("x"), T + 2);
      expect(await read()).toMatchObject({ status: "processed", statusDetails: null });
      await r.files.remove("p", "file-a", 0);
      expect(await read()).toBeNull();
    });

    test("a batch's files may each name their own chunking; the rest take the batch's", async () => {
      const { r, small } = await withStores();
      await r.files.insert(row("file-b", "uploaded"), 0, T);
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: '{"k":1}', chunking: small }, { id: "file-b", attributes: "{}" }], 0, { json: "{}", cut: "auto" }, { id: "vsfb_1" }, T);
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toMatchObject({ cut: SMALL, attributes: '{"k":1}', batchId: "vsfb_1" });
      expect(await r.stores.getFile("vs_1", "file-b", 0)).toMatchObject({ cut: "auto", batchId: "vsfb_1" });
      // each cut gets its own ingestion job
      expect(await r.ingestion.job({ fileId: "file-a", cut: SMALL })).not.toBeNull();
      expect(await r.ingestion.job({ fileId: "file-b", cut: "auto" })).not.toBeNull();
    });

    test("attached again, a file keeps its attributes unless the attach names some; a new one without any has none", async () => {
      const { r } = await withStores();
      const auto = { json: "{}", cut: "auto" };
      await r.files.insert(row("file-b", "uploaded"), 0, T);
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: '{"team":"x"}' }, { id: "file-b", attributes: null }], 0, auto, null, T);
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: null }], 0, auto, null, T);
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toMatchObject({ attributes: '{"team":"x"}' });
      expect(await r.stores.getFile("vs_1", "file-b", 0)).toMatchObject({ attributes: "{}" });
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, auto, { id: "vsfb_3" }, T);
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toMatchObject({ attributes: "{}", batchId: "vsfb_3" });
    });

    test("removing a file takes its jobs, chunks and memberships with it", async () => {
      const { r, small } = await withStores();
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, null, T);
      await r.files.remove("p", "file-a", 0);
      expect(await r.ingestion.job(A)).toBeNull();
      expect(await r.ingestion.job({ fileId: "file-a", cut: SMALL })).toBeNull();
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toBeNull();
      expect(await r.ingestion.claim("me", T, 1000, 3)).toBeNull();
    });
  });

  describe("ingestion", () => {
    test("a lost lease writes nothing; an expired lease goes to another runner; a claim counts a run, not an attempt", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      expect(await r.ingestion.claim("old", T, 1000, 3)).toMatchObject({ fileId: "file-a", attempts: 0, runs: 1 });
      expect(await r.ingestion.claim("new", T + 500, 1000, 3)).toBeNull();
      expect(await r.ingestion.heartbeat(A, "old", T + 600, 1000, "parsing page 1 of 2")).toBe(true);
      expect((await r.files.get("p", "file-a", 0))?.statusDetails).toBe("parsing page 1 of 2");
      expect(await r.ingestion.claim("new", T + 1700, 1000, 3)).toMatchObject({ attempts: 0, runs: 2 });
      expect(await r.ingestion.heartbeat(A, "old", T + 1800, 1000, null)).toBe(false);
      expect(await r.ingestion.finish(A, "old", processed("x"), T + 1900)).toBe(false);
      expect(await r.chunks.chunkCount()).toBe(0);
      expect(await r.ingestion.finish(A, "new", processed("x", "y"), T + 2000)).toBe(true);
      expect(await r.files.get("p", "file-a", 0)).toMatchObject({ status: "processed", statusDetails: null });
      expect(await r.ingestion.job(A)).toMatchObject({ state: "done", startedAt: T, finishedAt: T + 2000, errorCode: null, runs: 2 });
      expect(await r.chunks.chunkCount()).toBe(2);
      expect(await r.stores.documentText("file-a")).toBe("x\n\ny");
      expect(await r.ingestion.claim("any", T + 9e6, 1000, 3)).toBeNull();
    });

    test("a failed outcome is typed and kept: the file says why, the knowledge base's file reports the spec's code", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.ingestion.claim("me", T, 1000, 3);
      expect(await r.ingestion.finish(A, "me", { status: "failed", code: "unsupported_file", message: "unsupported format: a WAV" }, T + 5)).toBe(true);
      expect(await r.files.get("p", "file-a", 0)).toMatchObject({ status: "error", statusDetails: "unsupported format: a WAV" });
      expect(await r.ingestion.job(A)).toMatchObject({ state: "failed", errorCode: "unsupported_file", error: "unsupported format: a WAV", finishedAt: T + 5 });
      const f = await r.stores.getFile(await r.stores.ensureDefault("p", 0), "file-a", 0);
      expect(f).toMatchObject({ status: "failed", errorCode: "unsupported_file", error: "unsupported format: a WAV" });
    });

    test("only the document's own failures use its attempts; server stops are bounded separately", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.files.insert(row("file-b", "uploaded"), 0, T + 1);
      // file-a: its parser crashes twice
      await r.ingestion.claim("me", T, 1000, 2);
      expect(await r.ingestion.retry(A, "me", T, { code: "invalid_file", message: "the parser was killed by SIGSEGV" })).toBe(true);
      expect(await r.ingestion.claim("me", T, 1000, 2)).toMatchObject({ fileId: "file-a", attempts: 1, runs: 2 });
      await r.ingestion.retry(A, "me", T, { code: "invalid_file", message: "the parser was killed by SIGSEGV" });
      // file-b: the server dies under it five times (leases run out), and it still gets claimed
      const B = { fileId: "file-b", cut: "auto" };
      for (let i = 0; i < 5; i++) expect(await r.ingestion.claim("gone", T + 1 + i * 2000, 1000, 2)).toMatchObject({ fileId: "file-b", attempts: 0, runs: i + 1 });
      expect(await r.ingestion.exhausted(2, 5, T + 20_000)).toEqual([A, B]);
      expect((await r.files.get("p", "file-a", 0))?.statusDetails).toBe(
        "processing failed after 2 attempts (last: the parser was killed by SIGSEGV); upload the file again or report it",
      );
      expect((await r.files.get("p", "file-b", 0))?.statusDetails).toBe(
        "processing was interrupted 5 times by the server stopping while it read this file; upload the file again or report it",
      );
      expect(await r.ingestion.job(B)).toMatchObject({ state: "failed", errorCode: "server_error" });
    });

    test("postponing and releasing give the run back; nextRunAfter follows open jobs only", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.ingestion.claim("me", T, 1000, 3);
      expect(await r.ingestion.postpone(A, "me", T + 30_000)).toBe(true);
      expect(await r.ingestion.nextRunAfter()).toBe(T + 30_000);
      expect(await r.ingestion.claim("me", T + 100, 1000, 3)).toBeNull();
      expect(await r.ingestion.claim("me", T + 30_000, 1000, 3)).toMatchObject({ attempts: 0, runs: 1 });
      await r.ingestion.release("me");
      expect(await r.ingestion.claim("other", T + 30_001, 1000, 3)).toMatchObject({ attempts: 0, runs: 1 });
      await r.ingestion.finish(A, "other", processed("x"), T + 30_002);
      expect(await r.ingestion.nextRunAfter()).toBeNull();
    });

    test("embedding upkeep: chunks without vectors are listed, given vectors, and all dropped for a new model", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.ingestion.claim("me", T, 1000, 3);
      await r.ingestion.finish(A, "me", processed("one", "two"), T);
      const missing = await r.ingestion.missingEmbeddings(10);
      expect(missing.map((m) => m.text)).toEqual(["one", "two"]);
      await r.ingestion.setEmbeddings(missing.map((m) => ({ id: m.id, embedding: new Uint8Array([1, 2, 3, 4, 5]) })));
      expect(await r.ingestion.missingEmbeddings(10)).toEqual([]);
      expect((await r.chunks.embeddedAfter(0, 10)).length).toBe(2);
      await r.ingestion.clearEmbeddings('{"id":"m2"}');
      expect((await r.ingestion.missingEmbeddings(10)).length).toBe(2);
      expect(await r.chunks.getMeta("embedding_model")).toBe('{"id":"m2"}');
    });

    test("the vectors of id ranges: only the chunks inside them that have one, in id order", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.ingestion.claim("me", T, 1000, 3);
      await r.ingestion.finish(A, "me", processed("c0", "c1", "c2", "c3", "c4", "c5", "c6"), T);
      const ids = (await r.ingestion.missingEmbeddings(10)).map((m) => m.id);
      // every chunk but the fifth gets a vector naming its position
      await r.ingestion.setEmbeddings(ids.filter((_, i) => i !== 4).map((id) => ({ id, embedding: new Uint8Array([ids.indexOf(id), 9, 9, 9, 9]) })));
      const read = await r.chunks.embeddingsIn(Float64Array.from([ids[1]!, ids[2]!, ids[4]!, ids[5]!]));
      expect(read.map((v) => v.id)).toEqual([ids[1]!, ids[2]!, ids[5]!]);
      expect(read.map((v) => [...v.embedding])).toEqual([1, 2, 5].map((i) => [i, 9, 9, 9, 9]));
      expect(await r.chunks.embeddingsIn(new Float64Array(0))).toEqual([]);
    });
  });

  describe("the chunk change log (what derived indexes replay)", () => {
    test("adds and deletes in commit order, a deleted chunk's text kept; pruning keeps the sequence and reveals a gap", async () => {
      const r = await setup();
      expect(await r.chunks.lastChange()).toBe(0);
      expect(await r.chunks.changeLogReaches(0)).toBe(true);
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.ingestion.claim("me", T, 1000, 3);
      await r.ingestion.finish(A, "me", processed("one", "two"), T);
      const adds = await r.chunks.changesAfter(0, 10);
      expect(adds.map((c) => [c.op, c.text])).toEqual([["add", "one"], ["add", "two"]]);
      // An add carries its chunk's place while the chunk is there; so does the places scan.
      expect(adds.map((c) => [c.fileId, c.cut, c.idx])).toEqual([["file-a", "auto", 0], ["file-a", "auto", 1]]);
      const [one, two] = adds.map((c) => c.id) as [number, number];
      expect(await r.chunks.placeRuns(null, 10)).toEqual([{ fileId: "file-a", cut: "auto", first: one, last: two, count: 2, lo: one, hi: two - 1 }]);
      expect(await r.chunks.placeRuns({ fileId: "file-a", cut: "auto" }, 10)).toEqual([]);
      expect(await r.chunks.placeRuns({ fileId: "file-", cut: "zzz" }, 10)).toHaveLength(1);
      expect(await r.chunks.placesOf("file-a", "auto")).toEqual([{ id: one, idx: 0 }, { id: two, idx: 1 }]);
      expect(await r.chunks.textsAfter(0, 10)).toEqual(adds.map((c) => ({ id: c.id, text: c.text! })));
      expect(await r.chunks.chunkIdsIssued()).toBe(Math.max(...adds.map((c) => c.id)));
      expect(await r.chunks.neighbours([adds[0]!.id], 4)).toEqual(new Map([[adds[0]!.id, adds.map((c) => c.id)]]));
      await r.files.remove("p", "file-a", T);
      const all = await r.chunks.changesAfter(0, 10);
      // Deleted: the adds no longer carry text; the deletes carry what the chunks held.
      expect(all.map((c) => [c.op, c.text])).toEqual([["add", null], ["add", null], ["delete", "one"], ["delete", "two"]]);
      expect(all.map((c) => c.fileId)).toEqual([null, null, null, null]);
      expect(await r.chunks.placeRuns(null, 10)).toEqual([]);
      expect(all.map((c) => c.seq)).toEqual([...all.map((c) => c.seq)].sort((a, b) => a - b));
      const last = await r.chunks.lastChange();
      expect(last).toBe(all[3]!.seq);
      await r.chunks.pruneChanges(all[1]!.seq);
      expect((await r.chunks.changesAfter(0, 10)).map((c) => c.seq)).toEqual([all[2]!.seq, all[3]!.seq]);
      expect(await r.chunks.changeLogReaches(all[1]!.seq)).toBe(true);
      expect(await r.chunks.changeLogReaches(0)).toBe(false);
      await r.chunks.pruneChanges(last);
      expect(await r.chunks.lastChange()).toBe(last);
      expect(await r.chunks.changeLogReaches(last)).toBe(true);
      expect(await r.chunks.changeLogReaches(last - 1)).toBe(false);
    });
  });

  describe("search reads", () => {
    test("which file cuts a store sees follows every change, each asked again after it, and expiry without one", async () => {
      const r = await setup();
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.files.insert(row("file-b", "uploaded", { expiresAt: 100 }), 0, T);
      await r.files.insert(row("file-c", "uploaded"), 0, T);
      for (let job = await r.ingestion.claim("me", T, 60_000, 3); job; job = await r.ingestion.claim("me", T, 60_000, 3))
        await r.ingestion.finish(job, "me", processed(`text of ${job.fileId}`), T);
      await r.stores.create({ id: "vs_v", projectId: "p", name: "v", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
      await r.stores.attach("vs_v", [{ id: "file-a", attributes: '{"team":"x"}' }, { id: "file-b", attributes: '{"team":"y"}' }], 1, { json: "{}", cut: "auto" }, null, T);
      const groups = ["file-a", "file-b", "file-c"].map((fileId) => ({ fileId, cut: "auto" }));
      const team = { type: "eq" as const, key: "team", value: "x" };
      const names = (keys: Set<string>) => [...keys].map((k) => k.split("\u0000")[0]!.slice(5)).sort().join("");
      const seen = async (filter: AttributeFilter | null, now = 50, asked = groups) => {
        const answer = names(await r.chunks.visibleGroups("vs_v", filter, now, asked));
        // The whole store's cuts, as a narrow store's search reads them, agree (the files asked
        // about are all the store holds).
        expect(names(await r.chunks.storeGroups("vs_v", filter, now))).toBe(answer);
        return answer;
      };
      // each asked twice: the second answer may come from what the first learned
      for (let i = 0; i < 2; i++) {
        expect(await seen(null)).toBe("ab");
        expect(await seen(team)).toBe("a");
        expect(await seen(null, 150)).toBe("a");
      }
      await r.stores.updateAttributes("vs_v", "file-b", '{"team":"x"}');
      expect(await seen(team)).toBe("ab");
      await r.stores.attach("vs_v", [{ id: "file-c", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T);
      expect(await seen(null)).toBe("abc");
      expect(await seen(null, 150)).toBe("ac");
      await r.stores.detach("vs_v", "file-a");
      expect(await seen(null)).toBe("bc");
      expect(await seen(team)).toBe("b");
      await r.files.remove("p", "file-c", 50);
      expect(await seen(null)).toBe("b");
      expect(await seen(null, 150)).toBe("");
      // another store asked with the same filter has answers of its own
      await r.stores.create({ id: "vs_w", projectId: "p", name: "w", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
      await r.stores.attach("vs_w", [{ id: "file-a", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T);
      expect(await seen(null)).toBe("b");
      expect([...(await r.chunks.visibleGroups("vs_w", null, 50, groups))].map((k) => k.split("\u0000")[0]!.slice(5))).toEqual(["a"]);
      // a file attached before it is processed is seen once it is
      await r.files.insert(row("file-d", "uploaded"), 0, T);
      await r.stores.attach("vs_v", [{ id: "file-d", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T);
      const withD = [...groups, { fileId: "file-d", cut: "auto" }];
      const seenD = () => seen(null, 50, withD);
      expect(await seenD()).toBe("b");
      expect(await seenD()).toBe("b");
      for (let job = await r.ingestion.claim("me", T, 60_000, 3); job; job = await r.ingestion.claim("me", T, 60_000, 3)) await r.ingestion.finish(job, "me", processed("text of d"), T);
      expect(await seenD()).toBe("bd");
    });

    test("attribute filters: comparisons within one type, missing keys, lists, and/or, byte order of text", async () => {
      const r = await setup();
      const attributes: Record<string, object> = {
        "file-a": { kind: "report", year: 2026, public: true, name: "Zebra", score: 0.1 + 0.2 },
        "file-b": { kind: "deck", year: 2025, public: false, name: "apple" },
        "file-c": { year: "2026" },
        "file-d": { 'we"ird.key': "x", "": "empty-named" },
      };
      for (const id of Object.keys(attributes)) await r.files.insert(row(id, "uploaded"), 0, T);
      for (let job = await r.ingestion.claim("me", T, 60_000, 3); job; job = await r.ingestion.claim("me", T, 60_000, 3))
        await r.ingestion.finish(job, "me", processed(`text of ${job.fileId}`), T);
      await r.stores.create({ id: "vs_f", projectId: "p", name: "f", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
      await r.stores.attach("vs_f", Object.entries(attributes).map(([id, a]) => ({ id, attributes: JSON.stringify(a) })), 1, { json: "{}", cut: "auto" }, null, T);
      const all = [...(await r.chunks.visibleIds("vs_f", null, 2))];
      const fileOf = new Map([...(await r.chunks.hits("vs_f", all, null))].map(([id, h]) => [id, h.fileId]));
      expect([...fileOf.values()].sort()).toEqual(Object.keys(attributes));
      const files = async (f: AttributeFilter) => {
        const seen = [...(await r.chunks.visibleIds("vs_f", f, 2))].map((id) => fileOf.get(id)!.slice(5)).sort();
        // The same answer when asked about given chunk ids.
        expect([...(await r.chunks.visible("vs_f", f, 2, all))].map((id) => fileOf.get(id)!.slice(5)).sort()).toEqual(seen);
        // And when the hits' rows are read (a write between finding and reading may change them).
        expect([...(await r.chunks.hits("vs_f", all, f)).values()].map((h) => h.fileId.slice(5)).sort()).toEqual(seen);
        // And when asked about the files' cuts.
        const groups = Object.keys(attributes).map((fileId) => ({ fileId, cut: "auto" }));
        expect([...(await r.chunks.visibleGroups("vs_f", f, 2, groups))].map((k) => k.split("\u0000")[0]!.slice(5)).sort()).toEqual([...new Set(seen)]);
        expect([...(await r.chunks.storeGroups("vs_f", f, 2))].map((k) => k.split("\u0000")[0]!.slice(5)).sort()).toEqual([...new Set(seen)]);
        return seen.join("");
      };
      expect(await files({ type: "eq", key: "kind", value: "report" })).toBe("a");
      expect(await files({ type: "eq", key: "year", value: 2026 })).toBe("a");
      expect(await files({ type: "eq", key: "year", value: "2026" })).toBe("c");
      expect(await files({ type: "ne", key: "kind", value: "report" })).toBe("bcd");
      expect(await files({ type: "gt", key: "year", value: 2025 })).toBe("a");
      expect(await files({ type: "gte", key: "year", value: 2025 })).toBe("ab");
      expect(await files({ type: "lt", key: "year", value: 2026 })).toBe("b");
      expect(await files({ type: "lte", key: "year", value: "2026" })).toBe("c");
      expect(await files({ type: "eq", key: "public", value: true })).toBe("a");
      expect(await files({ type: "eq", key: "public", value: false })).toBe("b");
      expect(await files({ type: "eq", key: "public", value: 1 })).toBe("");
      expect(await files({ type: "ne", key: "public", value: true })).toBe("bcd");
      // Text compares by bytes: "Zebra" sorts before "a".
      expect(await files({ type: "gt", key: "name", value: "a" })).toBe("b");
      expect(await files({ type: "lt", key: "name", value: "a" })).toBe("a");
      // Numbers compare as the doubles they are, every digit kept.
      expect(await files({ type: "eq", key: "score", value: 0.1 + 0.2 })).toBe("a");
      expect(await files({ type: "gt", key: "score", value: 0.3 })).toBe("a");
      expect(await files({ type: "eq", key: "score", value: 0.3 })).toBe("");
      expect(await files({ type: "in", key: "kind", value: ["report", "deck"] })).toBe("ab");
      expect(await files({ type: "in", key: "year", value: [2026, "2026", true] })).toBe("ac");
      expect(await files({ type: "nin", key: "kind", value: ["report"] })).toBe("bcd");
      expect(await files({ type: "eq", key: 'we"ird.key', value: "x" })).toBe("d");
      // an attribute may be named by the empty string, and an empty list holds no value
      expect(await files({ type: "eq", key: "", value: "empty-named" })).toBe("d");
      expect(await files({ type: "in", key: "kind", value: [] })).toBe("");
      expect(await files({ type: "nin", key: "kind", value: [] })).toBe("abcd");
      expect(await files({ type: "and", filters: [{ type: "eq", key: "public", value: true }, { type: "gte", key: "year", value: 2026 }] })).toBe("a");
      expect(await files({ type: "or", filters: [{ type: "eq", key: "kind", value: "none" }, { type: "ne", key: "kind", value: "report" }] })).toBe("bcd");
      expect(await files({ type: "and", filters: [{ type: "or", filters: [{ type: "eq", key: "kind", value: "deck" }, { type: "eq", key: "year", value: "2026" }] }, { type: "nin", key: "public", value: [false] }] })).toBe("c");
    });
  });

  describe("coordination between processes", () => {
    test("token buckets: a burst of the limit, then waits, refilled evenly; buckets apart", async () => {
      const r = await setup();
      const c = r.coordination;
      expect([await c.takeToken("k1", 3, T), await c.takeToken("k1", 3, T), await c.takeToken("k1", 3, T)]).toEqual([null, null, null]);
      expect(await c.takeToken("k1", 3, T)).toBe(20);
      expect(await c.takeToken("k2", 3, T)).toBeNull();
      expect(await c.takeToken("k1", 3, T + 10_000)).toBe(10);
      expect(await c.takeToken("k1", 3, T + 20_000)).toBeNull();
      expect(await c.takeToken("k1", 3, T + 20_000)).toBe(20);
    });

    test("a task runs alone: the same name is refused while it runs, another name is not", async () => {
      const r = await setup();
      const seen: string[] = [];
      const ran = await r.coordination.runAlone("sweep", async () => {
        seen.push(`inner same: ${await r.coordination.runAlone("sweep", async () => void seen.push("never"))}`);
        seen.push(`inner other: ${await r.coordination.runAlone("other", async () => void seen.push("other ran"))}`);
      });
      expect(ran).toBe(true);
      expect(seen).toEqual(["inner same: false", "other ran", "inner other: true"]);
      expect(await r.coordination.runAlone("sweep", async () => {})).toBe(true);
    });
  });

  describe("a store's own cut of a file", () => {
    test("attaching queues one job per cut, shared by stores asking for it; a cut writes its own state, never the file's", async () => {
      const { r, small } = await withStores();
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, null, T);
      await r.stores.attach("vs_2", [{ id: "file-a", attributes: "{}" }], 0, small, null, T);
      const claimed = [await r.ingestion.claim("me", T, 1000, 3), await r.ingestion.claim("me", T, 1000, 3)];
      expect(claimed.map((j) => j?.cut).sort()).toEqual(["auto", SMALL]);
      expect(await r.ingestion.claim("me", T, 1000, 3)).toBeNull();
      const S = { fileId: "file-a", cut: SMALL };
      expect(await r.ingestion.finish(S, "me", processed("a", "b"), T)).toBe(true);
      expect(await r.ingestion.job(S)).toMatchObject({ state: "done" });
      expect((await r.files.get("p", "file-a", 0))?.status).toBe("uploaded");
      expect((await r.stores.getFile("vs_1", "file-a", 0))?.status).toBe("in_progress"); // the file itself is not processed yet
      expect(await r.chunks.visibleGroups("vs_1", null, 0, [S, A])).toEqual(new Set());
      expect(await r.ingestion.finish(A, "me", processed("whole"), T)).toBe(true);
      // Each store sees the cut it asked for, and only that one.
      expect(await r.chunks.visibleGroups("vs_1", null, 0, [S, A])).toEqual(new Set([groupKey("file-a", SMALL)]));
      expect(await r.chunks.storeGroups("vs_1", null, 0)).toEqual(new Set([groupKey("file-a", SMALL)]));
      const ids = [...(await r.chunks.placesOf("file-a", "auto")), ...(await r.chunks.placesOf("file-a", SMALL))].map((p) => p.id);
      expect(ids).toHaveLength(3);
      expect((await r.chunks.placeRuns(null, 10)).map((p) => [p.cut, p.count])).toEqual([["auto", 1], [SMALL, 2]]);
      expect((await r.chunks.placeRuns(null, 1)).map((p) => p.cut)).toEqual(["auto"]);
      expect((await r.chunks.placeRuns({ fileId: "file-a", cut: "auto" }, 1)).map((p) => p.cut)).toEqual([SMALL]);
      expect((await r.chunks.visible("vs_1", null, 0, ids)).size).toBe(2);
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toMatchObject({ status: "completed", cut: SMALL, usageBytes: 2 });
      expect(await r.chunks.chunkCount()).toBe(3);
    });

    test("a cut out of attempts fails alone, with its outcome; attaching again retries it", async () => {
      const { r, small } = await withStores();
      expect(await r.ingestion.finish(A, "nobody", { status: "failed", code: "invalid_file", message: "x" }, T)).toBe(false);
      await r.ingestion.claim("me", T, 1000, 1);
      await r.ingestion.finish(A, "me", processed("whole"), T);
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, null, T);
      const job = (await r.ingestion.claim("me", T, 1000, 1))!;
      expect(job.cut).toBe(SMALL);
      await r.ingestion.retry(job, "me", T, { code: "server_error", message: "embedding failed: down" });
      await r.ingestion.exhausted(1, 11, T);
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toMatchObject({ status: "failed", errorCode: "server_error" });
      expect((await r.stores.getFile("vs_1", "file-a", 0))?.error).toContain("embedding failed: down");
      expect((await r.files.get("p", "file-a", 0))?.status).toBe("processed");
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, null, T + 1);
      expect((await r.stores.getFile("vs_1", "file-a", 0))?.status).toBe("in_progress");
      expect(await r.ingestion.claim("me", T + 1, 1000, 1)).toMatchObject({ cut: SMALL, attempts: 0 });
    });

    test("a file whose default cut failed gets no other cut", async () => {
      const { r, small } = await withStores();
      await r.ingestion.claim("me", T, 1000, 3);
      await r.ingestion.finish(A, "me", { status: "failed", code: "no_text", message: "no text found" }, T);
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, null, T);
      expect(await r.ingestion.job({ fileId: "file-a", cut: SMALL })).toBeNull();
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toMatchObject({ status: "failed", errorCode: "no_text", error: "no text found" });
    });

    test("cancelling a batch whose files have all ended changes nothing", async () => {
      const { r } = await withStores();
      await r.files.insert(row("file-b", "processed"), 0, T);
      await r.stores.attach("vs_1", [{ id: "file-b", attributes: "{}" }], 0, { json: "{}", cut: "auto" }, { id: "vsfb_9" }, T);
      expect((await r.stores.getFile("vs_1", "file-b", 0))?.status).toBe("completed");
      await r.stores.cancelBatch("vs_1", "vsfb_9");
      expect((await r.stores.getBatch("vs_1", "vsfb_9"))?.cancelled).toBeFalsy();
      expect((await r.stores.getFile("vs_1", "file-b", 0))?.status).toBe("completed");
    });

    test("a cut no live membership asks for goes, with its chunks: detach, switch, cancel, store delete", async () => {
      const { r, small } = await withStores();
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, null, T);
      await r.stores.attach("vs_2", [{ id: "file-a", attributes: "{}" }], 0, small, { id: "vsfb_1" }, T);
      const S = { fileId: "file-a", cut: SMALL };
      await r.ingestion.claim("me", T, 1000, 3);
      const s = (await r.ingestion.claim("me", T, 1000, 3))!;
      expect(s.cut).toBe(SMALL);
      await r.ingestion.finish(S, "me", processed("a"), T);
      await r.stores.detach("vs_1", "file-a");
      expect(await r.ingestion.job(S)).not.toBeNull(); // vs_2 still searches it
      await r.stores.attach("vs_2", [{ id: "file-a", attributes: "{}" }], 0, { json: "{}", cut: "auto" }, null, T); // vs_2 switches to auto
      expect(await r.ingestion.job(S)).toBeNull();
      expect(await r.chunks.chunkCount()).toBe(0);
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, { id: "vsfb_2" }, T);
      expect(await r.ingestion.job(S)).toMatchObject({ state: "queued" });
      await r.stores.cancelBatch("vs_1", "vsfb_2"); // still in progress: cancelled, and its cut stops being made
      expect((await r.stores.getFile("vs_1", "file-a", 0))?.status).toBe("cancelled");
      expect((await r.stores.getBatch("vs_1", "vsfb_2"))?.cancelled).toBeTruthy();
      expect(await r.ingestion.job(S)).toBeNull();
      expect(await r.ingestion.job(A)).not.toBeNull(); // the file's own job stays
      await r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }], 0, small, null, T);
      expect(await r.stores.remove("vs_1")).toBe(true);
      expect(await r.ingestion.job(S)).toBeNull();
    });
  });

  describe("stores", () => {
    test("a page that ended on a store or membership removed since still continues after it", async () => {
      const { r } = await withStores();
      for (const id of ["file-b", "file-c", "file-d"]) await r.files.insert(row(id, "processed"), 0, T);
      await r.stores.attach("vs_1", ["file-a", "file-b", "file-c", "file-d"].map((id) => ({ id, attributes: "{}" })), 1, { json: "{}", cut: "auto" }, null, T);
      const files = async (afterSeq: number) => (await r.stores.listFiles("vs_1", { afterSeq, limit: 10, order: "asc" }, 0)).rows.map((x) => x.fileId);
      // detached, and deleted as a file: both still hold their place
      const b = (await r.stores.fileSeq("vs_1", "file-b"))!;
      await r.stores.detach("vs_1", "file-b");
      expect(await r.stores.fileSeq("vs_1", "file-b")).toBe(b);
      expect(await files(b)).toEqual(["file-c", "file-d"]);
      const c = (await r.stores.fileSeq("vs_1", "file-c"))!;
      await r.files.remove("p", "file-c", 0);
      expect(await r.stores.fileSeq("vs_1", "file-c")).toBe(c);
      expect(await files(c)).toEqual(["file-d"]);
      // attached again: the new membership's place (an old one would list it again and again)
      await r.stores.attach("vs_1", [{ id: "file-b", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T);
      const again = (await r.stores.fileSeq("vs_1", "file-b"))!;
      expect(again).toBeGreaterThan(c);
      expect(await files(again)).toEqual([]);
      // a deleted store keeps its place in its project's list, not in another's
      const s1 = (await r.stores.seq("p", "vs_1"))!;
      await r.stores.remove("vs_1");
      expect(await r.stores.seq("p", "vs_1")).toBe(s1);
      expect(await r.stores.seq("q", "vs_1")).toBeNull();
      expect((await r.stores.list("p", { afterSeq: s1, limit: 10, order: "asc" })).rows.map((x) => x.id)).toContain("vs_2");
      expect(await r.stores.fileSeq("vs_1", "file-d")).toBeNull();
    });

    test("the places of deleted files, stores and memberships are kept until swept, then forgotten", async () => {
      const { r } = await withStores();
      const now = Math.floor(Date.now() / 1000);
      await r.files.insert(row("file-b", "processed"), 0, T);
      await r.stores.attach("vs_2", ["file-a", "file-b"].map((id) => ({ id, attributes: "{}" })), 1, { json: "{}", cut: "auto" }, null, T);
      await r.stores.detach("vs_2", "file-a");
      await r.stores.remove("vs_1");
      await r.files.remove("p", "file-b", now);
      // a sweep of what was deleted before any of these keeps them all
      expect(await r.files.pruneTombstones(now - 60, 100)).toBe(0);
      expect(await r.stores.pruneTombstones(now - 60, 100)).toBe(0);
      expect(await r.files.cursorSeq("p", "file-b")).not.toBeNull();
      expect(await r.stores.seq("p", "vs_1")).not.toBeNull();
      expect(await r.stores.fileSeq("vs_2", "file-a")).not.toBeNull();
      // the deleted file's membership of vs_2 went with it, and left its place too
      expect(await r.stores.fileSeq("vs_2", "file-b")).not.toBeNull();
      // one of what was deleted since
      expect(await r.files.pruneTombstones(now + 60, 100)).toBe(1);
      // a step at a time: at most one store and one membership each
      expect(await r.stores.pruneTombstones(now + 60, 1)).toBe(2);
      expect(await r.stores.pruneTombstones(now + 60, 100)).toBe(1);
      expect(await r.stores.pruneTombstones(now + 60, 100)).toBe(0);
      expect(await r.files.cursorSeq("p", "file-b")).toBeNull();
      expect(await r.stores.seq("p", "vs_1")).toBeNull();
      expect(await r.stores.fileSeq("vs_2", "file-a")).toBeNull();
      expect(await r.stores.fileSeq("vs_2", "file-b")).toBeNull();
      // live items are untouched
      expect(await r.stores.seq("p", "vs_2")).not.toBeNull();
      expect(await r.files.get("p", "file-a", 0)).not.toBeNull();
    });

    test("a write naming a file or store deleted since it was checked fails as a missing reference, and writes nothing", async () => {
      const { r } = await withStores();
      await r.files.insert(row("file-gone", "processed"), 0, T);
      await r.files.remove("p", "file-gone", 0);
      const caught = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);
      for (const e of [
        await caught(r.stores.attach("vs_1", [{ id: "file-gone", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T)),
        await caught(r.stores.attach("vs_1", [{ id: "file-a", attributes: "{}" }, { id: "file-gone", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, { id: "vsfb_x" }, T)),
        await caught(r.stores.create({ id: "vs_new", projectId: "p", name: "n", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, ["file-gone"], "{}", { json: "{}", cut: "auto" }, T)),
      ])
        expect(missingReference(e)).toBe(true);
      expect(await r.stores.getFile("vs_1", "file-a", 0)).toBeNull();
      expect(await r.stores.get("p", "vs_new")).toBeNull();
      await r.stores.remove("vs_2");
      expect(missingReference(await caught(r.stores.attach("vs_2", [{ id: "file-a", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T)))).toBe(true);
    });

    test("usage: what a store's and a file's chunks take, text and vectors, through every change to them", async () => {
      const r = await setup();
      await r.stores.create({ id: "vs_u", projectId: "p", name: "u", isDefault: 0, createdAt: 0, lastActiveAt: 0, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
      const usage = async () => [await r.stores.usageBytes("vs_u", 0), (await r.stores.getFile("vs_u", "file-a", 0))?.usageBytes ?? null];
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      await r.stores.attach("vs_u", [{ id: "file-a", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T);
      expect(await usage()).toEqual([0, 0]);
      for (let job = await r.ingestion.claim("me", T, 60_000, 3); job; job = await r.ingestion.claim("me", T, 60_000, 3)) await r.ingestion.finish(job, "me", processed("one", "twö"), T);
      expect(await usage()).toEqual([7, 7]); // "twö" is 4 bytes
      const ids = (await r.ingestion.missingEmbeddings(10)).map((m) => m.id);
      await r.ingestion.setEmbeddings(ids.map((id) => ({ id, embedding: new Uint8Array(5) })));
      expect(await usage()).toEqual([17, 17]);
      await r.files.insert(row("file-b", "uploaded"), 0, T);
      for (let job = await r.ingestion.claim("me", T, 60_000, 3); job; job = await r.ingestion.claim("me", T, 60_000, 3)) await r.ingestion.finish(job, "me", processed("three"), T);
      await r.stores.attach("vs_u", [{ id: "file-b", attributes: "{}" }], 1, { json: "{}", cut: "auto" }, null, T);
      expect(await usage()).toEqual([22, 17]);
      await r.ingestion.clearEmbeddings('{"id":"m2"}');
      expect(await usage()).toEqual([12, 7]);
      await r.files.remove("p", "file-a", 0);
      expect(await usage()).toEqual([5, null]);
      await r.stores.detach("vs_u", "file-b");
      expect(await usage()).toEqual([0, null]);
    });

    test("keyset pages: after and before, both orders; counts by status", async () => {
      const r = await setup();
      const kb = await r.stores.ensureDefault("p", 0);
      expect(await r.stores.ensureDefault("p", 5)).toBe(kb);
      for (let i = 1; i <= 4; i++)
        await r.stores.create({ id: `vs_${i}`, projectId: "p", name: null, isDefault: 0, createdAt: i, lastActiveAt: i, metadata: "{}", expiresDays: null, chunking: "{}" }, [], "{}", { json: "{}", cut: "auto" }, T);
      const seq = async (id: string) => (await r.stores.seq("p", id))!;
      const ids = (p: { rows: { id: string }[] }) => p.rows.map((x) => x.id);
      expect(ids(await r.stores.list("p", { order: "asc", limit: 2, beforeSeq: await seq("vs_3") }))).toEqual(["vs_1", "vs_2"]);
      expect(ids(await r.stores.list("p", { order: "desc", limit: 2, beforeSeq: await seq("vs_1") }))).toEqual(["vs_3", "vs_2"]);
      const after = await r.stores.list("p", { order: "desc", limit: 2, afterSeq: await seq("vs_2") });
      expect(ids(after)).toEqual(["vs_1", kb]);
      expect(after.hasMore).toBe(false);
      expect(await r.stores.list("q", { order: "asc", limit: 10 })).toEqual({ rows: [], hasMore: false });
      await r.files.insert(row("file-a", "uploaded"), 0, T);
      expect(await r.stores.fileCounts(kb, 0)).toEqual({ in_progress: 1, completed: 0, failed: 0, cancelled: 0, total: 1 });
    });
  });

  describe("keys", () => {
    test("projects and hashed keys: find, list, revoke, count", async () => {
      const r = await setup();
      expect(await r.keys.createProject({ id: "p2", name: "p", createdAt: 9 })).toMatchObject({ id: "p" }); // the name is taken: the existing one
      await r.keys.insertKey({ id: "key_1", projectId: "p", hash: "ab".repeat(32), prefix: "sk-ragd-abc", createdAt: 1 });
      expect(await r.keys.findActiveByHash("ab".repeat(32))).toEqual({ id: "key_1", projectId: "p", hash: "ab".repeat(32) });
      expect(await r.keys.count()).toBe(1);
      expect((await r.keys.list())[0]).toMatchObject({ id: "key_1", projectName: "p", prefix: "sk-ragd-abc", revokedAt: null });
      expect(await r.keys.revoke("key_1", 5)).toBe(true);
      expect(await r.keys.revoke("key_1", 6)).toBe(false);
      expect(await r.keys.findActiveByHash("ab".repeat(32))).toBeNull();
    });
  });

  describe("responses", () => {
    const resp = (id: string, o: Partial<ResponseRow> = {}): ResponseRow => ({
      id, projectId: "p", createdAt: 1, status: "completed", background: false, previousId: null, request: "{}", object: "{}", inputItems: "[]", context: "[]", sources: "[]", ...o,
    });

    test("kept per project; updated by its runner while unfinished, until deleted", async () => {
      const r = await setup();
      await r.responses.insert(resp("resp_a", { status: "in_progress", background: true, request: '{"input":"x"}' }), "one", 60_000);
      await r.responses.insert(resp("resp_b", { previousId: "resp_a", status: "queued" }), "one", 60_000);
      await r.responses.insert(resp("resp_c"), "one", 60_000);
      expect(await r.responses.get("p", "resp_b")).toEqual(resp("resp_b", { previousId: "resp_a", status: "queued" }));
      expect(await r.responses.get("q", "resp_b")).toBeNull();
      // another process's save is refused: the run is not its own
      expect(await r.responses.update("resp_a", "two", { status: "cancelled", object: "{}", context: "[]", sources: "[]" })).toBe(false);
      expect(await r.responses.update("resp_a", "one", { status: "completed", object: '{"done":1}', context: '[{"role":"user"}]', sources: '[{"n":1}]' })).toBe(true);
      expect(await r.responses.get("p", "resp_a")).toMatchObject({ status: "completed", object: '{"done":1}', context: '[{"role":"user"}]', sources: '[{"n":1}]', request: '{"input":"x"}' });
      // ended, it keeps its end (a cancel from elsewhere is not overwritten by the run's own save)
      expect(await r.responses.update("resp_a", "one", { status: "failed", object: "{}", context: "[]", sources: "[]" })).toBe(false);
      expect(await r.responses.remove("q", "resp_a")).toBe(false);
      expect(await r.responses.remove("p", "resp_a")).toBe(true);
      expect(await r.responses.update("resp_b", "one", { status: "in_progress", object: "{}", context: "[]", sources: "[]" })).toBe(true);
    });

    test("a run is leased to its process: renewed while unfinished, cancelled from elsewhere, taken over once its process is gone, its saves then refused", async () => {
      const r = await setup();
      await r.responses.insert(resp("resp_a", { status: "in_progress", background: true }), "one", 60_000);
      await r.responses.insert(resp("resp_b", { status: "queued" }), "one", 60_000);
      await r.responses.insert(resp("resp_c", { status: "in_progress" }), "one", 60_000);
      // renewed while unfinished; an id that ended, is gone or is another's is not
      await r.responses.remove("p", "resp_c");
      expect((await r.responses.renew("one", ["resp_a", "resp_b", "resp_c"], 60_000)).sort()).toEqual(["resp_a", "resp_b"]);
      expect(await r.responses.renew("two", ["resp_a"], 60_000)).toEqual([]);
      // a live lease: another process sharing the database leaves it alone (SQLite has one process, so any other runner's run is an orphan)
      const shared = name === "postgres";
      expect((await r.responses.orphans("two")).map((x) => x.id)).toEqual(shared ? [] : ["resp_a", "resp_b"]);
      expect(await r.responses.orphans("one")).toEqual([]);
      // cancelled from elsewhere: ended, and no longer renewed, so its process stops it
      expect(await r.responses.cancel("resp_b", '{"status":"cancelled"}')).toBe(true);
      expect(await r.responses.cancel("resp_b", '{"status":"cancelled"}')).toBe(false);
      expect(await r.responses.get("p", "resp_b")).toMatchObject({ status: "cancelled", object: '{"status":"cancelled"}' });
      expect(await r.responses.renew("one", ["resp_a", "resp_b"], 60_000)).toEqual(["resp_a"]);
      // its process falls silent (the lease lapses): the run is taken, by one process only
      await r.responses.renew("one", ["resp_a"], -1000);
      expect((await r.responses.orphans("two")).map((x) => [x.id, x.background])).toEqual([["resp_a", true]]);
      expect(await r.responses.take("resp_a", "two", 60_000)).toBe(true);
      expect(await r.responses.take("resp_a", "three", 60_000)).toBe(!shared);
      // the silent process's saves and renewals no longer reach it
      expect(await r.responses.update("resp_a", "one", { status: "cancelled", object: "{}", context: "[]", sources: "[]" })).toBe(false);
      expect(await r.responses.renew("one", ["resp_a"], 60_000)).toEqual([]);
      // a process that stops hands its leases back: taken at once
      await r.responses.release("three");
      await r.responses.release("two");
      expect((await r.responses.orphans("four")).map((x) => x.id)).toEqual(["resp_a"]);
      expect((await r.responses.get("p", "resp_a"))?.status).toBe("in_progress");
    });
  });

  describe("uploads", () => {
    const upload = (id: string, o: Partial<UploadRow> = {}): UploadRow => ({
      id, projectId: "p", filename: "big.bin", purpose: "assistants", bytes: 30, mimeType: "text/plain", expiresAfter: null, createdAt: 100, expiresAt: 3700, status: "pending", fileId: `file-of-${id}`, ...o,
    });
    const part = (id: string, uploadId: string, bytes = 10) => ({ id, uploadId, bytes, createdAt: 101 });
    const fileOf = (id: string, bytes = 30) => row(id, "uploaded", { bytes, createdAt: 200 });

    test("kept per project; parts only while pending and unexpired, within its bytes and count; a cancel ends it once and hands back its parts", async () => {
      const r = await setup();
      await r.uploads.insert(upload("upload_a", { expiresAfter: '{"anchor":"created_at","seconds":3600}' }));
      await r.uploads.insert(upload("upload_b"));
      expect(await r.uploads.get("p", "upload_a")).toEqual({ ...upload("upload_a", { expiresAfter: '{"anchor":"created_at","seconds":3600}' }), claimedUntil: null });
      expect(await r.uploads.get("q", "upload_a")).toBeNull();
      expect(await r.uploads.addPart(part("part_1", "upload_a"), 200, 10, 0)).toBe(true);
      expect(await r.uploads.addPart(part("part_2", "upload_a", 20), 200, 10, 0)).toBe(true);
      expect(await r.uploads.addPart(part("part_3", "upload_a"), 3700, 10, 0)).toBe(false); // expired
      expect(await r.uploads.addPart(part("part_4", "upload_nope"), 200, 10, 0)).toBe(false);
      expect(await r.uploads.addPart(part("part_x", "upload_a", 31), 200, 10, 0)).toBe(false); // past twice its 30 bytes
      expect(await r.uploads.partExists("part_2")).toBe(true);
      expect(await r.uploads.partExists("part_3")).toBe(false);
      expect((await r.uploads.parts("upload_a")).map((x) => [x.id, x.bytes]).sort()).toEqual([["part_1", 10], ["part_2", 20]]);
      expect([await r.files.usedBytes("p"), await r.files.usedBytes("q")]).toEqual([30, 0]);
      expect(await r.uploads.cancel("q", "upload_a", 200)).toBeNull();
      expect((await r.uploads.cancel("p", "upload_a", 200))!.map((x) => x.id).sort()).toEqual(["part_1", "part_2"]);
      expect(await r.uploads.cancel("p", "upload_a", 200)).toBeNull();
      expect((await r.uploads.get("p", "upload_a"))!.status).toBe("cancelled");
      expect(await r.uploads.parts("upload_a")).toEqual([]);
      expect(await r.files.usedBytes("p")).toBe(0);
      expect(await r.uploads.partExists("part_1")).toBe(false);
      expect(await r.uploads.addPart(part("part_5", "upload_a"), 200, 10, 0)).toBe(false);
      // within the project's quota, with its files: a 10-byte file and 10 bytes of parts fill 25 but for 5
      await r.files.insert(row("file-q", "uploaded", { bytes: 10 }), 0, T);
      await r.uploads.insert(upload("upload_q"));
      expect(await r.uploads.addPart(part("part_q1", "upload_q", 10), 200, 10, 25)).toBe(true);
      expect(await r.uploads.addPart(part("part_q2", "upload_q", 6), 200, 10, 25)).toBe(false);
      expect(await r.uploads.addPart(part("part_q3", "upload_q", 5), 200, 10, 25)).toBe(true);
      // at most maxParts
      expect(await r.uploads.addPart(part("part_b1", "upload_b", 1), 200, 2, 0)).toBe(true);
      expect(await r.uploads.addPart(part("part_b2", "upload_b", 1), 200, 2, 0)).toBe(true);
      expect(await r.uploads.addPart(part("part_b3", "upload_b", 1), 200, 2, 0)).toBe(false);
    });

    test("the quota counts the project's files and its uploads' parts, and an upload's own parts once, as its file", async () => {
      const r = await setup();
      await r.uploads.insert(upload("upload_a"));
      await r.uploads.insert(upload("upload_b"));
      expect(await r.uploads.addPart(part("part_a", "upload_a", 30), 200, 10, 0)).toBe(true);
      expect(await r.uploads.addPart(part("part_b", "upload_b", 10), 200, 10, 0)).toBe(true);
      expect(await r.files.usedBytes("p")).toBe(40);
      // a file beside 40 bytes of parts: 15 more fit a quota of 55, 16 do not
      expect(await r.files.insert(row("file-x", "uploaded", { bytes: 16 }), 55, T)).toBe(false);
      expect(await r.files.insert(row("file-x", "uploaded", { bytes: 15 }), 55, T)).toBe(true);
      expect(await r.files.usedBytes("p")).toBe(55);
      // upload_a's 30 bytes of parts become its 30-byte file: still 55
      expect(await r.uploads.claim("p", "upload_a", "one", 300, 5000, "file-a")).toBe(true);
      expect(Array.isArray(await r.uploads.complete("p", "upload_a", "one", fileOf("file-a", 30), 55, T))).toBe(true);
      expect(await r.files.usedBytes("p")).toBe(55);
      // upload_b's parts still count: its complete, 30 bytes from 10 held, would pass 55 by 20
      expect(await r.uploads.claim("p", "upload_b", "one", 300, 5000, "file-b")).toBe(true);
      expect(await r.uploads.complete("p", "upload_b", "one", fileOf("file-b", 30), 74, T)).toBe("quota");
      expect(Array.isArray(await r.uploads.complete("p", "upload_b", "one", fileOf("file-b", 30), 75, T))).toBe(true);
    });

    test("a claim holds the upload: no part, cancel, other claim or sweep until it lapses; its complete writes the file and ends the upload at once", async () => {
      const r = await setup();
      await r.uploads.insert(upload("upload_a"));
      expect(await r.uploads.addPart(part("part_1", "upload_a", 30), 200, 10, 0)).toBe(true);
      expect(await r.uploads.claim("q", "upload_a", "one", 300, 5000, "file-one")).toBe(false);
      expect(await r.uploads.claim("p", "upload_a", "one", 300, 5000, "file-one")).toBe(true);
      expect((await r.uploads.get("p", "upload_a"))!).toMatchObject({ fileId: "file-one", claimedUntil: 5000 });
      expect(await r.uploads.claim("p", "upload_a", "two", 400, 1000, "file-two")).toBe(false);
      expect(await r.uploads.addPart(part("part_2", "upload_a"), 400, 10, 0)).toBe(false);
      expect(await r.uploads.cancel("p", "upload_a", 400)).toBeNull();
      // another claimant, or another file id, writes nothing
      expect(await r.uploads.complete("p", "upload_a", "two", fileOf("file-one"), 0, T)).toBe("lost");
      expect(await r.uploads.complete("p", "upload_a", "one", fileOf("file-two"), 0, T)).toBe("lost");
      expect(await r.files.exists("file-one")).toBe(false);
      // the expiry sweep leaves a claimed upload alone, even past its expiry
      expect((await r.uploads.sweep(3800, 0, 100)).parts).toEqual([]);
      // its claimant renews it whatever the time, and completes it: the file is there (queued, in the knowledge base), the upload ended
      expect(await r.uploads.claim("p", "upload_a", "one", 3800, 6000, "file-one")).toBe(true);
      expect(await r.uploads.complete("p", "upload_a", "one", fileOf("file-one"), 20, T)).toBe("quota");
      expect(await r.files.exists("file-one")).toBe(false);
      expect(((await r.uploads.complete("p", "upload_a", "one", fileOf("file-one"), 0, T)) as { id: string }[]).map((x) => x.id)).toEqual(["part_1"]);
      expect(await r.files.get("p", "file-one", 300)).toMatchObject({ id: "file-one", status: "uploaded" });
      expect(await r.uploads.get("p", "upload_a")).toMatchObject({ status: "completed", fileId: "file-one", claimedUntil: null });
      expect(await r.uploads.complete("p", "upload_a", "one", fileOf("file-one"), 0, T)).toBe("lost");
      // a claim that lapsed is taken over (while the upload is unexpired); its old claimant cannot renew it
      await r.uploads.insert(upload("upload_b"));
      expect(await r.uploads.claim("p", "upload_b", "one", 300, 900, "file-b1")).toBe(true);
      expect(await r.uploads.claim("p", "upload_b", "two", 900, 1500, "file-b2")).toBe(true);
      expect(await r.uploads.claim("p", "upload_b", "one", 1000, 1600, "file-b1")).toBe(false);
      expect(await r.uploads.complete("p", "upload_b", "one", fileOf("file-b1"), 0, T)).toBe("lost");
      expect(await r.uploads.addPart(part("part_b", "upload_b"), 1700, 10, 0)).toBe(true);
      expect((await r.uploads.cancel("p", "upload_b", 1700))!.map((x) => x.id)).toEqual(["part_b"]);
    });

    test("the sweep drops the parts of uploads that expired pending, and forgets uploads a week past their expiry", async () => {
      const r = await setup();
      await r.uploads.insert(upload("upload_old", { expiresAt: 1000 }));
      await r.uploads.insert(upload("upload_live", { expiresAt: 5000 }));
      await r.uploads.insert(upload("upload_done", { expiresAt: 1000 }));
      expect(await r.uploads.addPart(part("part_o", "upload_old"), 900, 10, 0)).toBe(true);
      expect(await r.uploads.addPart(part("part_l", "upload_live"), 900, 10, 0)).toBe(true);
      expect(await r.uploads.addPart(part("part_d", "upload_done"), 900, 10, 0)).toBe(true);
      await r.uploads.cancel("p", "upload_done", 900);
      expect((await r.uploads.sweep(2000, 0, 100)).parts.map((x) => x.id)).toEqual(["part_o"]);
      expect(await r.uploads.sweep(2000, 0, 100)).toEqual({ parts: [], forgotten: 0 });
      // still read (as expired, by its expiry) until forgotten
      expect((await r.uploads.get("p", "upload_old"))!.status).toBe("pending");
      expect(await r.uploads.sweep(2000, 1001, 100)).toEqual({ parts: [], forgotten: 2 });
      expect(await r.uploads.get("p", "upload_old")).toBeNull();
      expect(await r.uploads.get("p", "upload_done")).toBeNull();
      expect((await r.uploads.parts("upload_live")).map((x) => x.id)).toEqual(["part_l"]);
    });
  });
});
