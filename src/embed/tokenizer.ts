// The SentencePiece unigram tokenizer of the bundled model: NFKC, `▁` for word starts,
// then the highest-scoring segmentation (Viterbi) over the vocabulary's piece scores.
export interface Tokenizer {
  /** Token ids of the whole text (no truncation). */
  encode(text: string): number[];
  count(text: string): number;
}

const WORD_START = "\u2581";
const UNKNOWN_ID = 0;
// ids 0..5 are reserved (unknown, <s>, </s>, 3 extras) and never produced by segmentation
const FIRST_PIECE = 6;

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

  constructor(vocab: [string, number][]) {
    for (let id = FIRST_PIECE; id < vocab.length; id++) {
      const [piece, score] = vocab[id]!;
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
  }

  encode(text: string): number[] {
    if (text.length === 0) return [];
    const cps: number[] = [];
    for (const ch of WORD_START + text.normalize("NFKC").replaceAll(" ", WORD_START)) cps.push(ch.codePointAt(0)!);
    const n = cps.length;
    const best = new Float64Array(n + 1).fill(-Infinity);
    const from = new Int32Array(n + 1);
    const idAt = new Int32Array(n + 1);
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

  count(text: string): number {
    return this.encode(text).length;
  }
}
