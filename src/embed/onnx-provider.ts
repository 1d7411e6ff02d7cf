import { cpus } from "node:os";
import type { EmbeddingModel, EmbeddingProvider, EmbedPriority, Embeddings } from "./provider";
import { EmbedError } from "./provider";
import type { Tokenizer } from "./tokenizer";
import { loadTokenizer, type TokenizerSpec } from "./tokenizers";
import type { OnnxWorkerInit, OnnxWorkerReply } from "./onnx-worker";
import { IN_BINARY } from "../native/extract";
import { guardedTerminate, newGuardBuffer } from "../native/guard";

const WORKER_URL = IN_BINARY ? "./embed/onnx-worker.ts" : new URL("./onnx-worker.ts", import.meta.url).href;

export interface OnnxOptions {
  id: string;
  modelPath: string;
  /** onnxruntime's addon (native/assets.ts). */
  bindingPath: string;
  tokenizer: TokenizerSpec;
  maxTokens: number;
  keepLastToken: boolean;
  threads?: number;
  batchSize?: number;
  ownedBy: string;
}

interface Pending {
  text: string;
  priority: EmbedPriority;
  done: (v: Float32Array | Error, tokens: number) => void;
}

/**
 * An ONNX model in one Worker (onnxruntime's `run` blocks its thread). Texts from every
 * caller share one queue and are cut into batches, so chunks of several files embed
 * together; queries go first.
 */
export class OnnxProvider implements EmbeddingProvider {
  private readonly queue: Pending[] = [];
  private busy = false;
  private nextId = 1;
  private inflight: { id: number; items: Pending[] } | null = null;
  private closed = false;

  private worker: Worker | null = null;
  private starting: Promise<void> | null = null;

  private constructor(
    readonly model: EmbeddingModel,
    readonly tokenizer: Tokenizer,
    readonly tokenizerSpec: TokenizerSpec,
    private readonly init: OnnxWorkerInit,
    private readonly batchSize: number,
  ) {}

  static async open(o: OnnxOptions): Promise<OnnxProvider> {
    const init: OnnxWorkerInit = {
      type: "init",
      bindingPath: o.bindingPath,
      model: await Bun.file(o.modelPath).arrayBuffer(),
      threads: o.threads ?? cpus().length,
      tokenizer: o.tokenizer,
      maxTokens: o.maxTokens,
      keepLastToken: o.keepLastToken,
      guard: newGuardBuffer(),
    };
    const { worker, dims } = await spawn(init).catch((e: Error) => {
      throw new EmbedError(`could not load the embedding model ${o.modelPath}: ${e.message}`);
    });
    const p = new OnnxProvider({ id: o.id, dims, maxTokens: o.maxTokens, ownedBy: o.ownedBy }, await loadTokenizer(o.tokenizer), o.tokenizer, init, o.batchSize ?? 32);
    p.adopt(worker);
    return p;
  }

  private adopt(worker: Worker) {
    this.worker = worker;
    worker.onmessage = (e: MessageEvent<OnnxWorkerReply>) => this.onReply(e.data);
    // The worker died (it cannot throw on a batch, those errors come back as replies):
    // fail what it held and start a new one for the rest of the queue.
    worker.onerror = (e) => {
      worker.terminate();
      this.worker = null;
      this.failInflight(new EmbedError(`the embedding worker failed: ${e.message}`));
    };
  }

  embed(texts: string[], priority: EmbedPriority): Promise<Embeddings> {
    if (this.closed) return Promise.reject(new EmbedError("the embedder is shut down"));
    if (texts.length === 0) return Promise.resolve({ vectors: [], tokens: [] });
    return new Promise((resolve, reject) => {
      const vectors: Float32Array[] = new Array(texts.length);
      const tokens: number[] = new Array(texts.length);
      let left = texts.length;
      let failed = false;
      const items = texts.map<Pending>((text, i) => ({
        text,
        priority,
        done: (v, n) => {
          if (failed) return;
          if (v instanceof Error) {
            failed = true;
            reject(v);
            return;
          }
          vectors[i] = v;
          tokens[i] = n;
          if (--left === 0) resolve({ vectors, tokens });
        },
      }));
      if (priority === "query") {
        // ahead of every queued ingestion text, behind earlier queries
        const at = this.queue.findIndex((q) => q.priority !== "query");
        this.queue.splice(at === -1 ? this.queue.length : at, 0, ...items);
      } else this.queue.push(...items);
      this.pump();
    });
  }

  private pump() {
    if (this.busy || this.queue.length === 0 || this.closed) return;
    if (!this.worker) {
      this.starting ??= spawn(this.init)
        .then(({ worker }) => this.adopt(worker))
        .catch((e: Error) => {
          const err = new EmbedError(`the embedding worker could not be restarted: ${e.message}`);
          for (const it of this.queue.splice(0)) it.done(err, 0);
        })
        .finally(() => {
          this.starting = null;
          this.pump();
        });
      return;
    }
    this.busy = true;
    const items = this.queue.splice(0, this.batchSize);
    const id = this.nextId++;
    this.inflight = { id, items };
    this.worker.postMessage({ type: "run", id, texts: items.map((i) => i.text) });
  }

  private onReply(msg: OnnxWorkerReply) {
    const batch = this.inflight;
    if (!batch || msg.type === "ready" || msg.id !== batch.id) return;
    this.inflight = null;
    this.busy = false;
    if (msg.type === "error") batch.items.forEach((it) => it.done(new EmbedError(`embedding failed: ${msg.message}`), 0));
    else batch.items.forEach((it, i) => it.done(msg.vectors.slice(i * msg.dims, (i + 1) * msg.dims), msg.tokens[i]!));
    this.pump();
  }

  private failInflight(err: Error) {
    const batch = this.inflight;
    this.inflight = null;
    this.busy = false;
    batch?.items.forEach((it) => it.done(err, 0));
    this.pump();
  }

  async close() {
    this.closed = true;
    // Outside a running batch: terminating mid-run aborts the process (see native/guard.ts).
    if (this.worker) await guardedTerminate(this.worker, this.init.guard);
    const err = new EmbedError("the embedder is shut down");
    this.failInflight(err);
    for (const it of this.queue.splice(0)) it.done(err, 0);
  }
}

/** A worker with the model loaded, or the reason it could not load. The model bytes are copied, kept for restarts. */
function spawn(init: OnnxWorkerInit): Promise<{ worker: Worker; dims: number }> {
  const worker = new Worker(WORKER_URL);
  return new Promise<{ worker: Worker; dims: number }>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<OnnxWorkerReply>) => {
      if (e.data.type === "ready") resolve({ worker, dims: e.data.dims });
      else if (e.data.type === "error") reject(new Error(e.data.message));
    };
    worker.onerror = (e) => reject(new Error(e.message));
    worker.postMessage(init);
  }).catch((e) => {
    worker.terminate();
    throw e;
  });
}
