/**
 * One immutable slice of the keyword index: the chunks it holds (ascending chunk ids), their
 * lengths in tokens and, per term, postings in ascending ordinal order with per-block
 * maxima for skipping. Deleted chunks are a bitmap over ordinals until a merge drops them.
 */
export const BLOCK = 128;
// FTS5's bm25() constants, so rankings match what ragd had before its own index.
export const K1 = 1.2;
export const B = 0.75;

export interface Postings {
  docs: Uint32Array;
  tfs: Uint16Array;
  /**
   * Per block of BLOCK postings: the highest term frequency and the shortest chunk, upper
   * bounds for a pruned search. The term-at-a-time search measured fastest does not use them.
   */
  blockMaxTf: Uint16Array;
  blockMinDl: Uint32Array;
  maxTf: number;
  minDl: number;
}

// Per term in a TermTable's `meta`: first posting, postings, first block, blocks, max tf, min dl.
export const META = 6;

/**
 * A segment's postings, every term's in one set of arrays, found by term through one map.
 * A Postings object is made only when a term is looked up: at a million chunks the segments
 * hold about 230,000 term lists, and an object with four array views for each cost about
 * 80 MB of resident memory besides the postings themselves.
 */
export class TermTable {
  constructor(
    private readonly slots: Map<string, number>,
    readonly meta: Uint32Array,
    readonly docs: Uint32Array,
    readonly tfs: Uint16Array,
    readonly blockMaxTf: Uint16Array,
    readonly blockMinDl: Uint32Array,
  ) {}

  get size() {
    return this.slots.size;
  }
  has(term: string) {
    return this.slots.has(term);
  }
  /** Postings of the term (deleted chunks included). */
  count(term: string) {
    const s = this.slots.get(term);
    return s === undefined ? 0 : this.meta[s * META + 1]!;
  }
  /** Where the term's entry starts in `meta` (first posting, then postings), or -1. */
  span(term: string): number {
    const s = this.slots.get(term);
    return s === undefined ? -1 : s * META;
  }
  get(term: string): Postings | undefined {
    const s = this.slots.get(term);
    return s === undefined ? undefined : this.at(s);
  }
  *entries(): IterableIterator<[string, Postings]> {
    for (const [t, s] of this.slots) yield [t, this.at(s)];
  }
  terms() {
    return this.slots.keys();
  }
  private at(s: number): Postings {
    const m = this.meta;
    const i = s * META;
    const start = m[i]!;
    const end = start + m[i + 1]!;
    const bStart = m[i + 2]!;
    const bEnd = bStart + m[i + 3]!;
    return {
      docs: this.docs.subarray(start, end),
      tfs: this.tfs.subarray(start, end),
      blockMaxTf: this.blockMaxTf.subarray(bStart, bEnd),
      blockMinDl: this.blockMinDl.subarray(bStart, bEnd),
      maxTf: m[i + 4]!,
      minDl: m[i + 5]!,
    };
  }
}

/** Fills a TermTable term by term, each term's postings computing its block maxima. */
export class TermTableBuilder {
  private readonly slots = new Map<string, number>();
  private readonly meta: Uint32Array;
  private readonly docs: Uint32Array;
  private readonly tfs: Uint16Array;
  private readonly blockMaxTf: Uint16Array;
  private readonly blockMinDl: Uint32Array;
  private at = 0;
  private blockAt = 0;

  /** `terms` and `postings` at most: what deleted chunks leave out stays unused. */
  constructor(
    terms: number,
    postings: number,
    private readonly dls: Uint32Array,
  ) {
    this.meta = new Uint32Array(terms * META);
    this.docs = new Uint32Array(postings);
    this.tfs = new Uint16Array(postings);
    const blocks = Math.ceil(postings / BLOCK) + terms;
    this.blockMaxTf = new Uint16Array(blocks);
    this.blockMinDl = new Uint32Array(blocks);
  }

  /** Where the next term's postings go: write `n` of them there, then call add(). */
  reserve(n: number): { docs: Uint32Array; tfs: Uint16Array } {
    return { docs: this.docs.subarray(this.at, this.at + n), tfs: this.tfs.subarray(this.at, this.at + n) };
  }

  /** The term whose `n` postings were written into reserve()'s arrays. */
  add(term: string, n: number) {
    if (n === 0) return;
    const slot = this.slots.size;
    const blocks = Math.ceil(n / BLOCK);
    let maxTf = 0;
    let minDl = 0xffffffff;
    for (let b = 0; b < blocks; b++) {
      let bt = 0;
      let bd = 0xffffffff;
      const end = Math.min(n, (b + 1) * BLOCK);
      for (let i = this.at + b * BLOCK; i < this.at + end; i++) {
        const tf = this.tfs[i]!;
        if (tf > bt) bt = tf;
        const dl = this.dls[this.docs[i]!]!;
        if (dl < bd) bd = dl;
      }
      this.blockMaxTf[this.blockAt + b] = bt;
      this.blockMinDl[this.blockAt + b] = bd;
      if (bt > maxTf) maxTf = bt;
      if (bd < minDl) minDl = bd;
    }
    this.meta.set([this.at, n, this.blockAt, blocks, maxTf, minDl], slot * META);
    this.slots.set(term, slot);
    this.at += n;
    this.blockAt += blocks;
  }

  finish(): TermTable {
    const n = this.slots.size;
    // Views of what was filled; copies when deleted chunks left much of the room unused, so
    // a merge that purged them does not keep their postings' memory.
    const fit = <T extends Uint32Array | Uint16Array>(a: T, used: number): T => (used < a.length * 0.875 ? (a.slice(0, used) as T) : (a.subarray(0, used) as T));
    return new TermTable(this.slots, fit(this.meta, n * META), fit(this.docs, this.at), fit(this.tfs, this.at), fit(this.blockMaxTf, this.blockAt), fit(this.blockMinDl, this.blockAt));
  }
}

/** Where `value` is in an ascending list, or -1. */
export function indexIn(sorted: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v === value) return mid;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** The first place at or after `from` in an ascending list whose value is not below `target`. */
export function seek(sorted: ArrayLike<number>, from: number, target: number): number {
  const n = sorted.length;
  if (from >= n || sorted[from]! >= target) return from;
  // sorted[lo] < target throughout; steps double until one lands at or past the target
  let lo = from;
  let step = 1;
  let hi = lo + step;
  while (hi < n && sorted[hi]! < target) {
    lo = hi;
    step *= 2;
    hi = lo + step;
  }
  if (hi > n) hi = n;
  lo++;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** How often each term occurs in the chunk at this ordinal, from postings that ascend by ordinal. */
function frequencies(postings: { get(term: string): { docs: ArrayLike<number>; tfs: ArrayLike<number> } | undefined }, ordinal: number, terms: string[]) {
  return terms.map((t) => {
    const p = postings.get(t);
    const at = p ? indexIn(p.docs, ordinal) : -1;
    return at < 0 ? 0 : p!.tfs[at]!;
  });
}

export class Bitset {
  readonly words: Uint32Array;
  constructor(size: number, words?: Uint32Array) {
    this.words = words ?? new Uint32Array((size + 31) >>> 5);
  }
  has(i: number) {
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }
  /** True when the bit was not set before. */
  set(i: number) {
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    if (this.words[w]! & bit) return false;
    this.words[w]! |= bit;
    return true;
  }
}

export class Segment {
  readonly deleted: Bitset;
  deletedCount = 0;
  /** Per term, how many of its postings are deleted chunks: document frequencies stay exact. */
  deletedDf = new Map<string, number>();
  /** Sum of the live chunks' lengths. */
  liveLength: number;
  /** Set once the segment is on disk (its file name and checksum). */
  file: { name: string; hash: string; bytes: number } | null = null;

  constructor(
    readonly ids: Float64Array,
    readonly dls: Uint32Array,
    readonly terms: TermTable,
  ) {
    this.deleted = new Bitset(ids.length);
    let total = 0;
    for (let i = 0; i < dls.length; i++) total += dls[i]!;
    this.liveLength = total;
  }

  get size() {
    return this.ids.length;
  }
  get live() {
    return this.ids.length - this.deletedCount;
  }
  get firstId() {
    return this.ids.length ? this.ids[0]! : Infinity;
  }
  get lastId() {
    return this.ids.length ? this.ids[this.ids.length - 1]! : -Infinity;
  }

  ordinalOf(id: number): number {
    return indexIn(this.ids, id);
  }

  /** Marks a chunk deleted (its terms keep frequencies exact); false when it is not here or already deleted. */
  delete(id: number, terms: Iterable<string>): boolean {
    const o = this.ordinalOf(id);
    if (o < 0 || !this.deleted.set(o)) return false;
    this.deletedCount++;
    this.liveLength -= this.dls[o]!;
    for (const t of new Set(terms)) if (this.terms.has(t)) this.deletedDf.set(t, (this.deletedDf.get(t) ?? 0) + 1);
    return true;
  }

  /**
   * Each live chunk's length and how often each term occurs in it, for chunks of `ids`
   * (ascending) that are here: one forward pass over each term's postings, skipping ahead by
   * galloping, instead of a search of the whole list per chunk.
   */
  countsOf(ids: number[], terms: string[], out: Map<number, { dl: number; tfs: number[] }>) {
    const found: { o: number; c: { dl: number; tfs: number[] } }[] = [];
    let from = 0;
    for (const id of ids) {
      from = seek(this.ids, from, id);
      if (from >= this.ids.length) break;
      if (this.ids[from] !== id || this.isDeleted(from)) continue;
      const c = { dl: this.dls[from]!, tfs: new Array<number>(terms.length).fill(0) };
      out.set(id, c);
      found.push({ o: from, c });
    }
    terms.forEach((t, ti) => {
      const p = this.terms.get(t);
      if (!p) return;
      let at = 0;
      for (const f of found) {
        at = seek(p.docs, at, f.o);
        if (at >= p.docs.length) break;
        if (p.docs[at] === f.o) f.c.tfs[ti] = p.tfs[at]!;
      }
    });
  }

  /** Live chunks holding the term. */
  frequency(term: string) {
    const n = this.terms.count(term);
    return n ? n - (this.deletedDf.get(term) ?? 0) : 0;
  }

  isDeleted(ordinal: number) {
    return this.deletedCount > 0 && this.deleted.has(ordinal);
  }
}

/** The chunks being added, before they are sealed into a segment. */
export class SegmentBuilder {
  private ids: number[] = [];
  private dls: number[] = [];
  private terms = new Map<string, { docs: number[]; tfs: number[] }>();
  private lastId = -Infinity;

  get size() {
    return this.ids.length;
  }
  get firstAdded() {
    return this.ids.length ? this.ids[0]! : Infinity;
  }
  get lastAdded() {
    return this.lastId;
  }

  /** A chunk's length in tokens, if it is here. */
  lengthOf(id: number): number | undefined {
    const o = indexIn(this.ids, id);
    return o < 0 ? undefined : this.dls[o];
  }

  frequency(term: string) {
    return this.terms.get(term)?.docs.length ?? 0;
  }

  /** A chunk's length and how often each term occurs in it, if it is here. */
  counts(id: number, terms: string[]): { dl: number; tfs: number[] } | undefined {
    const o = indexIn(this.ids, id);
    return o < 0 ? undefined : { dl: this.dls[o]!, tfs: frequencies(this.terms, o, terms) };
  }


  /** Scores every chunk here that holds a query term: the builder is small, no skipping needed. */
  score(
    terms: { term: string; wIdf: number }[],
    norm: (dl: number) => number,
    deleted: { has(id: number): boolean },
    top: { push(id: number, score: number): void },
    accept?: (id: number) => boolean,
  ) {
    if (this.ids.length === 0) return;
    const acc = new Map<number, number>();
    for (const t of terms) {
      const p = this.terms.get(t.term);
      if (!p) continue;
      for (let j = 0; j < p.docs.length; j++) {
        const o = p.docs[j]!;
        const tf = p.tfs[j]!;
        acc.set(o, (acc.get(o) ?? 0) + (t.wIdf * tf * (K1 + 1)) / (tf + norm(this.dls[o]!)));
      }
    }
    for (const [o, s] of acc) {
      const id = this.ids[o]!;
      if (deleted.has(id) || (accept && !accept(id))) continue;
      top.push(id, Math.fround(s));
    }
  }

  /** Adds a chunk's terms; ids must ascend. */
  add(id: number, terms: string[]) {
    if (id <= this.lastId) throw new Error(`chunk ids must ascend (${id} after ${this.lastId})`);
    this.lastId = id;
    const ordinal = this.ids.length;
    this.ids.push(id);
    this.dls.push(terms.length);
    const counts = new Map<string, number>();
    for (const t of terms) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, n] of counts) {
      let p = this.terms.get(t);
      if (!p) this.terms.set(t, (p = { docs: [], tfs: [] }));
      p.docs.push(ordinal);
      p.tfs.push(Math.min(n, 0xffff));
    }
  }

  seal(): Segment {
    const dls = Uint32Array.from(this.dls);
    let postings = 0;
    for (const p of this.terms.values()) postings += p.docs.length;
    const table = new TermTableBuilder(this.terms.size, postings, dls);
    for (const [t, p] of this.terms) {
      const into = table.reserve(p.docs.length);
      into.docs.set(p.docs);
      into.tfs.set(p.tfs);
      table.add(t, p.docs.length);
    }
    return new Segment(Float64Array.from(this.ids), dls, table.finish());
  }
}

/**
 * One segment holding the live chunks of several adjacent ones (in id order), deleted chunks
 * dropped. Yields to the event loop every few milliseconds: a merge of large segments takes
 * longer than a request should wait.
 */
export async function mergeSegments(parts: Segment[], yieldEvery = 8): Promise<Segment> {
  let clock = performance.now();
  const pause = async () => {
    if (performance.now() - clock < yieldEvery) return;
    await new Promise((r) => setTimeout(r, 0));
    clock = performance.now();
  };
  const remaps: Int32Array[] = [];
  let live = 0;
  for (const s of parts) live += s.live;
  const ids = new Float64Array(live);
  const dls = new Uint32Array(live);
  let next = 0;
  for (const s of parts) {
    const remap = new Int32Array(s.size);
    for (let o = 0; o < s.size; o++) {
      if (s.isDeleted(o)) remap[o] = -1;
      else {
        remap[o] = next;
        ids[next] = s.ids[o]!;
        dls[next] = s.dls[o]!;
        next++;
      }
    }
    remaps.push(remap);
  }
  // One buffer for all postings: a typed array per term would cost an allocation each.
  const sizes = new Map<string, number>();
  for (const s of parts) for (const t of s.terms.terms()) sizes.set(t, (sizes.get(t) ?? 0) + s.terms.count(t));
  let total = 0;
  for (const n of sizes.values()) total += n;
  const table = new TermTableBuilder(sizes.size, total, dls);
  for (const [t, n] of sizes) {
    const { docs, tfs } = table.reserve(n);
    let at = 0;
    parts.forEach((s, i) => {
      const p = s.terms.get(t);
      if (!p) return;
      const remap = remaps[i]!;
      if (s.deletedCount === 0) {
        const base = remap.length ? remap[0]! : 0;
        for (let j = 0; j < p.docs.length; j++) docs[at + j] = p.docs[j]! + base;
        tfs.set(p.tfs, at);
        at += p.docs.length;
        return;
      }
      for (let j = 0; j < p.docs.length; j++) {
        const o = remap[p.docs[j]!]!;
        if (o < 0) continue;
        docs[at] = o;
        tfs[at] = p.tfs[j]!;
        at++;
      }
    });
    table.add(t, at);
    await pause();
  }
  return new Segment(ids, dls, table.finish());
}
