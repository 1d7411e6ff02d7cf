// Vector store requests as OpenAI documents them, through the official SDK: a batch's `files`
// each with their own attributes and chunking (the batch-wide ones ignored), a store's
// `description`, cancelling a batch that has already ended, and attaching a file again.
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import OpenAI, { toFile } from "openai";
import { apiError, cleanup, startRagd, type Ragd } from "./helpers/ragd";

let ragd: Ragd;
let c: OpenAI;
const words = (seed: string, n: number) => Array.from({ length: n }, (_, i) => `${seed}${i % 37} grows near the river bank`).join(". ");

beforeAll(async () => {
  ragd = await startRagd();
  c = ragd.client();
});
afterAll(async () => {
  await ragd.stop();
  cleanup(ragd.dataDir);
});

const upload = async (name: string, text: string) => {
  const f = await c.files.create({ file: await toFile(Buffer.from(text), name), purpose: "assistants" });
  await c.files.waitForProcessing(f.id, { pollInterval: 50 });
  return f;
};

test("a batch's files carry their own attributes and chunking; the batch-wide ones are ignored", async () => {
  const [a, b, d] = await Promise.all([upload("a.txt", words("fern", 300)), upload("b.txt", words("moss", 300)), upload("d.txt", words("reed", 300))]);
  const store = await c.vectorStores.create({ name: "per-file" });
  const batch = await c.vectorStores.fileBatches.createAndPoll(
    store.id,
    {
      files: [
        { file_id: a.id, attributes: { kind: "a" }, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 100, chunk_overlap_tokens: 50 } } },
        { file_id: b.id, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 128, chunk_overlap_tokens: 0 } } },
        { file_id: d.id, attributes: { kind: "d" } },
      ],
      attributes: { kind: "batch-wide" },
      chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 110, chunk_overlap_tokens: 10 } },
    } as OpenAI.VectorStores.FileBatchCreateParams,
    { pollIntervalMs: 50 },
  );
  expect(batch.file_counts).toMatchObject({ completed: 3, failed: 0, total: 3 });
  const got = new Map((await c.vectorStores.files.list(store.id)).data.map((f) => [f.id, f]));
  expect(got.get(a.id)).toMatchObject({ attributes: { kind: "a" }, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 100, chunk_overlap_tokens: 50 } } });
  expect(got.get(b.id)).toMatchObject({ attributes: {}, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 128, chunk_overlap_tokens: 0 } } });
  // no strategy of its own: the store's default (auto), not the batch-wide one
  const auto = got.get(d.id)!.chunking_strategy as { static: { max_chunk_size_tokens: number; chunk_overlap_tokens: number } };
  expect(got.get(d.id)!.attributes).toEqual({ kind: "d" });
  expect(auto.static).not.toEqual({ max_chunk_size_tokens: 110, chunk_overlap_tokens: 10 });
  // Each file is searchable under its own cut: the 100-token chunks are smaller than the 128-token ones.
  const longest = async (fileId: string) => {
    const hits = await c.vectorStores.search(store.id, { query: "grows near the river bank", max_num_results: 50, filters: undefined });
    return Math.max(...hits.data.filter((h) => h.file_id === fileId).flatMap((h) => h.content.map((x) => x.text.length)));
  };
  expect(await longest(a.id)).toBeLessThan(await longest(b.id));
  // A file's own strategy is checked as a single attach's is, and the error names the entry.
  const bad = await apiError(
    c.vectorStores.fileBatches.create(store.id, {
      files: [{ file_id: a.id }, { file_id: b.id, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 800, chunk_overlap_tokens: 700 } } }],
    } as OpenAI.VectorStores.FileBatchCreateParams),
  );
  expect(bad.status).toBe(400);
  expect(bad.param).toBe("files[1].chunking_strategy");
  // With file_ids, the batch-wide attributes and chunking apply to every file.
  const shared = await c.vectorStores.fileBatches.createAndPoll(store.id, { file_ids: [d.id], attributes: { kind: "shared" }, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 110, chunk_overlap_tokens: 10 } } }, { pollIntervalMs: 50 });
  expect(shared.status).toBe("completed");
  expect(await c.vectorStores.files.retrieve(d.id, { vector_store_id: store.id })).toMatchObject({ attributes: { kind: "shared" }, chunking_strategy: { static: { max_chunk_size_tokens: 110, chunk_overlap_tokens: 10 } } });
});

test("a store's description is accepted, as OpenAI accepts it", async () => {
  const store = await c.vectorStores.create({ name: "described", description: "Field notes on river plants" });
  expect(store).toMatchObject({ object: "vector_store", name: "described" });
  const tooLong = await apiError(c.vectorStores.create({ description: "x".repeat(5000) }));
  expect(tooLong.status).toBe(400);
  expect(tooLong.param).toBe("description");
});

test("cancelling a batch that has ended leaves it as it ended", async () => {
  const f = await upload("e.txt", words("sedge", 50));
  const store = await c.vectorStores.create({ name: "ended" });
  const batch = await c.vectorStores.fileBatches.createAndPoll(store.id, { file_ids: [f.id] }, { pollIntervalMs: 50 });
  expect(batch.status).toBe("completed");
  const after = await c.vectorStores.fileBatches.cancel(batch.id, { vector_store_id: store.id });
  expect(after).toMatchObject({ status: "completed", file_counts: { completed: 1, cancelled: 0, total: 1 } });
  expect((await c.vectorStores.fileBatches.retrieve(batch.id, { vector_store_id: store.id })).status).toBe("completed");
  // and the file stays searchable in the store
  expect((await c.vectorStores.files.retrieve(f.id, { vector_store_id: store.id })).status).toBe("completed");
});

test("filters take any attribute name, the empty one too, and an empty list (in: nothing, nin: everything)", async () => {
  const f = await upload("g.txt", words("rush", 40));
  const store = await c.vectorStores.create({ name: "filters" });
  await c.vectorStores.files.createAndPoll(store.id, { file_id: f.id, attributes: { "": "unnamed", dept: "botany" } }, { pollIntervalMs: 50 });
  const found = async (filters: unknown) => (await c.vectorStores.search(store.id, { query: "river bank", filters: filters as OpenAI.ComparisonFilter })).data.length;
  expect(await found({ type: "eq", key: "", value: "unnamed" })).toBeGreaterThan(0);
  expect(await found({ type: "in", key: "dept", value: [] })).toBe(0);
  expect(await found({ type: "nin", key: "dept", value: [] })).toBeGreaterThan(0);
  expect(await found({ type: "in", key: "dept", value: ["botany"] })).toBeGreaterThan(0);
});

test("every write to a store's files marks it active (the anchor of its expiry)", async () => {
  const f = await upload("h.txt", words("iris", 20));
  const store = await c.vectorStores.create({ name: "active", expires_after: { anchor: "last_active_at", days: 1 } });
  let last = store.last_active_at!;
  const movedOn = async (write: () => Promise<unknown>) => {
    await Bun.sleep(1100); // (seconds, as OpenAI counts them)
    await write();
    const now = (await c.vectorStores.retrieve(store.id)).last_active_at!;
    expect(now).toBeGreaterThan(last);
    last = now;
  };
  await movedOn(() => c.vectorStores.fileBatches.createAndPoll(store.id, { file_ids: [f.id] }, { pollIntervalMs: 50 }));
  await movedOn(() => c.vectorStores.files.update(f.id, { vector_store_id: store.id, attributes: { k: "v" } }));
  await movedOn(() => c.vectorStores.files.delete(f.id, { vector_store_id: store.id }));
});

test("a write to an expired store's files or its name leaves it expired; a new expiry policy revives it", async () => {
  const f = await upload("k.txt", words("sorrel", 20));
  const store = await c.vectorStores.create({ name: "lapsed", expires_after: { anchor: "last_active_at", days: 1 } });
  await c.vectorStores.files.createAndPoll(store.id, { file_id: f.id }, { pollIntervalMs: 50 });
  // two days of inactivity, as the passing of time would leave them
  const db = new Database(join(ragd.dataDir, "ragd.db"));
  db.exec("PRAGMA busy_timeout = 5000");
  db.query("UPDATE vector_stores SET last_active_at = unixepoch() - 2 * 86400 WHERE id = ?").run(store.id);
  db.close();
  const lapsed = await c.vectorStores.retrieve(store.id);
  expect(lapsed.status).toBe("expired");
  // cleaning it up does not bring it back, nor does renaming it
  await c.vectorStores.files.delete(f.id, { vector_store_id: store.id });
  expect(await c.vectorStores.retrieve(store.id)).toMatchObject({ status: "expired", last_active_at: lapsed.last_active_at });
  expect(await c.vectorStores.update(store.id, { name: "lapsed, renamed", metadata: { k: "v" } })).toMatchObject({ status: "expired", last_active_at: lapsed.last_active_at });
  // a new expiry policy does
  expect((await c.vectorStores.update(store.id, { expires_after: { anchor: "last_active_at", days: 3 } })).status).toBe("completed");
});

test("a store's chunking_strategy is also the default of files attached later without one (a ragd choice: the spec's default is auto)", async () => {
  const f = await upload("chunked.txt", words("yarrow", 300));
  const g = await upload("chunked-too.txt", words("tansy", 300));
  const fixed = { type: "static" as const, static: { max_chunk_size_tokens: 100, chunk_overlap_tokens: 0 } };
  const empty = await c.vectorStores.create({ name: "static, empty", chunking_strategy: fixed });
  expect((await c.vectorStores.files.create(empty.id, { file_id: f.id })).chunking_strategy).toEqual(fixed);
  await c.vectorStores.fileBatches.createAndPoll(empty.id, { file_ids: [g.id] }, { pollIntervalMs: 50 });
  expect((await c.vectorStores.files.retrieve(g.id, { vector_store_id: empty.id })).chunking_strategy).toEqual(fixed);
  // one named wins
  const own = { type: "static" as const, static: { max_chunk_size_tokens: 120, chunk_overlap_tokens: 20 } };
  expect((await c.vectorStores.files.create(empty.id, { file_id: f.id, chunking_strategy: own })).chunking_strategy).toEqual(own);
});

test("a file attached again keeps its attributes unless the attach or batch names some", async () => {
  const f = await upload("kept.txt", words("sedge", 20));
  const store = await c.vectorStores.create({ name: "re-attach" });
  await c.vectorStores.files.create(store.id, { file_id: f.id, attributes: { team: "blue", year: 2024 } });
  const again = await c.vectorStores.files.create(store.id, { file_id: f.id });
  expect(again.attributes).toEqual({ team: "blue", year: 2024 });
  await c.vectorStores.fileBatches.createAndPoll(store.id, { file_ids: [f.id] });
  expect((await c.vectorStores.files.retrieve(f.id, { vector_store_id: store.id })).attributes).toEqual({ team: "blue", year: 2024 });
  // named, they replace the file's own
  const replaced = await c.vectorStores.files.create(store.id, { file_id: f.id, attributes: { team: "red" } });
  expect(replaced.attributes).toEqual({ team: "red" });
  await c.vectorStores.fileBatches.createAndPoll(store.id, { files: [{ file_id: f.id, attributes: {} }] });
  expect((await c.vectorStores.files.retrieve(f.id, { vector_store_id: store.id })).attributes).toEqual({});
});

test("metadata and attribute limits count characters as OpenAI does: an emoji is one", async () => {
  const emoji = (n: number) => "😀".repeat(n);
  const f = await upload("emoji.txt", words("clover", 20));
  const store = await c.vectorStores.create({ name: "emoji", metadata: { [emoji(64)]: emoji(512) } });
  expect(Object.values(store.metadata ?? {})).toEqual([emoji(512)]);
  const member = await c.vectorStores.files.create(store.id, { file_id: f.id, attributes: { [emoji(64)]: emoji(512) } });
  expect(member.attributes?.[emoji(64)]).toBe(emoji(512));
  for (const body of [
    { metadata: { [emoji(65)]: "v" } },
    { metadata: { k: emoji(513) } },
    { metadata: { k: "x".repeat(511) + emoji(2) } },
    // a long value is refused at once, however it is made
    { metadata: { k: emoji(200_000) } },
    { metadata: { k: "\ud800".repeat(200_000) } },
  ]) {
    const e = await apiError(c.vectorStores.create(body as never));
    expect([e.status, e.param]).toEqual([400, "metadata"]);
  }
  // (no NUL and no lone surrogate in attributes: PostgreSQL's JSON, which filters read, holds neither)
  for (const attributes of [{ [emoji(65)]: "v" }, { k: emoji(513) }, { k: `${emoji(10)}\u0000` }, { [`\u0000${emoji(3)}`]: "v" }, { "a\ud800": "v" }, { k: "lone \udc00" }] as Record<string, string>[]) {
    const e = await apiError(c.vectorStores.files.update(f.id, { vector_store_id: store.id, attributes }));
    expect(e.status).toBe(400);
  }
});
