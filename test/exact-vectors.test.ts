// Exact search over vectors held in memory (src/search/exact-vectors.ts) and its kernel
// (int8-dot.c): the native loop and the JavaScript one give the same bits, the scores are the
// stored vectors' cosines, and what is held is read once, kept within its bound.
import { describe, expect, test } from "bun:test";
import { sourceKernelsPath } from "../src/native/assets";
import { ExactVectors, idsIn } from "../src/search/exact-vectors";
import { int16Query, int8Dots, jsInt8Dots, openInt8Dots } from "../src/search/int8-dot";
import { dotEncoded, encodeVector } from "../src/storage/vector-codec";

let seed = 11;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

function unit(dims: number, around?: Float32Array) {
  const v = new Float32Array(dims);
  let n = 0;
  for (let i = 0; i < dims; i++) n += (v[i] = (around ? around[i]! * 3 : 0) + rand() - 0.5) ** 2;
  for (let i = 0; i < dims; i++) v[i]! /= Math.sqrt(n);
  return v;
}

describe("int8 dot-product kernel", () => {
  test("loads whenever the build staged the kernels (CI checks that it did)", () => {
    expect(int8Dots() !== jsInt8Dots).toBe(sourceKernelsPath() !== null);
  });

  test.skipIf(!sourceKernelsPath())("the native loop gives the JavaScript loop's bits, at the largest sums included", () => {
    const native = openInt8Dots(sourceKernelsPath()!)!;
    for (const dims of [512, 384, 100, 1536, 3072]) {
      const n = 300;
      const codes = new Int8Array(n * dims).map(() => Math.round(rand() * 254 - 127));
      // the largest sum the query codes allow: a query whose components are all of the same
      // size (every query code at its limit), and every stored code at -128 against its sign
      const q = new Int16Array(dims);
      const qscale = int16Query(new Float32Array(dims).map((_, j) => (j % 3 ? 1 : -1) / Math.sqrt(dims)), q);
      for (let j = 0; j < dims; j++) codes[j] = q[j]! < 0 ? 127 : -128;
      const scales = new Float32Array(n).map(() => rand() / 100);
      const a = new Float32Array(n);
      const b = new Float32Array(n);
      native(codes, scales, n, dims, q, qscale, a);
      jsInt8Dots(codes, scales, n, dims, q, qscale, b);
      expect([...a]).toEqual([...b]);
      let sum = 0;
      for (let j = 0; j < dims; j++) sum += q[j]! * codes[j]!;
      const limit = Math.floor(0x7fffffff / (128 * dims));
      expect(Math.abs(q[0]!)).toBe(Math.min(32767, limit));
      // (where int16 is not what limits the codes, the sum comes within 1% of int32's end)
      if (limit < 32767) expect(-sum).toBeGreaterThan(0.99 * 2 ** 31);
      expect(-sum).toBeLessThan(2 ** 31);
      expect(a[0]).toBe(Math.fround(Math.fround(Math.fround(sum) * Math.fround(qscale)) * scales[0]!));
    }
  });
});

describe("exact search over vectors in memory", () => {
  const dims = 256;
  const centre = unit(dims);
  // 3 runs of ids (a file's cut each), one with a chunk that has no vector yet
  const stored = new Map<number, Uint8Array>();
  for (const [first, last] of [[1, 400], [1001, 1300], [5000, 5099]] as const) for (let id = first; id <= last; id++) stored.set(id, encodeVector(unit(dims, centre)));
  stored.delete(5050);
  const reads: string[] = [];
  // As the repositories read (one call for every run missing), and sloppier: the ids just
  // outside each run come too, and must not be taken for the run's.
  const read = async (ranges: Float64Array) => {
    const ids = new Set<number>();
    for (let i = 0; i < ranges.length; i += 2) {
      reads.push(`${ranges[i]}-${ranges[i + 1]}`);
      for (let id = ranges[i]! - 1; id <= ranges[i + 1]! + 1; id++) ids.add(id);
    }
    return [...stored.entries()].filter(([id]) => ids.has(id)).sort((a, b) => a[0] - b[0]).map(([id, embedding]) => ({ id, embedding }));
  };
  const ranges = Float64Array.from([1, 400, 1001, 1300, 5000, 5099]);

  test("the k nearest by the stored vectors' cosines, each run read once unless it lacks a vector", async () => {
    const exact = new ExactVectors(read, dims, 1 << 30);
    const query = unit(dims, centre);
    const hits = await exact.search(ranges, query, 25);
    const brute = [...stored.entries()].map(([id, v]) => ({ id, score: dotEncoded(query, v) })).sort((a, b) => b.score - a.score);
    expect(hits.length).toBe(25);
    const byId = new Map(brute.map((b) => [b.id, b.score]));
    for (const h of hits) expect(Math.abs(h.score - byId.get(h.id)!)).toBeLessThan(1e-4);
    expect(hits[24]!.score).toBeGreaterThan(brute[24]!.score - 1e-4);
    for (let i = 1; i < hits.length; i++) expect(hits[i]!.score).toBeLessThanOrEqual(hits[i - 1]!.score);
    expect(idsIn(ranges)).toBe(800);
    expect(reads).toEqual(["1-400", "1001-1300", "5000-5099"]);
    // only the run missing a vector is read again; once it has one, it is held too
    await exact.search(ranges, query, 25);
    expect(reads.slice(3)).toEqual(["5000-5099"]);
    stored.set(5050, encodeVector(unit(dims, centre)));
    await exact.search(ranges, query, 25);
    await exact.search(ranges, query, 25);
    expect(reads.slice(4)).toEqual(["5000-5099"]);
    // a chunk of another run, or outside the ranges, is never a hit
    const narrow = await exact.search(Float64Array.from([1001, 1300]), query, 500);
    expect(narrow.length).toBe(300);
    for (const h of narrow) expect(h.id >= 1001 && h.id <= 1300).toBe(true);
    expect(exact.heldBytes).toBe(800 * (dims + 4 + 8));
    // the read hands back the chunks either side of a run too: not the run's
    const inner = await exact.search(Float64Array.from([2, 399]), query, 1000);
    expect(inner.length).toBe(398);
    for (const h of inner) expect(h.id >= 2 && h.id <= 399).toBe(true);
    expect(await exact.search(ranges, query, 0)).toEqual([]);
  });

  test("holds no more than its bound, dropping the least recently used runs", async () => {
    const bytesOf = (n: number) => n * (dims + 4 + 8);
    reads.length = 0;
    const exact = new ExactVectors(read, dims, bytesOf(450));
    const query = unit(dims);
    const run = (first: number, last: number) => exact.search(Float64Array.from([first, last]), query, 5);
    await run(5000, 5099);
    await run(1001, 1300);
    await run(5000, 5099); // now the more recently used
    await run(1, 50);
    expect(exact.heldBytes).toBe(bytesOf(450));
    await run(51, 100); // past the bound: 1001-1300, the least recently used, goes
    expect(exact.heldBytes).toBe(bytesOf(200));
    reads.length = 0;
    await run(5000, 5099);
    await run(1, 50);
    expect(reads).toEqual([]);
    await run(1001, 1300);
    expect(reads).toEqual(["1001-1300"]);
    await expect(exact.search(ranges, unit(dims + 1), 5)).rejects.toThrow("dimensions");
  });
});
