import type { Scored } from "../storage/repos";
import { int16Query, int8Dots } from "./int8-dot";

/** The stored vectors of one run of chunk ids: int8 codes one after another, a scale each. */
interface Slab {
  ids: Float64Array;
  codes: Int8Array;
  scales: Float32Array;
}

/**
 * The stored vectors (4-byte float scale, then int8 codes) of the chunks in these ranges
 * (ascending, disjoint [first, last] pairs, flat) that have one, in id order.
 */
export type ReadVectors = (ranges: Float64Array) => Promise<{ id: number; embedding: Uint8Array }[]>;

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
 * store's vectors are read from the database once, kept in memory by run, and each search
 * is one pass of int8-dot.c over them. The least recently used runs go past `capacity` bytes.
 *
 * A run held is right for as long as its ids are: ids are never reused, a file's chunks are
 * written once, and a run is held only when every id in it had its vector. Only re-embedding
 * (`ragd reindex`) writes other vectors under the same ids: clear() then, and every other
 * server sharing the database restarts after a reindex (its vector index needs that too).
 */
export class ExactVectors {
  private readonly slabs = new Map<string, Slab>();
  /** Runs being read, by key: a search missing one a search before it is reading waits for that read. */
  private readonly loading = new Map<string, Promise<Slab>>();
  private bytes = 0;
  /** Raised by clear(): a read begun before is not held. */
  private generation = 0;
  private readonly query: Int16Array;
  private scores = new Float32Array(1024);

  constructor(
    private readonly read: ReadVectors,
    private readonly dims: number,
    private readonly capacity: number,
  ) {
    this.query = new Int16Array(dims);
  }

  /** What each vector held takes: its codes, scale and id. */
  static bytesPerVector(dims: number) {
    return dims + 4 + 8;
  }

  /** The k nearest of the chunks in `ranges` (ascending, disjoint [first, last] pairs, flat) that have a vector. */
  async search(ranges: Float64Array, vector: Float32Array, k: number): Promise<Scored[]> {
    if (vector.length !== this.dims) throw new Error(`a query of ${vector.length} dimensions against vectors of ${this.dims}`);
    if (k <= 0) return [];
    const slabs = await this.slabsOf(ranges);
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

  /** Forgets every vector held (`ragd reindex` writes new ones under the same ids). */
  clear() {
    this.slabs.clear();
    this.loading.clear();
    this.bytes = 0;
    this.generation++;
  }

  /** Bytes of vectors held. */
  get heldBytes() {
    return this.bytes;
  }

  /** Each run's vectors: those held, those another search is reading, and the rest read at once. */
  private async slabsOf(ranges: Float64Array): Promise<Slab[]> {
    const out: (Slab | Promise<Slab> | undefined)[] = [];
    const missing: number[] = [];
    for (let i = 0; i < ranges.length; i += 2) {
      const key = `${ranges[i]}:${ranges[i + 1]}`;
      const held = this.slabs.get(key);
      if (held) {
        // most recently used last
        this.slabs.delete(key);
        this.slabs.set(key, held);
      }
      const slab = held ?? this.loading.get(key);
      if (!slab) missing.push(ranges[i]!, ranges[i + 1]!);
      out.push(slab);
    }
    if (missing.length) {
      const read = this.readRuns(Float64Array.from(missing));
      const keys: string[] = [];
      for (let i = 0, m = 0; i < out.length; i++) {
        if (out[i]) continue;
        const key = `${missing[m]}:${missing[m + 1]}`;
        m += 2;
        keys.push(key);
        this.loading.set(key, (out[i] = read.then((runs) => runs.get(key)!)));
      }
      const done = () => keys.forEach((key) => this.loading.delete(key));
      read.then(done, done);
    }
    return Promise.all(out as (Slab | Promise<Slab>)[]);
  }

  /** Reads these runs' vectors in one go; holds each run all of whose ids had one. */
  private async readRuns(ranges: Float64Array): Promise<Map<string, Slab>> {
    const generation = this.generation;
    const rows = await this.read(ranges);
    const dims = this.dims;
    const runs = new Map<string, Slab>();
    let r = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      const first = ranges[i]!;
      const last = ranges[i + 1]!;
      // rows come in id order; any outside the runs asked for are not this search's
      while (r < rows.length && rows[r]!.id < first) r++;
      const from = r;
      while (r < rows.length && rows[r]!.id <= last) r++;
      const mine = rows.slice(from, r).filter((row) => row.embedding.byteLength === 4 + dims);
      const slab: Slab = { ids: new Float64Array(mine.length), codes: new Int8Array(mine.length * dims), scales: new Float32Array(mine.length) };
      mine.forEach((row, j) => {
        const e = row.embedding;
        slab.ids[j] = row.id;
        slab.scales[j] = new DataView(e.buffer, e.byteOffset, 4).getFloat32(0, true);
        slab.codes.set(new Int8Array(e.buffer, e.byteOffset + 4, dims), j * dims);
      });
      const key = `${first}:${last}`;
      runs.set(key, slab);
      // A run with chunks not embedded yet is read again next time, when they may be.
      if (mine.length === last - first + 1 && generation === this.generation && !this.slabs.has(key)) this.hold(key, slab);
    }
    return runs;
  }

  private hold(key: string, slab: Slab) {
    this.slabs.set(key, slab);
    this.bytes += slabBytes(slab);
    for (const [k, s] of this.slabs) {
      if (this.bytes <= this.capacity) break;
      this.slabs.delete(k);
      this.bytes -= slabBytes(s);
    }
  }
}

const slabBytes = (s: Slab) => s.ids.byteLength + s.codes.byteLength + s.scales.byteLength;

const byScore = (a: Scored, b: Scored) => b.score - a.score || a.id - b.id;
