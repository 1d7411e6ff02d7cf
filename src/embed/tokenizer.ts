// The SentencePiece unigram tokenizer of the bundled model: NFKC, `▁` for word starts,
// then the highest-scoring segmentation (Viterbi) over the vocabulary's piece scores.
export interface Tokenizer {
  /** Token ids of the whole text (no truncation). */
  encode(text: string): number[];
  count(text: string): number;
  /** A lower bound of count(text) found without tokenizing, where there is one. */
  atLeast?(text: string): number;
  /** The most characters of the text (UTF-16 units) one token can stand for, where there is a bound. */
  readonly charsPerTokenAtMost?: number;
}

// "▁", SentencePiece's mark of a word's start
const WORD_START_CP = 0x2581;
const UNKNOWN_ID = 0;
// ids 0..5 are reserved (unknown, <s>, </s>, 3 extras) and never produced by segmentation
const FIRST_PIECE = 6;
// Words whose counts are kept (about 100 bytes each), and the longest kept.
const WORD_COUNTS = 100_000;
const KEPT_WORD_CHARS = 48;

interface TrieNode {
  /** The piece ending here, or -1. */
  id: number;
  score: number;
  next: Map<number, TrieNode> | null;
}

const node = (): TrieNode => ({ id: -1, score: 0, next: null });

export class UnigramTokenizer implements Tokenizer {
  // Pieces by code point: at each position Viterbi walks only the prefixes that exist, instead
  // of building and hashing every substring up to the longest piece (6x faster on prose).
  private readonly root = node();

  /**
   * Whether every piece holds `▁` only as its first character: then no piece spans two words,
   * and a text's count is the sum of its words' counts (count() below).
   */
  private readonly wordsApart: boolean;
  /** Token counts of words seen, by the word as NFKC left it. */
  private readonly wordCounts = new Map<string, number>();

  /**
   * A token is a piece (its code points, `▁` standing for a space), or one unknown code point;
   * a code point is two UTF-16 units at most, and NFKC composes at most four code points into
   * one (ᾂ, U+1F82: alpha and three marks).
   */
  readonly charsPerTokenAtMost: number;

  constructor(vocab: [string, number][]) {
    let apart = true;
    let longest = 1;
    for (let id = FIRST_PIECE; id < vocab.length; id++) {
      const [piece, score] = vocab[id]!;
      if (piece.indexOf("\u2581", 1) > 0) apart = false;
      longest = Math.max(longest, [...piece].length);
      let at = this.root;
      for (const ch of piece) {
        const cp = ch.codePointAt(0)!;
        at.next ??= new Map();
        let child = at.next.get(cp);
        if (!child) at.next.set(cp, (child = node()));
        at = child;
      }
      at.id = id;
      at.score = score;
    }
    this.wordsApart = apart;
    this.charsPerTokenAtMost = longest * 2 * 4;
  }

  // Scratch for encode, grown as needed: chunking counts the tokens of many short pieces (a
  // file's sentences), where allocating these for each call cost more than the search.
  private cps = new Int32Array(256);
  private best = new Float64Array(257);
  private from = new Int32Array(257);
  private idAt = new Int32Array(257);

  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.encodeNormalized(text.normalize("NFKC"));
  }

  /** `norm` as NFKC leaves it; an empty one is the lone word start. */
  private encodeNormalized(norm: string): number[] {
    if (norm.length + 1 > this.cps.length) {
      const size = 2 * (norm.length + 1);
      this.cps = new Int32Array(size);
      this.best = new Float64Array(size + 1);
      this.from = new Int32Array(size + 1);
      this.idAt = new Int32Array(size + 1);
    }
    // code points, a space as a word start, and one before the text
    const cps = this.cps;
    let n = 0;
    cps[n++] = WORD_START_CP;
    for (let i = 0; i < norm.length; i++) {
      const c = norm.charCodeAt(i);
      if (c === 0x20) cps[n++] = WORD_START_CP;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < norm.length) {
        const lo = norm.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          cps[n++] = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          i++;
        } else cps[n++] = c;
      } else cps[n++] = c;
    }
    const { best, from, idAt } = this;
    best.fill(-Infinity, 0, n + 1);
    best[0] = 0;
    for (let i = 0; i < n; i++) {
      const base = best[i]!;
      if (base === -Infinity) continue;
      let single = false;
      let at: TrieNode | undefined = this.root;
      for (let j = i; j < n; j++) {
        at = at.next?.get(cps[j]!);
        if (!at) break;
        if (at.id < 0) continue;
        if (j === i) single = true;
        const score = base + at.score;
        if (score > best[j + 1]!) {
          best[j + 1] = score;
          from[j + 1] = i;
          idAt[j + 1] = at.id;
        }
      }
      // A character no piece covers becomes the unknown id, scored 0.
      if (!single && base > best[i + 1]!) {
        best[i + 1] = base;
        from[i + 1] = i;
        idAt[i + 1] = UNKNOWN_ID;
      }
    }
    const ids: number[] = [];
    for (let at = n; at > 0; at = from[at]!) ids.push(idAt[at]!);
    return ids.reverse();
  }

  /**
   * Every word (what lies between two spaces, as count() splits the text) is a token at least;
   * NFKC turns other spaces into this one, never this one into none.
   */
  atLeast(text: string): number {
    if (!this.wordsApart) return 0;
    let spaces = 0;
    for (let at = text.indexOf(" "); at >= 0; at = text.indexOf(" ", at + 1)) spaces++;
    return text.length === 0 ? 0 : spaces + 1;
  }

  /**
   * As encode(text).length. Chunking counts the tokens of every block, sentence and word of
   * every file (it was the largest share of ingestion's event-loop time on small files), and
   * the same words come back again and again: each word's count is kept. A word is what lies
   * between two spaces, `▁` and all, so runs of spaces and spaces at either end count as
   * encode counts them.
   */
  count(text: string): number {
    if (text.length === 0) return 0;
    if (!this.wordsApart) return this.encode(text).length;
    const norm = text.normalize("NFKC");
    const counts = this.wordCounts;
    let total = 0;
    for (let start = 0; start <= norm.length; ) {
      let end = norm.indexOf(" ", start);
      if (end < 0) end = norm.length;
      const word = norm.slice(start, end);
      let n = counts.get(word);
      if (n === undefined) {
        n = this.encodeNormalized(word).length;
        // Bounded: a corpus of other scripts or of random strings does not grow it for ever,
        // and a long "word" (text without spaces, a base64 blob) is not kept. A slice of ten
        // or more characters shares its whole text's buffer in Bun's engine: a kept word is a
        // copy, or it would keep its document alive.
        if (word.length <= KEPT_WORD_CHARS) {
          if (counts.size >= WORD_COUNTS) counts.clear();
          counts.set(word.length > 8 ? word.split("").join("") : word, n);
        }
      }
      total += n;
      start = end + 1;
    }
    return total;
  }
}
