// The vector index thread: owns the native HNSW graph, so inserts (~0.1-0.5 ms each) and the
// native save (a second or more at a million vectors) never hold the event loop. Searches are
// answered between insert slices; inserts, snapshots and closing run one at a time, in order.
import { installBindings } from "../native/assets";
import { UsearchIndex } from "./vectors";
import type { VectorReply, VectorRequest } from "./vector-thread";

declare const self: Worker;

// A search arriving during a long insert waits for at most one slice of about this long.
const ADD_SLICE_MS = 5;

let index: UsearchIndex | null = null;
let sliceSize = 8;
let mutations: Promise<unknown> = Promise.resolve();

const turn = () => new Promise((r) => setTimeout(r, 0));

async function add(ids: Float64Array, codes: Int8Array, whole: boolean) {
  const idx = index!;
  if (whole) return idx.add(ids, codes);
  const dims = idx.dims;
  for (let at = 0; at < ids.length; ) {
    const started = performance.now();
    const end = Math.min(ids.length, at + sliceSize);
    // One thread: spreading a slice of a few inserts over both cores cost 10-20% more CPU in
    // a probe (20k vectors in slices of 16: 6.5-6.8 against 5.2-6.3 CPU-s) and takes the core
    // the model's workers are using.
    idx.add(ids.subarray(at, end), codes.subarray(at * dims, end * dims), 1);
    at = end;
    const ms = performance.now() - started;
    if (ms < ADD_SLICE_MS / 2) sliceSize = Math.min(1024, sliceSize * 2);
    else if (ms > ADD_SLICE_MS * 2) sliceSize = Math.max(1, Math.floor(sliceSize / 2));
    if (at < ids.length) await turn();
  }
}

async function handle(m: VectorRequest): Promise<unknown> {
  switch (m.op) {
    case "open": {
      installBindings({ usearch: m.addon, sharp: null, onnxruntime: "", kernels: null });
      const { index: opened, loaded, reason } = UsearchIndex.open(m.path, m.model, m.dims);
      index = opened;
      return { loaded, reason, maxId: opened.maxId };
    }
    case "search":
      return index!.search(m.query, m.k);
    case "add":
      return add(m.ids, m.codes, m.whole);
    case "snapshot":
      return index!.snapshot(m.tmp);
  }
}

self.onmessage = (e: MessageEvent<VectorRequest>) => {
  const m = e.data;
  const run = async () => {
    try {
      const value = await handle(m);
      const transfer = m.op === "search" ? [(value as { ids: Float64Array }).ids.buffer, (value as { similarities: Float32Array }).similarities.buffer] : [];
      self.postMessage({ id: m.id, ok: true, value, size: index?.size() ?? 0 } satisfies VectorReply, transfer);
    } catch (err) {
      self.postMessage({ id: m.id, ok: false, error: String((err as Error)?.message ?? err), size: index?.size() ?? 0 } satisfies VectorReply);
    }
  };
  // A search reads the graph as it is; everything else waits for the change before it.
  if (m.op === "search") void run();
  else mutations = mutations.then(run);
};
