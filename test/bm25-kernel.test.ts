import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { analyze, parseQuery } from "../src/search/analyzer";
import { bm25Kernel, useBm25Kernel } from "../src/search/bm25-kernel";
import { KeywordIndex } from "../src/search/keyword-index";

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
function both(index: KeywordIndex, q: string, k: number) {
  const parsed = parseQuery(q)!;
  const native = index.search(parsed, k);
  const before = useBm25Kernel(null);
  try {
    return { native, js: index.search(parsed, k) };
  } finally {
    useBm25Kernel(before);
  }
}

describe("BM25 kernel", () => {
  test("is built and loaded wherever the build had a C compiler", () => {
    const compiler = Bun.which("cc") ?? Bun.which("gcc") ?? Bun.which("clang");
    expect(bm25Kernel() !== null).toBe(compiler !== null);
  });

  test.skipIf(!bm25Kernel())("ranks exactly as the JavaScript loop: same chunks, order and scores to the last bit", async () => {
    const index = new KeywordIndex(false);
    chunks.forEach((c, i) => index.add(i * 2 + 1, analyze(c)));
    index.sealTail();
    await index.mergeAll();
    // Smaller segments, an unsealed tail, then deletes spread over every window.
    for (let i = 0; i < 3000; i++) index.add(100_001 + i, analyze(chunks[(i * 7) % chunks.length]!));
    index.sealTail();
    for (let i = 0; i < 300; i++) index.add(200_001 + i, analyze(chunks[(i * 13) % chunks.length]!));
    expect(index.segments.map((s) => s.size)).toEqual([40_000, 1024, 1024, 952]);
    for (let i = 0; i < chunks.length; i += 37) index.delete(i * 2 + 1, analyze(chunks[i]!));
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
});
