/*
 * BM25 over one keyword segment, term at a time, in windows of the segment's ordinals: the
 * same sums in the same order as keyword-index.ts's searchSegment, so the same scores to the
 * last bit (built with -ffp-contract=off: a fused multiply-add would round differently).
 *
 * Why native and why windows (bench `keyword`, SciFact's queries at 1M chunks): the JavaScript
 * loop spends ~12 ns a posting and is bound by its own instructions; this one, over the whole
 * segment at once, was bound by cache misses on an accumulator of 8 MB. Postings ascend by
 * ordinal, so each term's cursor walks into one window of WINDOW ordinals at a time, and the
 * window's accumulator (128 KB) and lengths stay in the core's cache.
 *
 * Once the k best so far set a bar, the common terms whose weights together stay under it
 * (MaxScore's non-essential terms: a term adds less than its weight to any chunk) cannot lift
 * a chunk of their own into the k best. A window then first marks the chunks the other,
 * rarer terms list, and the common terms' postings add to marked chunks only: each of their
 * postings costs a bit test instead of a length read and a division, and most postings of a
 * query's terms are the common terms' (SciFact at 1M chunks: about two thirds). The sums of
 * marked chunks are added in the same term order, so their scores are the same to the bit;
 * a chunk left unmarked scores under the bar, so would not have been kept either.
 *
 * Keeps the segment's k best (score, ordinal) in out_*, as a heap, and returns how many.
 */
#include <stddef.h>
#include <stdint.h>

#define WINDOW 16384
#define MAX_TERMS 64
/* A bound compared with a score summed in double and rounded to float: kept clear of it. */
#define BOUND_SLACK (1.0 + 1e-6)

/* The order of keyword-index.ts's TopK: lower score, then higher ordinal (= higher id), is worse. */
static inline int worse(float sa, uint32_t oa, float sb, uint32_t ob) { return sa < sb || (sa == sb && oa > ob); }

static inline void swap(float *s, uint32_t *o, int32_t i, int32_t j) {
  float ts = s[i];
  s[i] = s[j];
  s[j] = ts;
  uint32_t to = o[i];
  o[i] = o[j];
  o[j] = to;
}

/* Raised with every change of ragd_bm25_segment's arguments: a library staged by an older
 * build is refused (bm25-kernel.ts) instead of being called with the wrong ones. */
int32_t ragd_bm25_abi(void) { return 2; }

int32_t ragd_bm25_window_size(void) { return WINDOW; }

/*
 * docs / tfs: the segment's postings (every term's, one array each); term t's are
 * [starts[t], starts[t] + lens[t]), weighted by weights[t] (query weight x IDF x (K1 + 1)).
 * dls: each ordinal's length; the length norm is c1 + c2 * dl. deleted: a bitmap over
 * ordinals, or NULL. allow: a bitmap of the ordinals a store or filter sees, or NULL for all. bar: the score a chunk must reach to matter (the caller's k-th so far).
 * Scratch: cursors (nterms), acc and touched (WINDOW each; acc all zero, and left so).
 */
int32_t ragd_bm25_segment(int32_t nterms, const uint32_t *docs, const uint16_t *tfs, const uint32_t *starts,
                          const uint32_t *lens, const double *weights, uint32_t *cursors, const uint32_t *dls,
                          uint32_t size, double c1, double c2, double *acc, uint32_t *touched,
                          const uint32_t *deleted, const uint32_t *allow, double bar, int32_t k, uint32_t *out_ord,
                          float *out_score) {
  int32_t h = 0;
  if (k <= 0) return 0;
  for (int32_t t = 0; t < nterms; t++) cursors[t] = starts[t];
  /* The terms by weight, lightest first (insertion sort: a query has a few terms). */
  int32_t by_weight[MAX_TERMS];
  const int32_t sortable = nterms <= MAX_TERMS;
  if (sortable)
    for (int32_t t = 0; t < nterms; t++) {
      int32_t i = t;
      for (; i > 0 && weights[by_weight[i - 1]] > weights[t]; i--) by_weight[i] = by_weight[i - 1];
      by_weight[i] = t;
    }
  uint64_t marks[WINDOW / 64];
  /* (volatile: a compiler must not make this a call to memset, which -nostdlib leaves out) */
  for (volatile uint64_t *m = marks; m < marks + WINDOW / 64; m++) *m = 0;
  uint8_t common[MAX_TERMS];
  for (uint32_t lo = 0; lo < size; lo += WINDOW) {
    const uint32_t hi = size - lo > WINDOW ? lo + WINDOW : size;
    uint32_t n = 0;
    /* The lightest terms whose weights sum under the bar (with slack): the common ones. */
    int32_t ncommon = 0;
    if (sortable && bar > 0) {
      double sum = 0;
      for (; ncommon < nterms - 1; ncommon++) {
        sum += weights[by_weight[ncommon]];
        if (!(sum * BOUND_SLACK < bar)) break;
      }
      /* (set through the permutation: no loop here a compiler could make a memset) */
      for (int32_t i = 0; i < nterms; i++) common[by_weight[i]] = i < ncommon;
    }
    if (ncommon > 0) {
      /* The rarer terms' chunks, marked. */
      for (int32_t t = 0; t < nterms; t++) {
        if (common[t]) continue;
        const uint32_t end = starts[t] + lens[t];
        for (uint32_t j = cursors[t]; j < end; j++) {
          const uint32_t o = docs[j];
          if (o >= hi) break;
          if (o < lo) continue;
          const uint32_t x = o - lo;
          const uint64_t bit = (uint64_t)1 << (x & 63);
          if (!(marks[x >> 6] & bit) && n < WINDOW) {
            marks[x >> 6] |= bit;
            touched[n++] = x;
          }
        }
      }
      /* Every term in order: the rarer ones' postings are all marked, the common ones' add
       * where marked. */
      for (int32_t t = 0; t < nterms; t++) {
        const uint32_t end = starts[t] + lens[t];
        const double w = weights[t];
        const int32_t all = !common[t];
        uint32_t j = cursors[t];
        for (; j < end; j++) {
          const uint32_t o = docs[j];
          if (o >= hi) break;
          if (o < lo) continue;
          const uint32_t x = o - lo;
          if (!all && !(marks[x >> 6] & ((uint64_t)1 << (x & 63)))) continue;
          const double tf = tfs[j];
          acc[x] = acc[x] + (w * tf) / (tf + (c1 + c2 * (double)dls[o]));
        }
        cursors[t] = j;
      }
      for (uint32_t x = 0; x < n; x++) marks[touched[x] >> 6] = 0;
    } else
      for (int32_t t = 0; t < nterms; t++) {
        const uint32_t end = starts[t] + lens[t];
        const double w = weights[t];
        uint32_t j = cursors[t];
        for (; j < end; j++) {
          const uint32_t o = docs[j];
          if (o >= hi) break;
          /* postings ascend (a damaged segment's could not reach outside the window) */
          if (o < lo) continue;
          const double tf = tfs[j];
          const double a = acc[o - lo];
          /* every term's weight is positive (bm25-kernel.ts), so a chunk is listed once; the
           * bound only keeps a broken caller from writing past the list */
          if (a == 0 && n < WINDOW) touched[n++] = o - lo;
          acc[o - lo] = a + (w * tf) / (tf + (c1 + c2 * (double)dls[o]));
        }
        cursors[t] = j;
      }
    for (uint32_t x = 0; x < n; x++) {
      const uint32_t o = lo + touched[x];
      const float s = (float)acc[touched[x]];
      acc[touched[x]] = 0;
      if (!(s >= bar)) continue;
      if (deleted && (deleted[o >> 5] & (1u << (o & 31)))) continue;
      if (allow && !(allow[o >> 5] & (1u << (o & 31)))) continue;
      if (h < k) {
        int32_t i = h++;
        out_score[i] = s;
        out_ord[i] = o;
        while (i > 0) {
          const int32_t p = (i - 1) >> 1;
          if (!worse(out_score[i], out_ord[i], out_score[p], out_ord[p])) break;
          swap(out_score, out_ord, i, p);
          i = p;
        }
      } else {
        if (worse(s, o, out_score[0], out_ord[0])) continue;
        out_score[0] = s;
        out_ord[0] = o;
        for (int32_t i = 0;;) {
          const int32_t l = 2 * i + 1, r = l + 1;
          int32_t m = i;
          if (l < h && worse(out_score[l], out_ord[l], out_score[m], out_ord[m])) m = l;
          if (r < h && worse(out_score[r], out_ord[r], out_score[m], out_ord[m])) m = r;
          if (m == i) break;
          swap(out_score, out_ord, i, m);
          i = m;
        }
      }
      if (h == k) bar = out_score[0];
    }
  }
  return h;
}
