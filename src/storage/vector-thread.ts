import { sourceUsearchPath } from "../native/assets";
import { IN_BINARY } from "../native/extract";
import { log } from "../util/log";
import { waitAtMost } from "../util/time";
import { publishSnapshot, type Snapshot, type VectorIndex, type VectorMatch } from "./vectors";

// A thread that died is replaced after this long, doubling up to the maximum while it fails.
const RESTART_FIRST_MS = 500;
const RESTART_MAX_MS = 30_000;
// A call waits this long for a thread being replaced, then fails.
const READY_WAIT_MS = 2_000;

const WORKER_URL = IN_BINARY ? "./storage/vector-worker.ts" : new URL("./vector-worker.ts", import.meta.url).href;

type VectorCall =
  | { op: "open"; path: string; model: string; dims: number; addon: string }
  | { op: "add"; ids: Float64Array; codes: Int8Array; whole: boolean }
  | { op: "search"; query: Float32Array; k: number }
  | { op: "snapshot"; tmp: string };
export type VectorRequest = VectorCall & { id: number };
export type VectorReply = { id: number; size: number } & ({ ok: true; value: unknown } | { ok: false; error: string });

/** The index thread stopped, or is being replaced: a search may be retried in a moment. */
export class VectorIndexUnavailable extends Error {}

interface Opened {
  loaded: boolean;
  reason?: string;
  maxId: number;
}

/**
 * The vector index on its own thread (vector-worker.ts). The id high-water mark is kept here
 * as vectors are handed over, so catching up never waits on the thread to know where it is.
 * Should the thread die, a new one loads the last saved index and the high-water mark falls
 * back with it (`generation` changes): the next catch-up adds the rest again from SQLite. A
 * thread that cannot be restarted is retried with a growing delay; meanwhile calls fail after
 * a short wait instead of hanging.
 */
export class VectorIndexThread implements VectorIndex {
  private worker!: Worker;
  private ready!: Promise<Opened>;
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private _maxId = 0;
  private _size = 0;
  private closed = false;
  private _generation = 0;

  private constructor(
    private readonly path: string,
    private readonly model: string,
    readonly dims: number,
    private readonly addon: string,
  ) {}

  /** An empty index, or the saved one when its manifest matches the model and its bytes check out. */
  static async open(path: string, model: string, dims: number, addon = sourceUsearchPath()): Promise<{ index: VectorIndexThread; loaded: boolean; reason?: string }> {
    const t = new VectorIndexThread(path, model, dims, addon);
    t.ready = t.spawn();
    try {
      const { loaded, reason } = await t.ready;
      return { index: t, loaded, reason };
    } catch (e) {
      t.closed = true;
      t.worker.terminate();
      throw e;
    }
  }

  /** Changes each time a new thread takes over (the index is then its last saved state). */
  get generation() {
    return this._generation;
  }

  private async restart(attempt: number): Promise<Opened> {
    await Bun.sleep(Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** attempt));
    if (this.closed) throw new Error("the vector index is closed");
    try {
      return await this.spawn();
    } catch (e) {
      const failed = this.worker;
      // its close event must not start another restart beside this one
      this.worker = null as unknown as Worker;
      failed?.terminate();
      if (this.closed) throw e;
      log.error("the vector index thread could not be restarted; retrying", { error: String((e as Error)?.message ?? e), attempt: attempt + 1 });
      return this.restart(attempt + 1);
    }
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
      const lost = new VectorIndexUnavailable("the vector index thread stopped");
      for (const w of this.waiting.values()) w.reject(lost);
      this.waiting.clear();
      if (this.closed) return;
      log.error("the vector index thread stopped; reloading the saved index, the rest is added again from SQLite");
      this.ready = this.restart(0);
      this.ready.catch(() => {});
    });
    return this.call<Opened>(worker, { op: "open", path: this.path, model: this.model, dims: this.dims, addon: this.addon }).then((o) => {
      // Together: a new generation always means the high-water mark has fallen back. Counted
      // at spawn, a catch-up between the two read on from the lost thread's mark and skipped
      // what it had not saved.
      this._maxId = o.maxId;
      this._generation++;
      return o;
    });
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.ready,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new VectorIndexUnavailable("the vector index thread is restarting")), READY_WAIT_MS))),
    ]).finally(() => clearTimeout(timer));
    return this.call<T>(this.worker, req, transfer);
  }

  get maxId() {
    return this._maxId;
  }

  size() {
    return this._size;
  }

  async add(ids: number[], stored: Uint8Array[], whole = false) {
    if (ids.length === 0) return;
    const dims = this.dims;
    const codes = new Int8Array(ids.length * dims);
    stored.forEach((v, i) => {
      if (v.length !== 4 + dims) throw new Error(`a stored vector of ${v.length} bytes for an index of ${dims} dimensions`);
      codes.set(new Int8Array(v.buffer, v.byteOffset + 4, dims), i * dims);
    });
    const keys = Float64Array.from(ids);
    const generation = this._generation;
    await this.ask({ op: "add", ids: keys, codes, whole }, [keys.buffer, codes.buffer]);
    // A thread that took over meanwhile started from its saved state: the high-water mark
    // stays where that put it, so catch-up adds what lies between again.
    if (generation !== this._generation) throw new VectorIndexUnavailable("the vector index thread restarted during an insert; catch-up starts again");
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
    // a thread being replaced is not waited for (its restart gives up once closed)
    await waitAtMost(this.ready.catch(() => {}), READY_WAIT_MS);
    // what was asked before closing is answered first: the thread runs its changes in order
    await Promise.allSettled([...this.waiting.keys()].map((id) => new Promise<void>((r) => {
      const w = this.waiting.get(id)!;
      this.waiting.set(id, { resolve: (v) => (w.resolve(v), r()), reject: (e) => (w.reject(e), r()) });
    })));
    this.worker?.terminate();
  }
}
