import { log } from "../util/log";
import type { KeywordQuery } from "./analyzer";
import { bm25Kernel } from "./bm25-kernel";
import { B, Bitset, K1, mergeSegments, seek, Segment, SegmentBuilder, type Postings } from "./segment";

// New chunks gather here until sealed into a segment; the tail is scored exhaustively.
const TAIL_SIZE = 1024;
// Segments are tiered by size (tier t holds up to TAIL_SIZE * MERGE_FACTOR^t chunks); once
// MERGE_FACTOR segments of one tier trail the list, they merge into one of the next tier. Each
// chunk is copied about log4(chunks / TAIL_SIZE) times in all (5 at a million chunks), and at
// most (MERGE_FACTOR - 1) segments stay in each tier (about 15 at a million chunks; with a
// factor of 8, a server's rebuild of 1M had left 35). Every segment costs a search its own
// term lookups and document frequencies: at 1M, 35 segments took BM25 1.6 ms a search and one
// 1.3 ms. A merge costs about 1 µs a chunk (1M chunks in 35 segments merged into one in
// 0.9 s), so copying more often is cheap.
const MERGE_FACTOR = 4;
// A segment whose deleted share passes this is rewritten without them.
const PURGE_SHARE = 0.2;

export interface KeywordHit {
  id: number;
  score: number;
}

/** Keeps the k best (score, id): higher scores first, lower ids first among equal scores. */
class TopK {
  private scores: number[] = [];
  private ids: number[] = [];
  constructor(readonly k: number) {}
  get full() {
    return this.scores.length >= this.k;
  }
  /** The score a chunk must beat to enter. */
  get threshold() {
    return this.full ? this.scores[0]! : 0;
  }
  private worse(i: number, j: number) {
    const a = this.scores[i]!;
    const b = this.scores[j]!;
    return a < b || (a === b && this.ids[i]! > this.ids[j]!);
  }
  private swap(i: number, j: number) {
    [this.scores[i], this.scores[j]] = [this.scores[j]!, this.scores[i]!];
    [this.ids[i], this.ids[j]] = [this.ids[j]!, this.ids[i]!];
  }
  push(id: number, score: number) {
    if (this.full) {
      const s0 = this.scores[0]!;
      if (score < s0 || (score === s0 && id > this.ids[0]!)) return;
      this.scores[0] = score;
      this.ids[0] = id;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.scores.length && this.worse(l, m)) m = l;
        if (r < this.scores.length && this.worse(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
      return;
    }
    this.scores.push(score);
    this.ids.push(id);
    for (let i = this.scores.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.worse(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  sorted(): KeywordHit[] {
    return this.ids.map((id, i) => ({ id, score: this.scores[i]! })).sort((a, b) => b.score - a.score || a.id - b.id);
  }
}

interface QueryTerm {
  term: string;
  /** Query weight times IDF. */
  wIdf: number;
}

/**
 * An inverted index over chunk texts with BM25 ranking (as FTS5's bm25()): compact postings
 * in segments, scored term at a time, by a native kernel where one was built (bm25-kernel.c,
 * which also skips the common terms' postings that cannot matter once a bar is set) and in
 * JavaScript otherwise (see searchSegment for why not MaxScore there). Derived data:
 * SQLite's chunk table and change log are the truth (see keyword-search.ts for how it is
 * kept, saved and rebuilt).
 */
export class KeywordIndex {
  segments: Segment[] = [];
  private tail = new SegmentBuilder();
  private tailDeleted = new Map<number, string[]>();
  private tailDeletedDf = new Map<string, number>();
  private tailLength = 0;
  private merging: Promise<void> | null = null;
  private wantAll = false;
  private deletedWhileMerging: [number, string[]][] | null = null;
  /** Highest chunk id added: chunk ids ascend with commits, so later adds are above it. */
  maxId = 0;
  /** The last change (chunk_changes.seq) applied. */
  seq = 0;

  /** `autoMerge` false leaves sealed segments as they are until merge() is called (tests). */
  constructor(private readonly autoMerge = true) {}

  /** Live chunks. */
  get size() {
    let n = this.tail.size - this.tailDeleted.size;
    for (const s of this.segments) n += s.live;
    return n;
  }

  private get totalLength() {
    let n = this.tailLength;
    for (const s of this.segments) n += s.liveLength;
    return n;
  }

  /** Adds a chunk; ids at or below maxId were seen already (a replay overlapping a rebuild) and are skipped. */
  add(id: number, terms: string[]) {
    if (id <= this.maxId) return false;
    this.maxId = id;
    this.tail.add(id, terms);
    this.tailLength += terms.length;
    if (this.tail.size >= TAIL_SIZE) this.sealTail();
    return true;
  }

  /** Deletes a chunk; its terms (the analysed text it had) keep document frequencies exact. */
  delete(id: number, terms: string[]) {
    this.deletedWhileMerging?.push([id, terms]);
    if (id > this.tail.lastAdded || id < this.tail.firstAdded) {
      for (let i = this.segments.length - 1; i >= 0; i--) {
        const s = this.segments[i]!;
        if (id >= s.firstId && id <= s.lastId) return s.delete(id, terms);
      }
      return false;
    }
    const length = this.tail.lengthOf(id);
    if (length === undefined || this.tailDeleted.has(id)) return false;
    this.tailDeleted.set(id, terms);
    this.tailLength -= length;
    for (const t of new Set(terms)) if (this.tail.frequency(t)) this.tailDeletedDf.set(t, (this.tailDeletedDf.get(t) ?? 0) + 1);
    return true;
  }

  /** Seals the chunks added since the last seal into a segment, and merges in the background. */
  sealTail() {
    if (this.tail.size === 0) return;
    const seg = this.tail.seal();
    for (const [id, terms] of this.tailDeleted) seg.delete(id, terms);
    this.segments.push(seg);
    this.tail = new SegmentBuilder();
    this.tailDeleted.clear();
    this.tailDeletedDf.clear();
    this.tailLength = 0;
    if (this.autoMerge) void this.merge();
  }

  /** Merges every segment into one (after a rebuild, and in bench/): the fastest layout to search. */
  async mergeAll() {
    this.sealTail();
    // A merge running now may have asked for its next step already and found none: it would
    // end without seeing the wish. Another may start while it ends (a seal), so wait them out.
    while (this.merging) await this.merging;
    this.wantAll = true;
    await this.merge();
  }

  /** Runs merges until the segment sizes follow the policy; resolves when they are done. */
  merge(): Promise<void> {
    if (this.merging) return this.merging;
    const run = (async () => {
      // Starts after the caller's turn: a seal never waits for a merge.
      await Promise.resolve();
      for (let plan; (plan = this.nextMerge()); ) await this.mergeRange(plan[0], plan[1]);
    })();
    this.merging = run
      .catch((e) => log.error("keyword index merge failed; its segments stay as they were", { error: String(e) }))
      .finally(() => {
        this.merging = null;
      });
    return this.merging;
  }

  private nextMerge(): [number, number] | null {
    const s = this.segments;
    if (this.wantAll) {
      this.wantAll = false;
      if (s.length > 1) return [0, s.length];
    }
    const tier = (seg: Segment) => Math.max(0, Math.floor(Math.log(Math.max(1, seg.live) / TAIL_SIZE) / Math.log(MERGE_FACTOR) + 1e-9));
    if (s.length >= MERGE_FACTOR) {
      const t = tier(s[s.length - 1]!);
      let from = s.length - 1;
      while (from > 0 && tier(s[from - 1]!) <= t) from--;
      if (s.length - from >= MERGE_FACTOR) return [from, s.length];
    }
    for (let i = 0; i < s.length; i++) if (s[i]!.deletedCount > s[i]!.size * PURGE_SHARE) return [i, i + 1];
    return null;
  }

  private async mergeRange(from: number, to: number) {
    const parts = this.segments.slice(from, to);
    this.deletedWhileMerging = [];
    let merged: Segment;
    try {
      merged = await mergeSegments(parts);
    } finally {
      const late = this.deletedWhileMerging;
      this.deletedWhileMerging = null;
      // Deletes that arrived during the merge were applied to the old parts; carry them over.
      if (late) for (const [id, terms] of late) merged!?.delete(id, terms);
    }
    // Segments only ever get appended meanwhile, so the parts are still at from..to.
    this.segments.splice(from, to - from, merged);
  }

  /** BM25's inverse document frequency of a term, as FTS5 computes it. */
  idf(term: string) {
    const n = this.size;
    const df = this.documentFrequency(term);
    if (df === 0) return 0;
    const idf = Math.log((n - df + 0.5) / (df + 0.5));
    return idf <= 0 ? 1e-6 : idf;
  }

  /** Each live chunk's length and how often each term occurs in it. */
  counts(ids: number[], terms: string[]): Map<number, { dl: number; tfs: number[] }> {
    const out = new Map<number, { dl: number; tfs: number[] }>();
    const sorted = [...ids].sort((a, b) => a - b);
    for (const id of sorted) {
      if (id < this.tail.firstAdded || id > this.tail.lastAdded || this.tailDeleted.has(id)) continue;
      const c = this.tail.counts(id, terms);
      if (c) out.set(id, c);
    }
    // segments hold disjoint, ascending ranges of ids
    let from = 0;
    for (const s of this.segments) {
      if (s.size === 0) continue;
      from = seek(sorted, from, s.firstId);
      let to = from;
      while (to < sorted.length && sorted[to]! <= s.lastId) to++;
      if (to > from) s.countsOf(sorted.slice(from, to), terms, out);
      from = to;
    }
    return out;
  }

  /** Live chunks holding the term. */
  documentFrequency(term: string) {
    let n = this.tail.frequency(term) - (this.tailDeletedDf.get(term) ?? 0);
    for (const s of this.segments) n += s.frequency(term);
    return n;
  }

  /**
   * The k best chunks for the query, BM25 as FTS5 computes it. `only` narrows to the chunks
   * a store or filter can see, as id ranges (see idRangesOf).
   */
  search(q: KeywordQuery, k: number, only?: Float64Array): KeywordHit[] {
    const n = this.size;
    if (n === 0 || k <= 0) return [];
    const avgdl = this.totalLength / n;
    const terms: QueryTerm[] = [];
    for (const [term, weight] of q.terms) {
      const df = this.documentFrequency(term);
      if (df === 0) continue;
      let idf = Math.log((n - df + 0.5) / (df + 0.5));
      if (idf <= 0) idf = 1e-6;
      terms.push({ term, wIdf: weight * idf });
    }
    if (terms.length === 0) return [];
    const top = new TopK(k);
    const norm = (dl: number) => K1 * (1 - B) + ((K1 * B) / avgdl) * dl;
    // Largest first: its top k sets a high bar early, which the smaller ones then skip against.
    const order = [...this.segments].sort((a, b) => b.live - a.live);
    // A filter reaches each segment as a bitmap over its ordinals, whichever loop scores it.
    const kernel = bm25Kernel();
    for (const seg of order) {
      const allow = only ? allowedOrdinals(seg, only) : null;
      if (allow === NONE_ALLOWED) continue;
      if (!kernel) {
        searchSegment(seg, terms, avgdl, top, allow);
        continue;
      }
      const found = kernel.run(seg, terms, K1 * (1 - B), (K1 * B) / avgdl, top.threshold, k, allow);
      for (let i = 0; i < found; i++) top.push(seg.ids[kernel.ordinals[i]!]!, kernel.scores[i]!);
    }
    this.tail.score(terms, norm, this.tailDeleted, top, only ? (id) => inRanges(only, id) : undefined);
    return top.sorted();
  }
}

/**
 * Chunk ids as ascending, disjoint [first, last] pairs of consecutive ids, flat: how a store
 * or filter's chunks reach a search (a file's cut is mostly one pair).
 */
export function idRangesOf(ids: Iterable<number>): Float64Array {
  const sorted = Float64Array.from(ids).sort();
  const out: number[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1]! <= sorted[j]! + 1) j++;
    out.push(sorted[i]!, sorted[j]!);
    i = j + 1;
  }
  return Float64Array.from(out);
}

/** The first of ascending, disjoint id ranges (see idRangesOf) that ends at or after `id`. */
function rangeReaching(ranges: Float64Array, id: number) {
  let lo = 0;
  for (let hi = ranges.length / 2; lo < hi; ) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid * 2 + 1]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether an id is in ascending, disjoint id ranges (see idRangesOf). */
function inRanges(ranges: Float64Array, id: number) {
  const r = rangeReaching(ranges, id);
  return r * 2 < ranges.length && ranges[r * 2]! <= id;
}

const NONE_ALLOWED = new Uint32Array(0);

/** The segment's ordinals whose ids fall in the ranges, as a bitmap; NONE_ALLOWED when none do. */
function allowedOrdinals(seg: Segment, ranges: Float64Array): Uint32Array {
  const ids = seg.ids;
  if (ids.length === 0) return NONE_ALLOWED;
  const bits = new Bitset(ids.length);
  let any = false;
  let from = 0;
  for (let r = rangeReaching(ranges, seg.firstId); r * 2 < ranges.length; r++) {
    const first = ranges[r * 2]!;
    const last = ranges[r * 2 + 1]!;
    if (first > seg.lastId) break;
    from = seek(ids, from, first);
    let o = from;
    for (; o < ids.length && ids[o]! <= last; o++) bits.set(o);
    if (o > from) any = true;
    from = o;
  }
  return any ? bits.words : NONE_ALLOWED;
}

// Scores are kept at float32 precision: the same chunk text scored in two segments sums its
// terms in different orders, and the last bits must not decide between equal chunks.

// One accumulator for every search (JavaScript runs one at a time), sized to the largest segment.
let scratch = new Float64Array(0);
let touched = new Int32Array(0);
// Past this many postings per chunk of the segment, reading the whole accumulator in order
// costs less than keeping a list of the chunks touched (a random write per new chunk).
const SCAN_ALL_SHARE = 0.25;

/**
 * The JavaScript loop, for builds without a C compiler; bm25-kernel.c does the same sums in
 * the same order (for the chunks it keeps: it leaves out, unsummed, those that cannot reach
 * the k best).
 * Term at a time: every posting of the query's terms added into one accumulator, then the
 * chunks touched offered to the top k (found through a list of them, or by reading the
 * accumulator in order when the postings cover much of the segment). Chosen by measurement
 * (bench `keyword`, SciFact's queries at 100k and 1M chunks): a document-at-a-time block-max
 * MaxScore, and this loop with MaxScore pruning of the common terms, both returned the same
 * results 2-15x slower in JavaScript: what they skip costs less than the bookkeeping that
 * skips it.
 */
function searchSegment(seg: Segment, terms: QueryTerm[], avgdl: number, top: TopK, allow: Uint32Array | null) {
  const size = seg.size;
  if (scratch.length < size) {
    scratch = new Float64Array(size);
    touched = new Int32Array(size);
  }
  const acc = scratch;
  const dls = seg.dls;
  // BM25's length norm K1 * (1 - B + B * dl / avgdl), as one multiply-add per posting,
  // grouped as the tail's norm() is: the same chunk scores the same wherever it is
  const c1 = K1 * (1 - B);
  const c2 = (K1 * B) / avgdl;
  const lists: (Postings | undefined)[] = [];
  let postings = 0;
  for (const t of terms) {
    const p = seg.terms.get(t.term);
    if (p) postings += p.docs.length;
    lists.push(p);
  }
  const scanAll = postings > size * SCAN_ALL_SHARE;
  let n = 0;
  terms.forEach((t, i) => {
    const p = lists[i];
    if (!p) return;
    const docs = p.docs;
    const tfs = p.tfs;
    const w = t.wIdf * (K1 + 1);
    if (scanAll) {
      for (let j = 0; j < docs.length; j++) {
        const d = docs[j]!;
        const tf = tfs[j]!;
        acc[d] = acc[d]! + (w * tf) / (tf + (c1 + c2 * dls[d]!));
      }
      return;
    }
    for (let j = 0; j < docs.length; j++) {
      const d = docs[j]!;
      const tf = tfs[j]!;
      const a = acc[d]!;
      if (a === 0) touched[n++] = d;
      acc[d] = a + (w * tf) / (tf + (c1 + c2 * dls[d]!));
    }
  });
  let bar = top.full ? top.threshold : 0;
  const offer = (d: number, s: number) => {
    if (seg.isDeleted(d)) return;
    if (allow && !(allow[d >>> 5]! & (1 << (d & 31)))) return;
    top.push(seg.ids[d]!, s);
    if (top.full) bar = top.threshold;
  };
  if (scanAll) {
    for (let d = 0; d < size; d++) {
      const a = acc[d]!;
      if (a === 0) continue;
      acc[d] = 0;
      const s = Math.fround(a);
      if (s >= bar) offer(d, s);
    }
    return;
  }
  for (let x = 0; x < n; x++) {
    const d = touched[x]!;
    const s = Math.fround(acc[d]!);
    acc[d] = 0;
    if (s >= bar) offer(d, s);
  }
}
