import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sourceKernelsPath } from "../src/native/assets";
import { analyze, parseQuery } from "../src/search/analyzer";
import { bm25Kernel, openBm25Kernel, useBm25Kernel } from "../src/search/bm25-kernel";
import { openInt8Dots } from "../src/search/int8-dot";
import { idRangesOf, KeywordIndex } from "../src/search/keyword-index";

// Real words (the project's own documentation), mixed into 40,000 chunks: segments that span
// several of the kernel's windows of 16,384 ordinals.
const root = join(import.meta.dir, "..");
const words = ["README.md", "docs/ARCHITECTURE.md", "bench/README.md"].flatMap((f) => readFileSync(join(root, f), "utf8").split(/\s+/)).filter((w) => /\p{L}/u.test(w));
let seed = 7;
const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
const chunks: string[] = [];
for (let i = 0; i < 40_000; i++) {
  const at = rand(words.length - 80);
  chunks.push(words.slice(at, at + 10 + rand(60)).join(" "));
}
const queries = [...Array(60)].map((_, i) => chunks[i * 631]!.split(" ").slice(0, 3 + (i % 8)).join(" ")).concat(["vector index", "the of and", "search"]);

/** The same search with the kernel and with the JavaScript loop. */
function both(index: KeywordIndex, q: string, k: number, only?: Float64Array) {
  const parsed = parseQuery(q)!;
  const native = index.search(parsed, k, only);
  const before = useBm25Kernel(null);
  try {
    return { native, js: index.search(parsed, k, only) };
  } finally {
    useBm25Kernel(before);
  }
}

/** 40,000 chunks in a merged segment, three smaller ones and a tail; deletes in every window. */
async function bigIndex() {
  const index = new KeywordIndex(false);
  chunks.forEach((c, i) => index.add(i * 2 + 1, analyze(c)));
  index.sealTail();
  await index.mergeAll();
  for (let i = 0; i < 3000; i++) index.add(100_001 + i, analyze(chunks[(i * 7) % chunks.length]!));
  index.sealTail();
  for (let i = 0; i < 300; i++) index.add(200_001 + i, analyze(chunks[(i * 13) % chunks.length]!));
  expect(index.segments.map((s) => s.size)).toEqual([40_000, 1024, 1024, 952]);
  for (let i = 0; i < chunks.length; i += 37) index.delete(i * 2 + 1, analyze(chunks[i]!));
  return index;
}

describe("BM25 kernel", () => {
  test("loads whenever the build staged one (CI checks that it did)", () => {
    expect(bm25Kernel() !== null).toBe(sourceKernelsPath() !== null);
  });

  test("a library of another kernel version is refused, not called with the wrong arguments", () => {
    const path = sourceKernelsPath();
    if (!path) return;
    const dir = mkdtempSync(join(tmpdir(), "ragd-bm25-abi-"));
    try {
      // the same library with its version function answering another number
      const src = readFileSync(join(root, "src/search/bm25-kernel.c"), "utf8").replace(/ragd_bm25_abi\(void\) \{ return \d+; \}/, "ragd_bm25_abi(void) { return 999; }");
      expect(src).toContain("return 999;");
      writeFileSync(join(dir, "k.c"), src);
      const cc = Bun.spawnSync(["cc", "-O2", "-ffreestanding", "-nostdlib", "-fPIC", "-shared", "-o", join(dir, "k.so"), join(dir, "k.c")]);
      expect(cc.exitCode).toBe(0);
      expect(openBm25Kernel(join(dir, "k.so"))).toBeNull();
      expect(openBm25Kernel(path)).not.toBeNull();
      // a library without the other kernel gives that kernel's JavaScript loop
      expect(openInt8Dots(join(dir, "k.so"))).toBeNull();
      expect(openInt8Dots(path)).not.toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("id ranges: consecutive ids joined, in order, ids past 2^32 exact", () => {
    const big = 2 ** 32;
    expect([...idRangesOf(new Set([9, 3, 4, 5, 11, 10, big + 1, big, big + 5]))]).toEqual([3, 5, 9, 11, big, big + 1, big + 5, big + 5]);
    expect(idRangesOf([]).length).toBe(0);
  });

  test.skipIf(!bm25Kernel())("a segment of exactly two windows with ids past 2^32, filtered: the same as the JavaScript loop", async () => {
    const big = 2 ** 32;
    const index = new KeywordIndex(false);
    for (let i = 0; i < 32_768; i++) index.add(big + i * 3, analyze(chunks[i]!));
    index.sealTail();
    await index.mergeAll();
    expect(index.segments.map((s) => s.size)).toEqual([32_768]);
    const ids = [...Array(32_768)].map((_, i) => big + i * 3).filter((_, i) => i % 5 === 0 || (i > 16_000 && i < 17_000));
    let compared = 0;
    for (const q of queries.slice(0, 30)) {
      expect(both(index, q, 200).native).toEqual(both(index, q, 200).js);
      const { native, js } = both(index, q, 200, idRangesOf(ids));
      expect(native).toEqual(js);
      const set = new Set(ids);
      expect(native).toEqual(index.search(parseQuery(q)!, 100_000).filter((h) => set.has(h.id)).slice(0, 200));
      compared += native.length;
    }
    expect(compared).toBeGreaterThan(1000);
  });

  test.skipIf(!bm25Kernel())("ranks exactly as the JavaScript loop: same chunks, order and scores to the last bit", async () => {
    const index = await bigIndex();
    let compared = 0;
    let tied = 0;
    for (const q of queries)
      for (const k of [1, 10, 200, 5000]) {
        const { native, js } = both(index, q, k);
        expect(native).toEqual(js);
        compared += native.length;
        for (let i = 1; i < native.length; i++) if (native[i]!.score === native[i - 1]!.score) tied++;
      }
    expect(compared).toBeGreaterThan(50_000);
    // Ties are ordered by id on both paths: the corpus must have some for that to be checked.
    expect(tied).toBeGreaterThan(100);
  });

  test.skipIf(!bm25Kernel())("a filter given as id ranges ranks as the unfiltered ranking cut down to its chunks, in the kernel and the JavaScript loop alike", async () => {
    const index = await bigIndex();
    // Runs and single ids, in every segment and the tail; one filter that sees no segment's
    // chunks but the tail's, one that sees nothing.
    const scattered = [...Array(4000)].map((_, i) => (i % 3 === 0 ? 1 + 2 * ((i * 7919) % 40_000) : 100_001 + ((i * 31) % 3000)));
    const runs = [...Array(20)].flatMap((_, r) => [...Array(150)].map((__, i) => 1 + 2 * (r * 1900 + i)));
    const filters = [scattered, runs, [...Array(300)].map((_, i) => 200_001 + i), [7_777_777]];
    let compared = 0;
    for (const ids of filters) {
      const set = new Set(ids);
      for (const q of queries.slice(0, 30)) {
        // every chunk the query scores, unfiltered, in rank order
        const all = index.search(parseQuery(q)!, 100_000);
        for (const k of [10, 200]) {
          const { native, js } = both(index, q, k, idRangesOf(set));
          const expected = all.filter((h) => set.has(h.id)).slice(0, k);
          expect(native).toEqual(expected);
          expect(js).toEqual(expected);
          compared += native.length;
        }
      }
    }
    expect(compared).toBeGreaterThan(5000);
  });
});
