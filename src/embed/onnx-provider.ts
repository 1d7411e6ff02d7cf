import { cpus } from "node:os";
import type { EmbeddingModel, EmbeddingProvider, EmbedPriority, Embeddings } from "./provider";
import { EmbedError } from "./provider";
import type { Tokenizer } from "./tokenizer";
import { loadTokenizer, type TokenizerSpec } from "./tokenizers";
import type { OnnxWorkerInit, OnnxWorkerReply } from "./onnx-worker";
import { IN_BINARY } from "../native/extract";
import { guardedTerminate, newGuardBuffer } from "../native/guard";
import { log } from "../util/log";

const WORKER_URL = IN_BINARY ? "./embed/onnx-worker.ts" : new URL("./onnx-worker.ts", import.meta.url).href;

export interface OnnxOptions {
  id: string;
  modelPath: string;
  /** onnxruntime's addon (native/assets.ts). */
  bindingPath: string;
  tokenizer: TokenizerSpec;
  maxTokens: number;
  keepLastToken: boolean;
  /** Workers, each with its own session (default: one per core). */
  workers?: number;
  /** onnxruntime threads of each worker's session (default 1). */
  threads?: number;
  batchSize?: number;
  ownedBy: string;
}

interface Pending {
  text: string;
  priority: EmbedPriority;
  done: (v: Float32Array | Error, tokens: number) => void;
}

interface Slot {
  worker: Worker | null;
  starting: Promise<void> | null;
  inflight: { id: number; items: Pending[] } | null;
  /** Failed restarts in a row, and when the next may be tried. */
  failures: number;
  retryAt: number;
  retryTimer: ReturnType<typeof setTimeout> | null;
}

const RESTART_BACKOFF_MS = (failures: number) => Math.min(30_000, 500 * 2 ** failures);

/**
 * An ONNX model in Workers, each with its own session (`run` blocks its thread); the bundled
 * model runs a Worker per core with one onnxruntime thread each.
 * Texts from every caller share one queue and are cut into batches, so chunks of several
 * files embed together; queries go first. Workers run batches side by side rather than one
 * session splitting each product over threads: when parsers and requests take a core for a
 * moment, a split product waits for its slowest part, a worker only for itself (bench
 * pipeline: the model ran 1.7x slower among ingestion's other work with one 2-thread session).
 */
export class OnnxProvider implements EmbeddingProvider {
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;
  private readonly slots: Slot[];

  private constructor(
    readonly model: EmbeddingModel,
    readonly tokenizer: Tokenizer,
    readonly tokenizerSpec: TokenizerSpec,
    private readonly init: OnnxWorkerInit,
    private readonly batchSize: number,
    workers: number,
  ) {
    this.slots = Array.from({ length: workers }, () => ({ worker: null, starting: null, inflight: null, failures: 0, retryAt: 0, retryTimer: null }));
  }

  static async open(o: OnnxOptions): Promise<OnnxProvider> {
    const workers = Math.max(1, o.workers ?? cpus().length);
    const init: OnnxWorkerInit = {
      type: "init",
      bindingPath: o.bindingPath,
      model: await Bun.file(o.modelPath).arrayBuffer(),
      threads: Math.max(1, o.threads ?? 1),
      tokenizer: o.tokenizer,
      maxTokens: o.maxTokens,
      keepLastToken: o.keepLastToken,
      guard: newGuardBuffer(),
    };
    const settled = await Promise.allSettled(Array.from({ length: workers }, () => spawn(init)));
    const started = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      for (const { worker } of started) await guardedTerminate(worker, init.guard);
      throw new EmbedError(`could not load the embedding model ${o.modelPath}: ${(failed.reason as Error)?.message ?? failed.reason}`);
    }
    const p = new OnnxProvider({ id: o.id, dims: started[0]!.dims, maxTokens: o.maxTokens, ownedBy: o.ownedBy }, await loadTokenizer(o.tokenizer), o.tokenizer, init, o.batchSize ?? 32, workers);
    started.forEach(({ worker }, i) => p.adopt(p.slots[i]!, worker));
    return p;
  }

  private adopt(slot: Slot, worker: Worker) {
    slot.worker = worker;
    worker.onmessage = (e: MessageEvent<OnnxWorkerReply>) => this.onReply(slot, e.data);
    // The worker died (it cannot throw on a batch, those errors come back as replies):
    // fail what it held and start a new one for the rest of the queue.
    worker.onerror = (e) => {
      worker.terminate();
      slot.worker = null;
      this.failInflight(slot, new EmbedError(`the embedding worker failed: ${e.message}`));
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
    const now = Date.now();
    if (this.queue.length && this.slots.every((s) => !s.worker && !s.starting && s.retryAt > now)) {
      // every worker failed to start again lately: answer now rather than after the backoff
      const err = new EmbedError("the embedding model failed to start; it is retried in the background, try again shortly");
      for (const it of this.queue.splice(0)) it.done(err, 0);
      return;
    }
    for (const slot of this.slots) {
      if (this.queue.length === 0 || this.closed) return;
      if (slot.inflight || slot.starting) continue;
      if (!slot.worker) {
        const wait = slot.retryAt - Date.now();
        if (wait > 0) {
          // one wake-up per slot, however often the queue is pumped meanwhile
          slot.retryTimer ??= setTimeout(() => {
            slot.retryTimer = null;
            this.pump();
          }, wait);
          slot.retryTimer.unref?.();
          continue;
        }
        slot.starting = spawn(this.init)
          .then(async ({ worker }) => {
            slot.failures = 0;
            // closed while it started: nobody will terminate it later
            if (this.closed) await guardedTerminate(worker, this.init.guard);
            else this.adopt(slot, worker);
          })
          .catch((e: Error) => {
            slot.failures++;
            slot.retryAt = Date.now() + RESTART_BACKOFF_MS(slot.failures);
            log.warn("an embedding worker could not be restarted", { error: e.message, failures: slot.failures });
            // with no worker left, or about to be, what is queued fails rather than waits
            if (this.slots.some((s) => s.worker || (s !== slot && s.starting))) return;
            const err = new EmbedError(`the embedding worker could not be restarted: ${e.message}`);
            for (const it of this.queue.splice(0)) it.done(err, 0);
          })
          .finally(() => {
            slot.starting = null;
            this.pump();
          });
        continue;
      }
      const items = this.queue.splice(0, this.batchSize);
      const id = this.nextId++;
      slot.inflight = { id, items };
      slot.worker.postMessage({ type: "run", id, texts: items.map((i) => i.text) });
    }
  }

  private onReply(slot: Slot, msg: OnnxWorkerReply) {
    const batch = slot.inflight;
    if (!batch || msg.type === "ready" || msg.id !== batch.id) return;
    slot.inflight = null;
    if (msg.type === "error") batch.items.forEach((it) => it.done(new EmbedError(`embedding failed: ${msg.message}`), 0));
    else batch.items.forEach((it, i) => it.done(msg.vectors.slice(i * msg.dims, (i + 1) * msg.dims), msg.tokens[i]!));
    this.pump();
  }

  private failInflight(slot: Slot, err: Error) {
    const batch = slot.inflight;
    slot.inflight = null;
    batch?.items.forEach((it) => it.done(err, 0));
    this.pump();
  }

  async close() {
    this.closed = true;
    for (const s of this.slots) if (s.retryTimer) clearTimeout(s.retryTimer);
    // Outside a running batch: terminating mid-run aborts the process (see native/guard.ts).
    await Promise.all(this.slots.map((s) => (s.worker ? guardedTerminate(s.worker, this.init.guard) : undefined)));
    const err = new EmbedError("the embedder is shut down");
    for (const s of this.slots) this.failInflight(s, err);
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
