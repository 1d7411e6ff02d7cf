import { dlopen, FFIType } from "bun:ffi";
import { KernelSlot, openKernel } from "../native/kernels";
import { K1, type Segment } from "./segment";

// ragd_bm25_abi() of the bm25-kernel.c these symbols describe.
const ABI = 2;

const SYMBOLS = {
  ragd_bm25_abi: { args: [], returns: FFIType.i32 },
  ragd_bm25_window_size: { args: [], returns: FFIType.i32 },
  ragd_bm25_segment: {
    // nterms, docs, tfs, starts, lens, weights, cursors, dls, size, c1, c2, acc, touched,
    // deleted, allow, bar, k, out_ord, out_score
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u32, FFIType.f64, FFIType.f64, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.f64, FFIType.i32, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
} as const;

type Symbols = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

/**
 * One segment's BM25 top k computed by src/search/bm25-kernel.c (see there for why), with
 * the scratch it needs. Results land in `ordinals` / `scores`, as many as run() returns.
 */
export class Bm25Kernel {
  private readonly acc: Float64Array;
  private readonly touched: Uint32Array;
  private starts = new Uint32Array(64);
  private lens = new Uint32Array(64);
  private weights = new Float64Array(64);
  private cursors = new Uint32Array(64);
  ordinals = new Uint32Array(256);
  scores = new Float32Array(256);

  constructor(private readonly fn: Symbols) {
    const window = fn.ragd_bm25_window_size();
    this.acc = new Float64Array(window);
    this.touched = new Uint32Array(window);
  }

  /**
   * The segment's k best live chunks for the terms (each weighted by query weight x IDF)
   * among those scoring at least `bar`, with BM25's length norm c1 + c2 * length; only
   * ordinals set in `allow` when given.
   */
  run(seg: Segment, terms: { term: string; wIdf: number }[], c1: number, c2: number, bar: number, k: number, allow: Uint32Array | null = null): number {
    if (terms.length > this.starts.length) {
      const n = terms.length;
      this.starts = new Uint32Array(n);
      this.lens = new Uint32Array(n);
      this.weights = new Float64Array(n);
      this.cursors = new Uint32Array(n);
    }
    if (k > this.ordinals.length) {
      this.ordinals = new Uint32Array(k);
      this.scores = new Float32Array(k);
    }
    const table = seg.terms;
    let m = 0;
    for (const t of terms) {
      const span = table.span(t.term);
      // (a term adding nothing would list its chunks twice in the kernel's window)
      if (span < 0 || !(t.wIdf > 0)) continue;
      this.starts[m] = table.meta[span]!;
      this.lens[m] = table.meta[span + 1]!;
      this.weights[m] = t.wIdf * (K1 + 1);
      m++;
    }
    if (m === 0) return 0;
    return this.fn.ragd_bm25_segment(m, table.docs, table.tfs, this.starts, this.lens, this.weights, this.cursors, seg.dls, seg.size, c1, c2, this.acc, this.touched, seg.deletedCount ? seg.deleted.words : null, allow, bar, k, this.ordinals, this.scores);
  }
}

/** Opens the kernel's library; null (and a warning) when it cannot be loaded. */
export function openBm25Kernel(path: string): Bm25Kernel | null {
  const symbols = openKernel(path, SYMBOLS, "ragd_bm25_abi", ABI, { kernel: "BM25 kernel", source: "bm25-kernel.c", instead: "keyword search uses its JavaScript loop" });
  return symbols ? new Bm25Kernel(symbols) : null;
}

const slot = new KernelSlot(openBm25Kernel);

/** The kernel keyword search uses, or null for its JavaScript loop. */
export const bm25Kernel = () => slot.get();

/**
 * Sets the kernel keyword search uses (null: its JavaScript loop; undefined: loaded on first
 * use, as from source); returns the one before, to restore.
 */
export const useBm25Kernel = (kernel: Bm25Kernel | null | undefined) => slot.use(kernel);
