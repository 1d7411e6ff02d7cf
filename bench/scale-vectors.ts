// Real model vectors for the scale benchmark (bench/scale.ts): sentences and sentence pairs of
// the SciFact abstracts, embedded by the bundled model and cached under bench/results/ (the
// embedding takes ~15 minutes on 2 cores for 100k texts, so it is done once).
// Run: bun bench/scale-vectors.ts [count]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openProvider } from "../src/embed/index";
import { encodeVector } from "../src/storage/vector-codec";
import { nativePaths } from "../src/native/assets";
import { ROOT } from "./lib";

export const SCALE_CACHE = join(ROOT, "bench/results/scale-cache");

export function scaleTexts(count: number): string[] {
  const seg = new Intl.Segmenter("en", { granularity: "sentence" });
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (t: string) => {
    t = t.trim();
    if (t.length >= 20 && !seen.has(t)) {
      seen.add(t);
      out.push(t);
    }
  };
  const docs = readFileSync(join(ROOT, "../shared/scifact/corpus.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { title: string; text: string });
  for (const d of docs) {
    const sentences = [...seg.segment(d.text)].map((s) => s.segment);
    sentences.forEach((s, i) => {
      add(s);
      if (i + 1 < sentences.length) add(s + sentences[i + 1]);
    });
    add(d.title);
  }
  return out.slice(0, count);
}

export function cachedVectors(count: number): { texts: string[]; vectors: Uint8Array[] } | null {
  const file = join(SCALE_CACHE, `vectors-${count}.bin`);
  if (!existsSync(file)) return null;
  const texts = scaleTexts(count);
  const all = readFileSync(file);
  const size = all.length / texts.length;
  return { texts, vectors: texts.map((_, i) => new Uint8Array(all.buffer, all.byteOffset + i * size, size)) };
}

if (import.meta.main) {
  const count = Number(process.argv[2] ?? 80_000);
  const texts = scaleTexts(count);
  if (texts.length < count) throw new Error(`only ${texts.length} texts available`);
  const embedder = await openProvider({ provider: "bundled", precision: "int8", modelDir: null, url: null, apiKey: null, model: null, maxTokens: null, threads: 2, batchSize: 64, onnxruntime: nativePaths("/nonexistent").onnxruntime });
  const parts: Uint8Array[] = [];
  const t0 = performance.now();
  for (let i = 0; i < texts.length; i += 256) {
    const { vectors } = await embedder.embed(texts.slice(i, i + 256), "ingest");
    for (const v of vectors) parts.push(encodeVector(v));
    if ((i / 256) % 20 === 0) process.stderr.write(`${i + 256}/${texts.length} ${((i + 256) / ((performance.now() - t0) / 1000)).toFixed(0)}/s\n`);
  }
  mkdirSync(SCALE_CACHE, { recursive: true });
  writeFileSync(join(SCALE_CACHE, `vectors-${count}.bin`), Buffer.concat(parts));
  await embedder.close();
  console.log(`embedded ${texts.length} texts in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
