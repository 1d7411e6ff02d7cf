// The `onnx` provider on a sentence-transformers-shaped export (test/helpers/tiny-sentence-model.ts):
// tokenizer.json is honoured, token states are mean-pooled over real tokens only, long texts
// are cut at the model's length with [SEP] kept, and a server started with it ingests and
// searches through the SDK.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { openProvider } from "../src/embed/index";
import type { EmbeddingProvider } from "../src/embed/provider";
import { nativePaths } from "../src/native/assets";
import { cleanup, startRagd, tempDir } from "./helpers/ragd";
import { DIMS, MAX_TOKENS, writeTinySentenceModel } from "./helpers/tiny-sentence-model";

const dir = join(tempDir("ragd-onnx-"), "tiny-st");
const tiny = writeTinySentenceModel(dir);
const ids = (...words: string[]) => words.map((w) => tiny.vocab.indexOf(w));
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe("onnx provider", () => {
  let provider: EmbeddingProvider;
  afterAll(async () => {
    await provider?.close();
    cleanup(join(dir, ".."));
  });

  test("reads the export's tokenizer and length, pools real tokens only, keeps [SEP] when cutting", async () => {
    provider = await openProvider({
      provider: "onnx", precision: "int8", modelDir: dir, url: null, apiKey: null, model: null, maxTokens: null, threads: 1, batchSize: 8,
      onnxruntime: nativePaths("/nonexistent").onnxruntime,
    });
    expect(provider.model).toMatchObject({ id: "tiny-st", dims: DIMS, maxTokens: MAX_TOKENS });
    expect(provider.tokenizer.encode("Basalt rocks!")).toEqual(ids("[CLS]", "basalt", "rock", "##s", "!", "[SEP]"));

    const short = "Lava";
    const medium = "The granite quarry and the basalt crust.";
    const long = Array.from({ length: 30 }, (_, i) => (i % 2 ? "star" : "orbit")).join(" ");
    // one batch of three lengths: padding must not move any vector
    const { vectors, tokens } = await provider.embed([short, medium, long], "ingest");
    expect(tokens).toEqual([3, 10, MAX_TOKENS]);
    const expected = [
      tiny.reference(ids("[CLS]", "lava", "[SEP]")),
      tiny.reference(ids("[CLS]", "the", "granite", "quarry", "and", "the", "basalt", "crust", ".", "[SEP]")),
      tiny.reference([...ids("[CLS]"), ...Array.from({ length: MAX_TOKENS - 2 }, (_, i) => tiny.vocab.indexOf(i % 2 ? "star" : "orbit")), ...ids("[SEP]")]),
    ];
    vectors.forEach((v, i) => {
      expect(v).toHaveLength(DIMS);
      expect(cosine(v, expected[i]!)).toBeGreaterThan(0.99999);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    });
    const alone = (await provider.embed([short], "query")).vectors[0]!;
    expect(cosine(alone, vectors[0]!)).toBeGreaterThan(0.99999);
  });

  test("a server on the export ingests, searches by meaning and serves /v1/embeddings", async () => {
    const ragd = await startRagd({ args: ["--embed-provider", "onnx", "--embed-model-dir", dir, "--embed-model", "tiny-st-v1"] });
    try {
      const client = ragd.client();
      const files = new Map<string, string>();
      for (const [name, text] of [
        ["geology.txt", "Volcanic basalt and granite form the crust. The quarry yields mineral rock."],
        ["baking.txt", "Bake the bread in the oven. Flour, yeast, salt and butter make the dough."],
      ] as const) {
        const f = await client.files.create({ file: new File([text], name), purpose: "assistants" });
        expect((await client.files.waitForProcessing(f.id, { pollInterval: 100 })).status).toBe("processed");
        files.set(name, f.id);
      }
      const kb = (await client.vectorStores.list()).data[0]!.id;
      const dense = { ranking_options: { hybrid_search: { embedding_weight: 1, text_weight: 0 } } } as never;
      // no word in common with either file: only the vectors can rank them
      const hits = await client.vectorStores.search(kb, { query: "lava", ...(dense as object) });
      // chunks are at most 16 tokens here, so each file has several; every geology chunk ranks first
      const order = hits.data.map((h) => h.file_id);
      expect(order.lastIndexOf(files.get("geology.txt")!)).toBeLessThan(order.indexOf(files.get("baking.txt")!));
      expect(new Set(order)).toEqual(new Set(files.values()));
      expect((await client.vectorStores.search(kb, { query: "bake", ...(dense as object) })).data[0]!.file_id).toBe(files.get("baking.txt")!);
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(["tiny-st-v1"]);
      const e = await client.embeddings.create({ model: "tiny-st-v1", input: "Lava" });
      expect(e.data[0]!.embedding).toHaveLength(DIMS);
      expect(cosine(Float32Array.from(e.data[0]!.embedding), tiny.reference(ids("[CLS]", "lava", "[SEP]")))).toBeGreaterThan(0.99999);
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
    }
  });
});
