import type { Scored } from "../storage/repos";
import { int16Query, int8Dots } from "./int8-dot";

/** The stored vectors of one run of chunk ids: int8 codes one after another, a scale each. */
interface Slab {
  ids: Float64Array;
  codes: Int8Array;
  scales: Float32Array;
}

/** The stored vectors (4-byte float scale, then int8 codes) of chunks first..last that have one, in id order. */
export type ReadVectors = (first: number, last: number) => Promise<{ id: number; embedding: Uint8Array }[]>;

/** How many chunk ids flat [first, last] pairs (idRangesOf's form) hold. */
export function idsIn(ranges: Float64Array): number {
  let n = 0;
  for (let i = 0; i < ranges.length; i += 2) n += ranges[i + 1]! - ranges[i]! + 1;
  return n;
}

/**
 * Exact cosine search over the chunks of a narrow store or filter, given as id ranges (a
 * file's cut is one run of ids, or a few). The HNSW graph spans every store, so a store
 * holding 5% of the chunks would have it asked for 20x the results and more; here the
 * store's vectors are read from the database once, kept in memory by run (a run's vectors
 * never change: ids are not reused, and a file's chunks are written once), and each search
 * is one pass of int8-dot.c over them. The least recently used runs go past `capacity` bytes.
 */
export class ExactVectors {
  private readonly slabs = new Map<string, Slab>();
  private bytes = 0;
  private readonly query: Int16Array;
  private scores = new Float32Array(1024);

  constructor(
    private readonly read: ReadVectors,
    private readonly dims: number,
    private readonly capacity: number,
  ) {
    this.query = new Int16Array(dims);
  }

  /** The k nearest of the chunks in `ranges` (ascending, disjoint [first, last] pairs, flat) that have a vector. */
  async search(ranges: Float64Array, vector: Float32Array, k: number): Promise<Scored[]> {
    if (vector.length !== this.dims) throw new Error(`a query of ${vector.length} dimensions against vectors of ${this.dims}`);
    const slabs: Slab[] = [];
    for (let i = 0; i < ranges.length; i += 2) {
      const first = ranges[i]!;
      const last = ranges[i + 1]!;
      slabs.push(this.held(first, last) ?? (await this.load(first, last)));
    }
    // (after every await: the query codes and scores are shared by all searches)
    const qscale = int16Query(vector, this.query);
    const dots = int8Dots();
    const top: Scored[] = [];
    let floor = -Infinity;
    for (const s of slabs) {
      const n = s.ids.length;
      if (n > this.scores.length) this.scores = new Float32Array(Math.max(n, this.scores.length * 2));
      dots(s.codes, s.scales, n, this.dims, this.query, qscale, this.scores);
      for (let i = 0; i < n; i++) {
        const score = this.scores[i]!;
        if (top.length >= k && score <= floor) continue;
        top.push({ id: s.ids[i]!, score });
        if (top.length >= k * 2) {
          top.sort(byScore);
          top.length = k;
          floor = top[k - 1]!.score;
        }
      }
    }
    return top.sort(byScore).slice(0, k);
  }

  /** What each vector held takes: its codes, scale and id. */
  static bytesPerVector(dims: number) {
    return dims + 4 + 8;
  }

  /** Forgets every vector held (`ragd reindex` writes new ones under the same ids). */
  clear() {
    this.slabs.clear();
    this.bytes = 0;
  }

  /** Bytes of vectors held, for tests and /metrics. */
  get heldBytes() {
    return this.bytes;
  }

  /** A run's vectors if held, now the most recently used. */
  private held(first: number, last: number): Slab | undefined {
    const key = `${first}:${last}`;
    const held = this.slabs.get(key);
    if (held) {
      this.slabs.delete(key);
      this.slabs.set(key, held);
    }
    return held;
  }

  private async load(first: number, last: number): Promise<Slab> {
    const key = `${first}:${last}`;
    const rows = (await this.read(first, last)).filter((r) => r.id >= first && r.id <= last && r.embedding.byteLength === 4 + this.dims);
    const slab: Slab = { ids: new Float64Array(rows.length), codes: new Int8Array(rows.length * this.dims), scales: new Float32Array(rows.length) };
    rows.forEach((r, i) => {
      const e = r.embedding;
      slab.ids[i] = r.id;
      slab.scales[i] = new DataView(e.buffer, e.byteOffset, 4).getFloat32(0, true);
      slab.codes.set(new Int8Array(e.buffer, e.byteOffset + 4, this.dims), i * this.dims);
    });
    // A run with chunks not embedded yet is read again next time, when they may be.
    if (rows.length === last - first + 1 && !this.slabs.has(key)) {
      this.slabs.set(key, slab);
      this.bytes += slabBytes(slab);
      for (const [k, s] of this.slabs) {
        if (this.bytes <= this.capacity) break;
        this.slabs.delete(k);
        this.bytes -= slabBytes(s);
      }
    }
    return slab;
  }
}

const slabBytes = (s: Slab) => s.ids.byteLength + s.codes.byteLength + s.scales.byteLength;

const byScore = (a: Scored, b: Scored) => b.score - a.score || a.id - b.id;
