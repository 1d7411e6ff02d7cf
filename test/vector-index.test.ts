// The vector index file: saved with a checksum computed on the hashing thread, loaded only
// when the bytes match it.
import { afterAll, expect, test } from "bun:test";
import { openSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";
import { UsearchIndex } from "../src/storage/vectors";
import { cleanup, tempDir } from "./helpers/ragd";

const dir = tempDir();
afterAll(() => cleanup(dir));

test("a saved index loads as saved; a flipped byte is refused by its checksum", async () => {
  const path = join(dir, "vectors.usearch");
  const { index, loaded } = UsearchIndex.open(path, "model-a", 8);
  expect(loaded).toBe(false);
  const vectors = Array.from({ length: 500 }, (_, i) => new Float32Array(8).map((_, j) => Math.sin(i * 8 + j)));
  index.add(vectors.map((_, i) => i + 1), vectors);
  const before = [3, 41, 400].map((i) => index.search(vectors[i]!, 5).map((m) => m.id));
  await index.save();

  const again = UsearchIndex.open(path, "model-a", 8);
  expect(again).toMatchObject({ loaded: true });
  expect(again.index.size()).toBe(500);
  // The same graph: the same answers as before the save (HNSW is approximate, so no answer is
  // assumed beyond that; f16 can make near neighbours tie).
  expect([3, 41, 400].map((i) => again.index.search(vectors[i]!, 5).map((m) => m.id))).toEqual(before);
  expect(before[1]).toContain(42);
  expect(UsearchIndex.open(path, "model-b", 8).loaded).toBe(false);

  const fd = openSync(path, "r+");
  writeSync(fd, new Uint8Array([0xff, 0xfe]), 0, 2, 200);
  closeSync(fd);
  expect(UsearchIndex.open(path, "model-a", 8)).toMatchObject({ loaded: false, reason: "the index file does not match its checksum" });
});
