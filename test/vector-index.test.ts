// The vector index on its own thread: saved with a checksum read back as it is fsynced,
// loaded only when the bytes match it; searches answered while a long insert is under way.
import { afterAll, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { sha256File } from "../src/util/atomic-file";
import { join } from "node:path";
import { VectorIndexThread, VectorIndexUnavailable } from "../src/storage/vector-thread";
import { decodeVector, encodeVector, int8Codes } from "../src/storage/vector-codec";
import { cleanup, tempDir } from "./helpers/ragd";

const dir = tempDir();
afterAll(() => cleanup(dir));

/** Vectors as SQLite stores them, which is what the index is given. */
const stored = (vectors: Float32Array[]) => vectors.map(encodeVector);
const vectorsOf = (n: number, dims: number, seed = 0) => Array.from({ length: n }, (_, i) => new Float32Array(dims).map((_, j) => Math.sin((i + seed) * dims + j)));

test("a saved index loads as saved; a flipped byte is refused by its checksum", async () => {
  const path = join(dir, "vectors.usearch");
  const { index, loaded } = await VectorIndexThread.open(path, "model-a", 8);
  expect(loaded).toBe(false);
  const vectors = vectorsOf(500, 8);
  await index.add(vectors.map((_, i) => i + 1), stored(vectors));
  expect(index.maxId).toBe(500);
  expect(index.size()).toBe(500);
  const before = await Promise.all([3, 41, 400].map(async (i) => (await index.search(vectors[i]!, 5)).map((m) => m.id)));
  await index.save();
  await index.close();

  const again = await VectorIndexThread.open(path, "model-a", 8);
  expect(again).toMatchObject({ loaded: true });
  expect(again.index.size()).toBe(500);
  expect(again.index.maxId).toBe(500);
  // The same graph: the same answers as before the save (HNSW is approximate, so no answer is
  // assumed beyond that; int8 can make near neighbours tie).
  expect(await Promise.all([3, 41, 400].map(async (i) => (await again.index.search(vectors[i]!, 5)).map((m) => m.id)))).toEqual(before);
  expect(before[1]).toContain(42);
  await again.index.close();
  const other = await VectorIndexThread.open(path, "model-b", 8);
  expect(other.loaded).toBe(false);
  await other.index.close();

  // An index saved before the xxHash3 checksum (its manifest has a SHA-256) loads, not rebuilt.
  const manifestPath = `${path}.json`;
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  expect(manifest.checksum).toMatch(/^xxh3-8m:[0-9a-f]+$/);
  const { checksum: _, ...older } = manifest;
  const olderManifest = { ...older, sha256: sha256File(path).sha256 };
  writeFileSync(manifestPath, JSON.stringify(olderManifest));
  const old = await VectorIndexThread.open(path, "model-a", 8);
  expect(old.loaded).toBe(true);
  await old.index.close();
  // A graph built with another ef_construction loads; other links per node, or the float16
  // vectors of indexes saved before 2026-12-06, mean a rebuild.
  for (const [layout, loads] of [["i8-cos-M16-efc128", true], ["i8-cos-M32", false], ["f16-cos-M16", false]] as const) {
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, layout }));
    const opened = await VectorIndexThread.open(path, "model-a", 8);
    expect(opened.loaded).toBe(loads);
    if (!loads) expect(opened.reason).toBe(`the saved index has another layout (${layout})`);
    await opened.index.close();
  }

  const fd = openSync(path, "r+");
  writeSync(fd, new Uint8Array([0xff, 0xfe]), 0, 2, 200);
  closeSync(fd);
  for (const m of [manifest, olderManifest]) {
    writeFileSync(manifestPath, JSON.stringify(m));
    const torn = await VectorIndexThread.open(path, "model-a", 8);
    expect(torn).toMatchObject({ loaded: false, reason: "the index file does not match its checksum" });
    expect(torn.index.maxId).toBe(0);
    await torn.index.close();
  }
});

test("the index holds the int8 codes SQLite stores: its similarities are the cosines of the stored vectors", async () => {
  const dims = 512;
  // unit vectors in clusters, as a model's are: a cluster's members are near neighbours
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const unit = (v: Float32Array) => {
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return v.map((x) => x / norm);
  };
  const centres = Array.from({ length: 20 }, () => new Float32Array(dims).map(random));
  const vectors = Array.from({ length: 2_000 }, (_, i) => unit(centres[i % 20]!.map((c) => c + random() * 0.6)));
  const { index } = await VectorIndexThread.open(join(dir, "codes.usearch"), "model-a", dims);
  await index.add(vectors.map((_, i) => i + 1), stored(vectors));
  const decoded = stored(vectors).map(decodeVector);
  const cosine = (a: Float32Array, b: Float32Array) => {
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < dims; j++) (ab += a[j]! * b[j]!), (aa += a[j]! ** 2), (bb += b[j]! ** 2);
    return ab / Math.sqrt(aa * bb);
  };
  let worst = 0;
  let worstCodes = 0;
  let same = 0;
  for (const q of [0, 7, 333, 1_234, 1_999]) {
    const query = unit(vectors[q]!.map((x) => x + random() * 0.01));
    const exact = decoded.map((v, i) => ({ id: i + 1, similarity: cosine(query, v) })).sort((a, b) => b.similarity - a.similarity).slice(0, 10);
    const found = await index.search(query, 10);
    expect(found[0]!.id).toBe(q + 1);
    // the query cut to int8 as the index cuts it: the same cosine as the integers give
    const queryCodes = new Int8Array(dims);
    int8Codes(query, queryCodes);
    for (const m of found) {
      worst = Math.max(worst, Math.abs(m.similarity - cosine(query, decoded[m.id - 1]!)));
      worstCodes = Math.max(worstCodes, Math.abs(m.similarity - cosine(Float32Array.from(queryCodes), decoded[m.id - 1]!)));
    }
    same += found.filter((m) => exact.some((e) => e.id === m.id)).length;
  }
  // The graph holds the stored codes themselves: float16 vectors would be off by about 3e-4,
  // usearch's own float-to-int8 cast (about a tenth of the int8 range) by 0.005 and more.
  expect(worstCodes).toBeLessThan(1e-5);
  expect(worst).toBeLessThan(0.002);
  expect(same).toBeGreaterThanOrEqual(49);
  await index.close();
});

test("searches are answered while a long insert is under way, and see what it added so far", async () => {
  const { index } = await VectorIndexThread.open(join(dir, "busy.usearch"), "model-a", 64);
  const vectors = vectorsOf(20_000, 64, 7);
  const adding = index.add(vectors.map((_, i) => i + 1), stored(vectors));
  let finished = false;
  void adding.then(() => (finished = true));
  // A search asked after the insert began comes back before the insert ends: the thread
  // answers between slices of the insert.
  let early: { id: number }[] = [];
  for (let i = 0; i < 200 && !early.some((m) => m.id === 1); i++) {
    await Bun.sleep(5);
    early = await index.search(vectors[0]!, 3);
  }
  expect(finished).toBe(false);
  expect(early.map((m) => m.id)).toContain(1);
  await adding;
  expect(index.size()).toBe(20_000);
  expect((await index.search(vectors[19_999]!, 1))[0]!.id).toBe(20_000);
  await index.close();
});

test("a thread that dies is replaced by one holding the saved index; the high-water mark falls back with it", async () => {
  const { index } = await VectorIndexThread.open(join(dir, "lost.usearch"), "model-a", 8);
  const vectors = vectorsOf(300, 8, 3);
  await index.add(vectors.slice(0, 200).map((_, i) => i + 1), stored(vectors.slice(0, 200)));
  await index.save();
  await index.add(vectors.slice(200).map((_, i) => i + 201), stored(vectors.slice(200)));
  expect(index.maxId).toBe(300);
  // as an out-of-memory end of the thread would
  const before = index.generation;
  (index as unknown as { worker: Worker }).worker.terminate();
  // A catch-up reads on from the high-water mark once the generation changes: the two move
  // together, never a new generation with the lost thread's mark.
  let seenNew = false;
  for (let i = 0; i < 4_000 && index.maxId !== 200; i++) {
    if (index.generation !== before) {
      seenNew = true;
      expect(index.maxId).toBe(200);
    }
    await Bun.sleep(1);
  }
  expect(index.maxId).toBe(200);
  expect(seenNew || index.generation !== before).toBe(true);
  expect((await index.search(vectors[150]!, 1))[0]!.id).toBe(151);
  expect(index.size()).toBe(200);
  // what it lost is added again, as the next catch-up from SQLite does
  await index.add(vectors.slice(200).map((_, i) => i + 201), stored(vectors.slice(200)));
  expect((await index.search(vectors[250]!, 1))[0]!.id).toBe(251);
  await index.close();
});

test("an insert that a thread's replacement overtook fails, and the high-water mark stays where the saved index put it", async () => {
  const { index } = await VectorIndexThread.open(join(dir, "overtaken.usearch"), "model-a", 8);
  const vectors = vectorsOf(400, 8, 5);
  const ids = (from: number, to: number) => vectors.slice(from, to).map((_, i) => from + i + 1);
  await index.add(ids(0, 100), stored(vectors.slice(0, 100)));
  await index.save();
  await index.add(ids(100, 200), stored(vectors.slice(100, 200)));
  const generation = index.generation;
  // The thread dies: the ids 101..200 it held are lost with it.
  (index as unknown as { worker: Worker }).worker.terminate();
  const lost = await index.add(ids(200, 300), stored(vectors.slice(200, 300))).then(() => null, (e) => e);
  // the kind of error a search turns into a 503 the client may retry
  expect(lost).toBeInstanceOf(VectorIndexUnavailable);
  expect(String(lost)).toContain("thread stopped");
  // Asked before the replacement took over and answered by it: refused, so that catch-up,
  // which read SQLite from the old mark, does not raise the mark past the lost ids.
  expect(await index.add(ids(200, 300), stored(vectors.slice(200, 300))).then(() => "added", (e) => String(e))).toContain("restarted");
  expect(index.generation).toBe(generation + 1);
  expect(index.maxId).toBe(100);
  // catch-up from the mark puts everything back
  await index.add(ids(100, 400), stored(vectors.slice(100, 400)));
  expect(index.maxId).toBe(400);
  expect((await index.search(vectors[150]!, 1))[0]!.id).toBe(151);
  await index.close();
});
