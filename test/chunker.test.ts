import { describe, expect, test } from "bun:test";
import { approximateTokens, chunkBlocks, chunkingKey, chunkSizeOf, resolveChunking } from "../src/ingest/chunker";
import type { Block } from "../src/ingest/types";

const sentence = (i: number) => `Sentence number ${i} talks about widgets and their careful maintenance.`;

describe("chunker", () => {
  test("sizes past the model's window are clamped to it; static sizes within it are used as asked", () => {
    expect(resolveChunking({ type: "auto" }, 128)).toEqual({ max: 128, overlap: 32 });
    expect(resolveChunking({ type: "static", static: { max_chunk_size_tokens: 100, chunk_overlap_tokens: 50 } }, 128)).toEqual({ max: 100, overlap: 50 });
    expect(resolveChunking({ type: "static", static: { max_chunk_size_tokens: 800, chunk_overlap_tokens: 400 } }, 128)).toEqual({ max: 128, overlap: 32 });
    expect(resolveChunking({ type: "static", static: { max_chunk_size_tokens: 4096, chunk_overlap_tokens: 0 } }, 512)).toEqual({ max: 512, overlap: 0 });
  });

  test("chunks are stored under the key of the size that cut them; the server's default is auto", () => {
    const auto = resolveChunking({ type: "auto" }, 128);
    const big = resolveChunking({ type: "static", static: { max_chunk_size_tokens: 800, chunk_overlap_tokens: 400 } }, 128);
    expect(chunkingKey(big, auto)).toBe("auto");
    const small = { max: 100, overlap: 0 };
    expect(chunkingKey(small, auto)).toBe("static:100:0");
    expect(chunkSizeOf("static:100:0", auto)).toEqual(small);
    expect(chunkSizeOf("auto", auto)).toEqual(auto);
    expect(() => chunkSizeOf("../x", auto)).toThrow();
  });

  test("chunks stay within the limit, cut only between words, and point at their text", () => {
    const blocks: Block[] = [{ text: Array.from({ length: 60 }, (_, i) => sentence(i)).join(" "), loc: { page: 1 } }];
    const { text, chunks } = chunkBlocks(blocks, { max: 64, overlap: 16 });
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) {
      expect(c.tokens).toBeLessThanOrEqual(64);
      expect(approximateTokens.count(c.text)).toBeLessThanOrEqual(64);
      expect(text.slice(c.charStart, c.charEnd)).toBe(c.text);
      expect(/\w/.test(text[c.charStart - 1] ?? " ") && /\w/.test(text[c.charStart]!)).toBe(false);
      expect(/\w/.test(text[c.charEnd] ?? " ") && /\w/.test(text[c.charEnd - 1]!)).toBe(false);
      expect(c.loc).toEqual({ page: 1 });
    }
    // Every sentence lands in some chunk, and neighbours overlap by whole sentences.
    for (let i = 0; i < 60; i++) expect(chunks.some((c) => c.text.includes(sentence(i)))).toBe(true);
    expect(chunks[1]!.charStart).toBeLessThan(chunks[0]!.charEnd);
  });

  test("a word longer than a chunk is cut by characters instead of looping", () => {
    const blob = "A".repeat(5000);
    const { chunks } = chunkBlocks([{ text: `start ${blob} end`, loc: {} }], { max: 32, overlap: 8 });
    expect(chunks.map((c) => c.text).join("")).toContain("start");
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(32);
    expect(chunks.reduce((n, c) => n + (c.text.match(/A/g)?.length ?? 0), 0)).toBeGreaterThanOrEqual(5000);
  });

  test("structure first: sheets and slides never share a chunk; small pages merge into a page range", () => {
    const blocks: Block[] = [
      { text: "Region: EU, Revenue: 12", loc: { sheet: "A", rows: [2, 2] }, boundary: true },
      { text: "Region: US, Revenue: 30", loc: { sheet: "A", rows: [3, 3] } },
      { text: "City: Berlin", loc: { sheet: "B", rows: [2, 2] }, boundary: true },
    ];
    const sheets = chunkBlocks(blocks, { max: 128, overlap: 32 }).chunks;
    expect(sheets.map((c) => c.loc)).toEqual([{ sheet: "A", rows: [2, 3] }, { sheet: "B", rows: [2, 2] }]);
    const pages = chunkBlocks(
      [
        { text: "Short page one.", loc: { page: 1 }, boundary: true },
        { text: "Short page two.", loc: { page: 2 }, boundary: true },
      ],
      { max: 128, overlap: 32 },
    ).chunks;
    expect(pages).toHaveLength(1);
    expect(pages[0]!.loc).toEqual({ pages: [1, 2] });
  });

  test("table rows carry their header in every chunk", () => {
    const rows: Block[] = Array.from({ length: 40 }, (_, i) => ({ text: `Item ${i} | ${i * 10} EUR`, loc: {}, header: "Item | Price" }));
    const { chunks } = chunkBlocks(rows, { max: 40, overlap: 0 });
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) {
      expect(c.text.startsWith("Item | Price\n")).toBe(true);
      expect(c.tokens).toBeLessThanOrEqual(40);
    }
  });

  test("subtitle cues merge into a time range", () => {
    const { chunks } = chunkBlocks(
      [
        { text: "Hello.", loc: { time: ["00:00:01.000", "00:00:02.000"] } },
        { text: "World.", loc: { time: ["00:00:03.000", "00:00:04.000"] } },
      ],
      { max: 128, overlap: 0 },
    );
    expect(chunks[0]!.loc).toEqual({ time: ["00:00:01.000", "00:00:04.000"] });
  });
});

test("a block of megabytes on one line (minified, base64, a CSV cell) is segmented in windows and cut to size", () => {
  const size = { max: 64, overlap: 8 };
  const words = Array.from({ length: 400_000 }, (_, i) => `w${i % 977}`).join(" ");
  const blob = "QUJD".repeat(300_000);
  for (const text of [words, blob]) {
    expect(text.length).toBeGreaterThan(1_000_000);
    const { chunks } = chunkBlocks([{ text, loc: { lines: [1, 1] } }], size);
    expect(chunks.length).toBeGreaterThan(100);
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(size.max);
    // nothing lost: the chunks run from the start of the line to its end
    expect(chunks[0]!.charStart).toBe(0);
    expect(chunks.at(-1)!.charEnd).toBe(text.length);
  }
});
