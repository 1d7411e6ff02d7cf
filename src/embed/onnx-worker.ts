// Runs an ONNX embedding model off the HTTP thread: onnxruntime-node's `run` is synchronous
// on the calling thread. Texts arrive already tokenised; vectors go back as one transferred
// Float32Array per batch.
//
import { OrtTensor as Tensor, openSession, type OrtSession } from "../native/ort";
import { useNativeGuard } from "../native/guard";
import { lowerPriority } from "../ingest/process-setup";
import { normalizeRows } from "./normalize";
import { loadTokenizer, truncate, type TokenizerSpec } from "./tokenizers";
import type { Tokenizer } from "./tokenizer";

declare const self: Worker;

export interface OnnxWorkerInit {
  type: "init";
  bindingPath: string;
  model: ArrayBuffer;
  threads: number;
  tokenizer: TokenizerSpec;
  maxTokens: number;
  /** BERT-style tokenizers end with a special token that truncation must keep. */
  keepLastToken: boolean;
  /** Shared with the owner, which terminates this worker only between batches. */
  guard: SharedArrayBuffer;
}

export interface OnnxWorkerRun {
  type: "run";
  id: number;
  texts: string[];
}

export type OnnxWorkerReply =
  | { type: "ready"; dims: number }
  | { type: "result"; id: number; vectors: Float32Array; dims: number; tokens: number[] }
  | { type: "error"; id: number | null; message: string };

const EMBED_NICE = 5;

let session: OrtSession;
let tokenizer: Tokenizer;
let cfg: OnnxWorkerInit;
// Detected from the graph: USE-lite's `sentence_embedding` is pooled and normalised already;
// a sentence-transformers export gives token states (`last_hidden_state`) to mean-pool.
let io: { ids: string; mask: string; tokenTypes?: string; output: string; pooled: boolean };

function detectIo(): typeof io {
  const inputs = session.inputNames;
  const outputs = session.outputNames;
  const ids = inputs.find((n) => n === "input_ids") ?? inputs[0]!;
  const mask = inputs.find((n) => n === "attention_mask");
  if (!mask) throw new Error(`the model has no attention_mask input (inputs: ${inputs.join(", ")})`);
  const pooled = outputs.find((n) => n === "sentence_embedding");
  const output = pooled ?? outputs.find((n) => n === "last_hidden_state" || n === "token_embeddings") ?? outputs[0]!;
  return { ids, mask, tokenTypes: inputs.find((n) => n === "token_type_ids"), output, pooled: !!pooled };
}

// Texts run padded to a multiple of this many tokens, with texts of the same padded length
// only: a text's vector then depends on its own tokens alone, never on its batch mates (a
// wider batch changes the order of the float sums in softmax and pooling), and short texts
// waste no work on a long mate's padding.
const WIDTH_STEP = 16;

function widthOf(n: number) {
  // texts arrive truncated to maxTokens, so the cap never cuts one
  return Math.min(cfg.maxTokens, Math.max(WIDTH_STEP, Math.ceil(n / WIDTH_STEP) * WIDTH_STEP));
}

function run(tokens: number[][]): { vectors: Float32Array; dims: number } {
  const groups = new Map<number, number[]>();
  tokens.forEach((t, i) => {
    const w = widthOf(t.length);
    const g = groups.get(w);
    if (g) g.push(i);
    else groups.set(w, [i]);
  });
  let vectors: Float32Array | null = null;
  let dims = 0;
  for (const [width, members] of groups) {
    const part = runPadded(members.map((i) => tokens[i]!), width);
    dims = part.dims;
    vectors ??= new Float32Array(tokens.length * dims);
    members.forEach((i, k) => vectors!.set(part.vectors.subarray(k * dims, (k + 1) * dims), i * dims));
  }
  return { vectors: vectors ?? new Float32Array(0), dims };
}

function runPadded(tokens: number[][], width: number): { vectors: Float32Array; dims: number } {
  const batch = tokens.length;
  const ids = new BigInt64Array(batch * width);
  const mask = new BigInt64Array(batch * width);
  tokens.forEach((t, i) =>
    t.forEach((id, j) => {
      ids[i * width + j] = BigInt(id);
      mask[i * width + j] = 1n;
    }),
  );
  const feeds: Record<string, Tensor> = {
    [io.ids]: new Tensor("int64", ids, [batch, width]),
    [io.mask]: new Tensor("int64", mask, [batch, width]),
  };
  if (io.tokenTypes) feeds[io.tokenTypes] = new Tensor("int64", new BigInt64Array(batch * width), [batch, width]);
  const out = session.run(feeds, [io.output])[io.output]!;
  const data = out.data as Float32Array;
  if (io.pooled || out.dims.length === 2) {
    const dims = out.dims[1] as number;
    const vectors = new Float32Array(data);
    normalizeRows(vectors, dims);
    return { vectors, dims };
  }
  const dims = out.dims[2] as number;
  const vectors = new Float32Array(batch * dims);
  for (let i = 0; i < batch; i++) {
    const n = tokens[i]!.length;
    for (let j = 0; j < n; j++) {
      const base = (i * width + j) * dims;
      for (let d = 0; d < dims; d++) vectors[i * dims + d]! += data[base + d]!;
    }
    for (let d = 0; d < dims; d++) vectors[i * dims + d]! /= Math.max(1, n);
  }
  normalizeRows(vectors, dims);
  return { vectors, dims };
}


// Text past what its tokenizer says maxTokens tokens can cover cannot reach the model (but for
// the pieces of one word longer than that, which may be chosen otherwise), and
// tokenizing it (a 4 MB input, or token ids that decode to 80 MB) held the worker and every
// embedding behind it for seconds. A tokenizer that cannot say (WordPiece drops spaces and
// makes one token of a long word) reads the text whole.
const readable = (t: string) => {
  const most = tokenizer.charsPerTokenAtMost;
  return most !== undefined && t.length > cfg.maxTokens * most ? t.slice(0, cfg.maxTokens * most) : t;
};

self.onmessage = async (e: MessageEvent<OnnxWorkerInit | OnnxWorkerRun>) => {
  const msg = e.data;
  if (msg.type === "init") {
    try {
      tokenizer = await loadTokenizer(msg.tokenizer);
      useNativeGuard(msg.guard);
      // Below the HTTP thread, above the parse processes (10): a request waits less for the
      // core a batch holds, and the model still takes every cycle nothing else wants. After
      // the async set-up: threads this thread starts inherit its priority.
      lowerPriority(EMBED_NICE);
      session = openSession(msg.bindingPath, msg.model, msg.threads);
      // onnxruntime holds its own copy of the model
      cfg = { ...msg, model: new ArrayBuffer(0) };
      io = detectIo();
      const probe = run([tokenizer.encode("probe")]);
      self.postMessage({ type: "ready", dims: probe.dims } satisfies OnnxWorkerReply);
    } catch (err) {
      self.postMessage({ type: "error", id: null, message: String((err as Error)?.message ?? err) } satisfies OnnxWorkerReply);
    }
    return;
  }
  try {
    const tokens = msg.texts.map((t) => truncate(tokenizer.encode(readable(t)), cfg.maxTokens, cfg.keepLastToken));
    const { vectors, dims } = run(tokens);
    const counts = tokens.map((t) => t.length);
    self.postMessage({ type: "result", id: msg.id, vectors, dims, tokens: counts } satisfies OnnxWorkerReply, [vectors.buffer]);
  } catch (err) {
    self.postMessage({ type: "error", id: msg.id, message: String((err as Error)?.message ?? err) } satisfies OnnxWorkerReply);
  }
};
