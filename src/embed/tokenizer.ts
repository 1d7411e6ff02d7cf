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

export class UnigramTokenizer implements Tokenizer {
  private readonly pieces = new Map<string, { id: number; score: number }>();
  private readonly maxPieceChars: number;

  constructor(vocab: [string, number][]) {
    let longest = 1;
    for (let id = FIRST_PIECE; id < vocab.length; id++) {
      const [piece, score] = vocab[id]!;
      this.pieces.set(piece, { id, score });
      longest = Math.max(longest, [...piece].length);
    }
    this.maxPieceChars = longest;
  }

  encode(text: string): number[] {
    if (text.length === 0) return [];
    const chars = [...(WORD_START + text.normalize("NFKC").replaceAll(" ", WORD_START))];
    const n = chars.length;
    const best = new Float64Array(n + 1).fill(-Infinity);
    const from = new Int32Array(n + 1);
    const idAt = new Int32Array(n + 1);
    best[0] = 0;
    for (let i = 0; i < n; i++) {
      if (best[i] === -Infinity) continue;
      let piece = "";
      let single = false;
      for (let len = 1; len <= this.maxPieceChars && i + len <= n; len++) {
        piece += chars[i + len - 1];
        const hit = this.pieces.get(piece);
        if (!hit) continue;
        if (len === 1) single = true;
        const score = best[i]! + hit.score;
        if (score > best[i + len]!) {
          best[i + len] = score;
          from[i + len] = i;
          idAt[i + len] = hit.id;
        }
      }
      // A character no piece covers becomes the unknown id, scored 0.
      if (!single && best[i]! > best[i + 1]!) {
        best[i + 1] = best[i]!;
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
