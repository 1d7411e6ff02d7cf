// The bundled model reproduces the original TF.js Universal Sentence Encoder Lite.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openProvider, type EmbedConfig } from "../src/embed/index";
import { UnigramTokenizer } from "../src/embed/tokenizer";
import { nativePaths } from "../src/native/assets";
import { ROOT, tempDir } from "./helpers/ragd";

interface Reference {
  sentences: { text: string; token_ids: number[]; embedding: number[] }[];
}

const SHARED = join(ROOT, "../shared/models/use-lite-reference.json");
const reference: Reference = JSON.parse(readFileSync(existsSync(SHARED) ? SHARED : join(ROOT, "test/fixtures/use-lite-reference.json"), "utf8"));
const config = (precision: "int8" | "fp32"): EmbedConfig => ({
  provider: "bundled",
  precision,
  modelDir: null,
  url: null,
  apiKey: null,
  model: null,
  maxTokens: null,
  threads: 2,
  batchSize: 8,
  onnxruntime: nativePaths("/nonexistent").onnxruntime,
});

test("the tokenizer yields the reference token ids", () => {
  const t = new UnigramTokenizer(JSON.parse(readFileSync(join(ROOT, "models/dist/use-lite-vocab.json"), "utf8")));
  for (const s of reference.sentences) expect({ text: s.text, ids: t.encode(s.text) }).toEqual({ text: s.text, ids: s.token_ids });
});

for (const [precision, min] of [["fp32", 0.9999], ["int8", 0.995]] as const) {
  test(`${precision} embeddings match the original model (cosine >= ${min})`, async () => {
    const p = await openProvider(config(precision));
    try {
      expect(p.model).toMatchObject({ id: `use-lite-${precision}`, dims: 512, maxTokens: 128 });
      const { vectors, tokens } = await p.embed(reference.sentences.map((s) => s.text), "ingest");
      reference.sentences.forEach((s, i) => {
        let dot = 0;
        for (let k = 0; k < 512; k++) dot += vectors[i]![k]! * s.embedding[k]!;
        expect({ text: s.text, ok: dot >= min }).toEqual({ text: s.text, ok: true });
        expect(tokens[i]).toBe(Math.min(128, s.token_ids.length));
      });
      // a wrong graph would still give unit vectors; different sentences must differ
      let cross = 0;
      for (let k = 0; k < 512; k++) cross += vectors[0]![k]! * vectors[1]![k]!;
      expect(cross).toBeLessThan(0.9);
    } finally {
      await p.close();
    }
  });
}
