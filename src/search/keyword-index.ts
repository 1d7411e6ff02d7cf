import { log } from "../util/log";
import type { KeywordQuery } from "./analyzer";
import { B, BLOCK, K1, mergeSegments, Segment, SegmentBuilder, type Postings } from "./segment";

// New chunks gather here until sealed into a segment; the tail is scored exhaustively.
const TAIL_SIZE = 1024;
// Segments are tiered by size (tier t holds up to TAIL_SIZE * MERGE_FACTOR^t chunks); once
// MERGE_FACTOR segments of one tier trail the list, they merge into one of the next tier. Each
// chunk is copied about log8(chunks / TAIL_SIZE) times in all, and at most
// (MERGE_FACTOR - 1) segments stay in each tier (about 25 at a million chunks).
const MERGE_FACTOR = 8;
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
 * An inverted index over chunk texts with BM25 ranking (as FTS5's bm25()) that stops early:
 * MaxScore over segments, so the query's common words are only looked up for chunks that can
 * still reach the top k. Derived data: SQLite's chunk table and change log are the truth
 * (see keyword-search.ts for how it is kept, saved and rebuilt).
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

  /** Merges every segment into one (bench/): the fastest layout to search. */
  async mergeAll() {
    this.sealTail();
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
    for (const id of ids) {
      let c: { dl: number; tfs: number[] } | undefined;
      if (id >= this.tail.firstAdded && id <= this.tail.lastAdded) c = this.tailDeleted.has(id) ? undefined : this.tail.counts(id, terms);
      else
        for (let i = this.segments.length - 1; i >= 0; i--) {
          const s = this.segments[i]!;
          if (id < s.firstId || id > s.lastId) continue;
          const o = s.ordinalOf(id);
          if (o >= 0 && !s.isDeleted(o)) c = { dl: s.dls[o]!, tfs: terms.map((t) => s.termFrequency(o, t)) };
          break;
        }
      if (c) out.set(id, c);
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
   * The k best chunks for the query, BM25 as FTS5 computes it. `accept` narrows to chunks a
   * store or filter can see.
   */
  search(q: KeywordQuery, k: number, accept?: (id: number) => boolean): KeywordHit[] {
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
    const norm = (dl: number) => K1 * (1 - B + (B * dl) / avgdl);
    // Largest first: its top k sets a high bar early, which the smaller ones then skip against.
    const order = [...this.segments].sort((a, b) => b.live - a.live);
    for (const seg of order) searchSegment(seg, terms, norm, top, accept);
    this.tail.score(terms, norm, this.tailDeleted, top, accept);
    return top.sorted();
  }
}

// Scores are kept at float32 precision: the same chunk text scored in two segments sums its
// terms in different orders, and the last bits must not decide between equal chunks.
const TIE = 1e-6;
// Past every ordinal, and a small integer, so the doc loop stays in int32 arithmetic.
const NONE = 0x7fffffff;

/**
 * Block-max MaxScore over one segment. Lists are ordered by their bound; those whose bounds
 * together cannot beat the k-th best score so far are non-essential: they are only looked up
 * for chunks the others found. Whole blocks of the essential lists are skipped when their
 * block bounds cannot beat it either.
 */
function searchSegment(seg: Segment, terms: QueryTerm[], norm: (dl: number) => number, top: TopK, accept?: (id: number) => boolean) {
  const lists: { p: Postings; w: number; ub: number; blockUb: Float64Array }[] = [];
  for (const t of terms) {
    const p = seg.terms.get(t.term);
    if (!p) continue;
    // The best a block can score: its highest frequency in its shortest chunk. The list's bound
    // is the best block's, far tighter than the highest frequency in the shortest chunk overall.
    let best = 0;
    const blockUb = new Float64Array(p.blockMaxTf.length);
    for (let b = 0; b < blockUb.length; b++) {
      const tf = p.blockMaxTf[b]!;
      const f = (t.wIdf * tf * (K1 + 1)) / (tf + norm(p.blockMinDl[b]!));
      blockUb[b] = f;
      if (f > best) best = f;
    }
    lists.push({ p, w: t.wIdf, ub: best, blockUb });
  }
  if (lists.length === 0) return;
  lists.sort((a, b) => a.ub - b.ub);
  const m = lists.length;
  const prefix = new Float64Array(m);
  for (let i = 0, acc = 0; i < m; i++) prefix[i] = acc += lists[i]!.ub;
  const pos = new Int32Array(m);
  const dls = seg.dls;
  let theta = top.threshold;
  // Bounds are compared with a hair below the bar: a chunk that only ties the k-th score still
  // enters when its id is lower, wherever its segment was searched.
  let floor = theta * (1 - TIE);
  // Lists before `e` cannot lift a chunk over the bar on their own: they are only consulted.
  let e = 0;
  while (e < m && top.full && prefix[e]! < floor) e++;
  for (;;) {
    if (e >= m) return;
    if (top.full) {
      // Until the first of the essential lists' current blocks ends, no chunk can score more
      // than those blocks' bounds plus every non-essential list's bound.
      let bound = e > 0 ? prefix[e - 1]! : 0;
      let boundary = NONE;
      for (let i = e; i < m; i++) {
        const l = lists[i]!;
        const at = pos[i]!;
        const len = l.p.docs.length;
        if (at >= len) continue;
        const b = (at / BLOCK) | 0;
        bound += l.blockUb[b]!;
        const last = l.p.docs[Math.min(len, (b + 1) * BLOCK) - 1]!;
        if (last < boundary) boundary = last;
      }
      if (boundary === NONE) return;
      if (bound < floor) {
        for (let i = e; i < m; i++) {
          const docs = lists[i]!.p.docs;
          const at = pos[i]!;
          if (at < docs.length && docs[at]! <= boundary) pos[i] = seek(docs, at, boundary + 1);
        }
        continue;
      }
    }
    let d = NONE;
    for (let i = e; i < m; i++) {
      const l = lists[i]!;
      const at = pos[i]!;
      if (at < l.p.docs.length && l.p.docs[at]! < d) d = l.p.docs[at]!;
    }
    if (d === NONE) return;
    const nd = norm(dls[d]!);
    let s = 0;
    for (let i = e; i < m; i++) {
      const l = lists[i]!;
      const at = pos[i]!;
      if (at < l.p.docs.length && l.p.docs[at] === d) {
        const tf = l.p.tfs[at]!;
        s += (l.w * tf * (K1 + 1)) / (tf + nd);
        pos[i] = at + 1;
      }
    }
    if (seg.isDeleted(d)) continue;
    let competitive = true;
    for (let i = e - 1; i >= 0; i--) {
      if (top.full && s + prefix[i]! < floor) {
        competitive = false;
        break;
      }
      const l = lists[i]!;
      const docs = l.p.docs;
      let at = pos[i]!;
      if (at < docs.length && docs[at]! < d) at = seek(docs, at, d);
      pos[i] = at;
      if (at < docs.length && docs[at] === d) {
        const tf = l.p.tfs[at]!;
        s += (l.w * tf * (K1 + 1)) / (tf + nd);
      }
    }
    if (!competitive) continue;
    const score = Math.fround(s);
    if (top.full && score < theta) continue;
    const id = seg.ids[d]!;
    if (accept && !accept(id)) continue;
    top.push(id, score);
    if (top.full) {
      theta = top.threshold;
      floor = theta * (1 - TIE);
      while (e < m && prefix[e]! < floor) e++;
    }
  }
}

/** First position at or after `from` whose doc is >= target: galloping, then binary search. */
function seek(docs: Uint32Array, from: number, target: number) {
  let step = 1;
  let lo = from;
  let hi = from + 1;
  while (hi < docs.length && docs[hi]! < target) {
    lo = hi;
    step *= 2;
    hi = from + step;
  }
  if (hi > docs.length) hi = docs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (docs[mid]! < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
