// Real model vectors for the scale benchmark (bench/scale.ts): texts cut from the SciFact
// abstracts (sentences, runs of 2..6 sentences, then overlapping word windows of the sizes a
// chunker with overlap makes), embedded by the bundled int8 model. Embedding a million texts
// takes 20-30 minutes on 2 cores (the int8 model at 500-800 texts/s), so the vectors are cached under bench/results/ in blocks
// of 10,000, each written atomically: an interrupted run resumes where it stopped.
// Run: nice bun bench/scale-vectors.ts [count]
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openProvider } from "../src/embed/index";
import { encodeVector } from "../src/storage/vector-codec";
import { nativePaths } from "../src/native/assets";
import { writeFileAtomic } from "../src/util/atomic-file";
import { ROOT } from "./lib";

export const SCALE_CACHE = join(ROOT, "bench/results/scale-cache");
const BLOCK = 10_000;
const BLOCKS = join(SCALE_CACHE, "blocks");
// Earlier runs cached the first 75,317 vectors in one file; the text order is unchanged, so it seeds the first blocks.
const LEGACY = join(SCALE_CACHE, "vectors-75317.bin");
const WORD_WINDOWS: [size: number, stride: number][] = [[16, 4], [24, 6], [32, 8], [20, 5], [48, 12], [64, 16], [40, 10]];

export function scaleTexts(count: number): string[] {
  const seg = new Intl.Segmenter("en", { granularity: "sentence" });
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (t: string) => {
    t = t.trim();
    if (out.length < count && t.length >= 20 && !seen.has(t)) {
      seen.add(t);
      out.push(t);
    }
  };
  const docs = readFileSync(join(ROOT, "../shared/scifact/corpus.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { title: string; text: string });
  const sentences = docs.map((d) => [...seg.segment(d.text)].map((s) => s.segment));
  docs.forEach((d, di) => {
    const s = sentences[di]!;
    s.forEach((x, i) => {
      add(x);
      if (i + 1 < s.length) add(x + s[i + 1]);
    });
    add(d.title);
  });
  for (let k = 3; k <= 6 && out.length < count; k++)
    for (const s of sentences) for (let i = 0; i + k <= s.length; i++) add(s.slice(i, i + k).join(""));
  for (const [size, stride] of WORD_WINDOWS) {
    if (out.length >= count) break;
    for (const d of docs) {
      const words = d.text.split(/\s+/).filter(Boolean);
      for (let i = 0; i + size <= words.length; i += stride) add(words.slice(i, i + size).join(" "));
    }
  }
  return out;
}

const blockPath = (b: number) => join(BLOCKS, `${String(b).padStart(4, "0")}.bin`);

export function hasCachedVectors(count: number): boolean {
  seedFromLegacy();
  for (let b = 0; b * BLOCK < count; b++) if (!existsSync(blockPath(b))) return false;
  return true;
}

/** The first `count` cached vectors and their texts, or null while some block is missing. */
export function cachedVectors(count: number): { texts: string[]; vectors: Uint8Array[] } | null {
  if (!hasCachedVectors(count)) return null;
  const blocks = Math.ceil(count / BLOCK);
  const texts = scaleTexts(count);
  const vectors: Uint8Array[] = [];
  for (let b = 0; b < blocks && vectors.length < count; b++) {
    const bytes = readFileSync(blockPath(b));
    const size = bytes.length / BLOCK;
    for (let i = 0; i < BLOCK && vectors.length < count; i++) vectors.push(new Uint8Array(bytes.buffer, bytes.byteOffset + i * size, size));
  }
  return { texts, vectors };
}

function seedFromLegacy() {
  if (!existsSync(LEGACY)) return;
  const all = readFileSync(LEGACY);
  const size = all.length / 75_317;
  mkdirSync(BLOCKS, { recursive: true });
  for (let b = 0; (b + 1) * BLOCK <= 75_317; b++)
    if (!existsSync(blockPath(b))) writeFileAtomic(blockPath(b), all.subarray(b * BLOCK * size, (b + 1) * BLOCK * size));
}

if (import.meta.main) {
  const count = Number(process.argv[2] ?? 975_317);
  const texts = scaleTexts(Math.ceil(count / BLOCK) * BLOCK);
  if (texts.length < count) throw new Error(`only ${texts.length} texts available`);
  seedFromLegacy();
  const embedder = await openProvider({ provider: "bundled", precision: "int8", modelDir: null, url: null, apiKey: null, model: null, maxTokens: null, threads: 2, batchSize: 64, onnxruntime: nativePaths("/nonexistent").onnxruntime });
  const t0 = performance.now();
  let embedded = 0;
  for (let b = 0; b * BLOCK < count; b++) {
    if (existsSync(blockPath(b))) continue;
    const block = texts.slice(b * BLOCK, (b + 1) * BLOCK);
    // A batch is padded to its longest text: texts of similar length go together (10-15% faster).
    const order = block.map((_, i) => i).sort((x, y) => block[x]!.length - block[y]!.length);
    const parts: Uint8Array[] = new Array(block.length);
    for (let i = 0; i < order.length; i += 256) {
      const slice = order.slice(i, i + 256);
      const { vectors } = await embedder.embed(slice.map((j) => block[j]!), "ingest");
      vectors.forEach((v, k) => (parts[slice[k]!] = encodeVector(v)));
    }
    writeFileAtomic(blockPath(b), Buffer.concat(parts));
    embedded += block.length;
    process.stderr.write(`block ${b} done: ${embedded} texts in ${((performance.now() - t0) / 1000).toFixed(0)} s, ${(embedded / ((performance.now() - t0) / 1000)).toFixed(0)}/s\n`);
  }
  await embedder.close();
  console.log(`vectors for ${count} texts cached (${embedded} embedded now)`);
}
