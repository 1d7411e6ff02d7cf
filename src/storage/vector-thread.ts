import { IN_BINARY } from "../native/extract";
import { log } from "../util/log";
import { publishSnapshot, type Snapshot, type VectorIndex, type VectorMatch } from "./vectors";

const WORKER_URL = IN_BINARY ? "./storage/vector-worker.ts" : new URL("./vector-worker.ts", import.meta.url).href;

type VectorCall =
  | { op: "open"; path: string; model: string; dims: number; addon: string | null }
  | { op: "add"; ids: Float64Array; flat: Float32Array; whole: boolean }
  | { op: "search"; query: Float32Array; k: number }
  | { op: "snapshot"; tmp: string };
export type VectorRequest = VectorCall & { id: number };
export type VectorReply = { id: number; size: number } & ({ ok: true; value: unknown } | { ok: false; error: string });

interface Opened {
  loaded: boolean;
  reason?: string;
  maxId: number;
}

/**
 * The vector index on its own thread (vector-worker.ts). The id high-water mark is kept here
 * as vectors are handed over, so catching up never waits on the thread to know where it is.
 * Should the thread die, a new one loads the last saved index and the high-water mark falls
 * back with it: the next catch-up adds the rest again from SQLite.
 */
export class VectorIndexThread implements VectorIndex {
  private worker!: Worker;
  private ready!: Promise<Opened>;
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private _maxId = 0;
  private _size = 0;
  private closed = false;

  private constructor(
    private readonly path: string,
    private readonly model: string,
    readonly dims: number,
    private readonly addon: string | null,
  ) {}

  /** An empty index, or the saved one when its manifest matches the model and its bytes check out. */
  static async open(path: string, model: string, dims: number, addon: string | null = null): Promise<{ index: VectorIndexThread; loaded: boolean; reason?: string }> {
    const t = new VectorIndexThread(path, model, dims, addon);
    const { loaded, reason } = await t.spawn();
    return { index: t, loaded, reason };
  }

  private spawn(): Promise<Opened> {
    const worker = new Worker(WORKER_URL);
    this.worker = worker;
    worker.onmessage = (e: MessageEvent<VectorReply>) => {
      const r = e.data;
      this._size = r.size;
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (r.ok) w.resolve(r.value);
      else w.reject(new Error(`vector index: ${r.error}`));
    };
    worker.addEventListener("error", (e) => log.error("vector index thread error", { error: String((e as ErrorEvent).message ?? e) }));
    worker.addEventListener("close", () => {
      if (this.worker !== worker) return;
      const lost = new Error("the vector index thread stopped");
      for (const w of this.waiting.values()) w.reject(lost);
      this.waiting.clear();
      if (this.closed) return;
      log.error("the vector index thread stopped; reloading the saved index, the rest is added again from SQLite");
      this.ready = this.spawn();
      this.ready.catch(() => {});
    });
    const opened = this.call<Opened>(worker, { op: "open", path: this.path, model: this.model, dims: this.dims, addon: this.addon }).then((o) => {
      this._maxId = o.maxId;
      return o;
    });
    this.ready = opened;
    return opened;
  }

  private call<T>(worker: Worker, req: VectorCall, transfer: Transferable[] = []): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ ...req, id }, transfer);
    });
  }

  private async ask<T>(req: VectorCall, transfer: Transferable[] = []): Promise<T> {
    if (this.closed) throw new Error("the vector index is closed");
    await this.ready;
    return this.call<T>(this.worker, req, transfer);
  }

  get maxId() {
    return this._maxId;
  }

  size() {
    return this._size;
  }

  async add(ids: number[], vectors: Float32Array[], whole = false) {
    if (ids.length === 0) return;
    const flat = new Float32Array(ids.length * this.dims);
    vectors.forEach((v, i) => flat.set(v, i * this.dims));
    const keys = Float64Array.from(ids);
    await this.ask({ op: "add", ids: keys, flat, whole }, [keys.buffer, flat.buffer]);
    for (const id of ids) if (id > this._maxId) this._maxId = id;
  }

  async search(query: Float32Array, k: number): Promise<VectorMatch[]> {
    const { ids, similarities } = await this.ask<{ ids: Float64Array; similarities: Float32Array }>({ op: "search", query, k });
    const out: VectorMatch[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = { id: ids[i]!, similarity: similarities[i]! };
    return out;
  }

  async save() {
    const tmp = `${this.path}.tmp-${process.pid}`;
    const snap = await this.ask<Snapshot>({ op: "snapshot", tmp });
    await publishSnapshot(this.path, tmp, snap, this.model, this.dims);
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.ready.catch(() => {});
    // what was asked before closing is answered first: the thread runs its changes in order
    await Promise.allSettled([...this.waiting.keys()].map((id) => new Promise<void>((r) => {
      const w = this.waiting.get(id)!;
      this.waiting.set(id, { resolve: (v) => (w.resolve(v), r()), reject: (e) => (w.reject(e), r()) });
    })));
    this.worker.terminate();
  }
}
