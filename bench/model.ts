// The embedding model alone, as ingestion runs it: chunk texts of SciFact abstracts (cut by the
// real chunker at the model's 128 tokens) through the server's embedder, 5 alternating rounds.
// "Before" is the int8 model ragd shipped until this suite was added (activations quantised
// per batch at run time, uint8 weights, batches padded to their longest text), built in memory
// and run straight on a session. The ceiling is onnxruntime's own int8 GEMM on these cores at
// the shape of the model's largest MatMul: what a model made only of such products could do.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadWeights, modelBytes, multiplyAdds } from "../models/build-use-lite";
import { DataType, encodeModel } from "../models/onnx-proto";
import { chunkBlocks, resolveChunking } from "../src/ingest/chunker";
import { hasVnni } from "../src/embed/cpu";
import { OnnxProvider } from "../src/embed/onnx-provider";
import { UnigramTokenizer } from "../src/embed/tokenizer";
import { nativePaths } from "../src/native/assets";
import { openSession, OrtTensor, type OrtSession } from "../src/native/ort";
import { ROOT, table } from "./lib";

const SCIFACT = join(ROOT, "../shared/scifact/corpus.jsonl");
const MODELS = join(ROOT, "models/dist");
const DOCS = 500;
// what ragd used to run, and what it runs now (--embed-batch's default)
const BATCH_BEFORE = 32;
const BATCH = 8;
const ROUNDS = 5;
const THREADS = 2;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function feeds(batch: number[][]) {
  const width = Math.max(1, ...batch.map((t) => t.length));
  const ids = new BigInt64Array(batch.length * width);
  const mask = new BigInt64Array(batch.length * width);
  batch.forEach((t, i) =>
    t.forEach((id, j) => {
      ids[i * width + j] = BigInt(id);
      mask[i * width + j] = 1n;
    }),
  );
  return { input_ids: new OrtTensor("int64", ids, [batch.length, width]), attention_mask: new OrtTensor("int64", mask, [batch.length, width]) };
}

/** Multiply-adds per second of onnxruntime's quantised GEMM (quantise, u8 x s8, scale) at M x K x N, as the model's MatMuls run (3-D input). */
function gemmCeiling(m: number, k: number, n: number): number {
  const q = new Int8Array(k * n).map((_, i) => ((i * 37) % 255) - 127);
  const bytes = encodeModel({
    graphName: "gemm",
    producer: "bench/model.ts",
    nodes: [
      { op: "QuantizeLinear", inputs: ["a", "as", "az"], outputs: ["aq"] },
      { op: "MatMulIntegerToFloat", inputs: ["aq", "b", "as", "bs", "az", "bz"], outputs: ["product"], domain: "com.microsoft" },
      // one number out: copying the product out to JavaScript would cost more than making it
      { op: "ReduceMax", inputs: ["product"], outputs: ["y"], attrs: { keepdims: 0 } },
    ],
    initializers: [
      { name: "as", type: DataType.FLOAT, dims: [], data: Float32Array.of(0.02) },
      { name: "az", type: DataType.UINT8, dims: [], data: Uint8Array.of(128) },
      { name: "b", type: DataType.INT8, dims: [k, n], data: q },
      { name: "bs", type: DataType.FLOAT, dims: [n], data: new Float32Array(n).fill(0.01) },
      { name: "bz", type: DataType.INT8, dims: [n], data: new Int8Array(n) },
    ],
    inputs: [{ name: "a", type: DataType.FLOAT, shape: [BATCH_BEFORE, m / BATCH_BEFORE, k] }],
    outputs: [{ name: "y", type: DataType.FLOAT, shape: [] }],
    opsets: { "": 17, "com.microsoft": 1 },
  });
  const s = openSession(nativePaths("/nonexistent").onnxruntime, bytes, THREADS);
  const a = new OrtTensor("float32", new Float32Array(m * k).map((_, i) => Math.sin(i)), [BATCH_BEFORE, m / BATCH_BEFORE, k]);
  s.run({ a });
  const times: number[] = [];
  for (let r = 0; r < 15; r++) {
    const t0 = performance.now();
    s.run({ a });
    times.push((performance.now() - t0) / 1000);
  }
  return (m * k * n) / median(times);
}

export async function modelBench(): Promise<string> {
  if (!existsSync(SCIFACT)) return "skipped: ../shared/scifact is absent";
  const tokenizer = new UnigramTokenizer(JSON.parse(readFileSync(join(MODELS, "use-lite-vocab.json"), "utf8")));
  const size = resolveChunking({ type: "auto" }, 128);
  const docs = readFileSync(SCIFACT, "utf8").split("\n").filter(Boolean).slice(0, DOCS).map((l) => JSON.parse(l) as { title: string; text: string });
  const texts = docs.flatMap((d) => chunkBlocks([{ text: d.title, loc: {} }, { text: d.text, loc: {} }], size, tokenizer).chunks.map((c) => c.text));
  const tokens = texts.map((t) => tokenizer.encode(t).slice(0, 128));
  const { weights, version } = loadWeights();
  const macs = multiplyAdds(weights);
  const work = tokens.reduce((a, t) => a + macs(t.length), 0);
  const tokenCount = tokens.reduce((a, t) => a + t.length, 0);

  const binding = nativePaths("/nonexistent").onnxruntime;
  const before: OrtSession = openSession(binding, modelBytes(weights, version, { kind: "int8-dynamic" }), THREADS);
  const open = (file: string) =>
    OnnxProvider.open({ id: file, modelPath: join(MODELS, file), bindingPath: binding, tokenizer: { kind: "unigram", vocabPath: join(MODELS, "use-lite-vocab.json") }, maxTokens: 128, keepLastToken: false, threads: THREADS, batchSize: BATCH, ownedBy: "bench" });
  const providers = [
    { name: "fp32", p: await open("use-lite-fp32.onnx") },
    { name: "int8, calibrated, uint8 weights (CPUs without VNNI)", p: await open("use-lite-int8.onnx") },
    ...(hasVnni() ? [{ name: "int8, calibrated, int8 weights (VNNI; the default here)", p: await open("use-lite-int8-vnni.onnx") }] : []),
  ];
  const runs: { name: string; once: () => Promise<Float32Array[]> }[] = [
    {
      name: "before: int8, activations quantised per batch, padded to the batch's longest",
      once: async () => {
        const out: Float32Array[] = [];
        for (let i = 0; i < tokens.length; i += BATCH_BEFORE) {
          const part = tokens.slice(i, i + BATCH_BEFORE);
          const v = before.run(feeds(part))["sentence_embedding"]!.data;
          for (let k = 0; k < part.length; k++) out.push(v.slice(k * 512, (k + 1) * 512));
        }
        return out;
      },
    },
    ...providers.map(({ name, p }) => ({
      name,
      once: async () => {
        const out: Float32Array[] = [];
        // all queued at once, as ingestion queues them: each of the embedder's workers takes the next batch
        out.push(...(await p.embed(texts, "ingest")).vectors);
        return out;
      },
    })),
  ];
  try {
    const secs = runs.map(() => [] as number[]);
    const vectors = await Promise.all(runs.map((r) => r.once())); // warm, and kept for the cosines
    for (let round = 0; round < ROUNDS; round++)
      for (const [i, r] of runs.entries()) {
        const t0 = performance.now();
        await r.once();
        secs[i]!.push((performance.now() - t0) / 1000);
      }
    const ceiling = gemmCeiling(BATCH_BEFORE * 128, 512, 1536);
    const fp32 = vectors[1]!;
    const cosine = (vs: Float32Array[]) => {
      let min = 1;
      let sum = 0;
      vs.forEach((v, i) => {
        let dot = 0;
        for (let d = 0; d < 512; d++) dot += v[d]! * fp32[i]![d]!;
        min = Math.min(min, dot);
        sum += dot;
      });
      return `${(sum / vs.length).toFixed(4)} / ${min.toFixed(4)}`;
    };
    const base = texts.length / median(secs[0]!);
    const rows = runs.map((r, i) => {
      const s = median(secs[i]!);
      const rate = texts.length / s;
      return [r.name, rate.toFixed(0), `${Math.round(texts.length / Math.max(...secs[i]!))}–${Math.round(texts.length / Math.min(...secs[i]!))}`, (tokenCount / s / 1000).toFixed(1), (work / s / 1e9).toFixed(1), `${((work / s / ceiling) * 100).toFixed(0)}%`, i === 0 ? "1.00x" : `**${(rate / base).toFixed(2)}x**`, cosine(vectors[i]!)];
    });
    return [
      table(["model", "chunks/s (median)", "min–max of rounds", "k tokens/s", "G multiply-adds/s", "of the int8 GEMM ceiling", "against before", "cosine to fp32 mean / min"], rows),
      "",
      `${texts.length} chunks of ${DOCS} SciFact abstracts (${(tokenCount / texts.length).toFixed(1)} tokens on average, ${(work / texts.length / 1e6).toFixed(0)}M multiply-adds each), before: batches of ${BATCH_BEFORE} on one session of ${THREADS} threads; now: batches of ${BATCH} on ${THREADS} workers of one thread each (the server's embedder); ${ROUNDS} alternating rounds. Ceiling: onnxruntime's quantised GEMM (${BATCH_BEFORE * 128} x 512 x 1536, one session of ${THREADS} threads, u8 x s8) reaches ${(ceiling / 1e9).toFixed(0)}G multiply-adds/s on these cores.`,
    ].join("\n");
  } finally {
    for (const { p } of providers) await p.close();
  }
}

if (import.meta.main) console.log(await modelBench());
