import type { Block, Location } from "./types";

/** Counts tokens the way the embedding model will; ingestion and search share one instance. */
export interface TokenCounter {
  count(text: string): number;
  /** A lower bound of count(text) found without tokenizing, where the tokenizer has one. */
  atLeast?(text: string): number;
}

/**
 * For models whose tokenizer is not local (remote APIs): one token per word piece of up to six
 * letters or digits, and one per other symbol. Within about 15% of SentencePiece on English.
 */
export const approximateTokens: TokenCounter = {
  count(text) {
    let n = 0;
    for (const m of text.matchAll(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu)) n += Math.ceil(m[0].length / 6);
    return n;
  },
};

export type ChunkingStrategy =
  | { type: "auto" }
  | { type: "static"; static: { max_chunk_size_tokens: number; chunk_overlap_tokens: number } };

export interface ChunkSize {
  max: number;
  overlap: number;
}

/**
 * OpenAI's `auto` is 800 tokens with 400 overlap. A chunk longer than the model reads would be
 * embedded truncated, so a size past the model's window is clamped to it, with the overlap cut
 * to a quarter of the window (half of a small window is mostly repeated text). A static size
 * the model can read is used as asked.
 */
export function resolveChunking(strategy: ChunkingStrategy, modelMaxTokens: number): ChunkSize {
  const s = strategy.type === "static" ? strategy.static : { max_chunk_size_tokens: 800, chunk_overlap_tokens: 400 };
  if (strategy.type === "static" && s.max_chunk_size_tokens <= modelMaxTokens) return { max: s.max_chunk_size_tokens, overlap: s.chunk_overlap_tokens };
  const max = Math.max(16, Math.min(s.max_chunk_size_tokens, modelMaxTokens));
  const overlap = Math.min(s.chunk_overlap_tokens, Math.floor(max / 4), Math.floor(s.max_chunk_size_tokens / 2));
  return { max, overlap: Math.max(0, overlap) };
}

/**
 * Chunks are stored under the key of the size that cut them: `auto` for the server's default
 * (every file gets it), `static:<max>:<overlap>` for others, so stores asking for the same
 * size share one set of chunks.
 */
export const AUTO_KEY = "auto";

export function chunkingKey(size: ChunkSize, auto: ChunkSize): string {
  return size.max === auto.max && size.overlap === auto.overlap ? AUTO_KEY : `static:${size.max}:${size.overlap}`;
}

export function chunkSizeOf(key: string, auto: ChunkSize): ChunkSize {
  if (key === AUTO_KEY) return auto;
  const m = /^static:(\d+):(\d+)$/.exec(key);
  if (!m) throw new Error(`not a chunking key: ${key}`);
  return { max: Number(m[1]), overlap: Number(m[2]) };
}

export interface Chunk {
  text: string;
  loc: Location;
  /** Offsets into the document's text (the blocks joined by blank lines). */
  charStart: number;
  charEnd: number;
  tokens: number;
}

/** A piece of one block that a chunk takes whole: offsets into the block's text. */
export interface BlockUnit {
  start: number;
  end: number;
  tokens: number;
  boundary: boolean;
}

interface Unit extends BlockUnit {
  block: number;
}

const sentences = new Intl.Segmenter("en", { granularity: "sentence" });
const words = new Intl.Segmenter("en", { granularity: "word" });

/**
 * The pieces a block is cut into, with their tokens: the block whole when it fits, else its
 * sentences (long ones split further). Most of chunking's time is this tokenizing, and it
 * depends on the block alone, so the processes that read a PDF's page ranges do it for their
 * own pages and chunkBlocks takes the result (`measured`).
 */
export function blockUnits(b: Block, size: ChunkSize, counter: TokenCounter): BlockUnit[] {
  const room = size.max - (b.header ? counter.count(b.header) + 1 : 0);
  // (a block sure not to fit is not counted whole before its sentences are: most of a long
  // document's chunking time was counting each word twice)
  if (!(counter.atLeast && counter.atLeast(b.text) > room)) {
    const tokens = counter.count(b.text);
    if (tokens <= room) return [{ start: 0, end: b.text.length, tokens, boundary: !!b.boundary }];
  }
  const out: BlockUnit[] = [];
  let first = true;
  for (const [from, to] of windows(b.text)) {
    for (const s of sentences.segment(b.text.slice(from, to))) {
      for (const piece of splitLong(s.segment, from + s.index, Math.max(8, room), counter)) {
        const trimmed = trimRange(b.text, piece.start, piece.end);
        if (!trimmed) continue;
        out.push({ start: trimmed[0], end: trimmed[1], tokens: piece.tokens, boundary: first && !!b.boundary });
        first = false;
      }
    }
  }
  return out;
}

/** Joins blocks into the document text that chunk offsets point into. */
export function documentText(blocks: Block[]): { text: string; starts: number[] } {
  const starts: number[] = [];
  let pos = 0;
  const parts: string[] = [];
  for (const b of blocks) {
    starts.push(pos);
    parts.push(b.text);
    pos += b.text.length + 2;
  }
  return { text: parts.join("\n\n"), starts };
}

/**
 * Packs blocks into chunks of at most `size.max` tokens. Structure comes first: a block is
 * kept whole when it fits, a boundary block (page, slide, sheet, heading) starts a new chunk
 * unless the current one is still small; an oversized block is cut at sentences, and a
 * sentence longer than a chunk at word boundaries. Consecutive chunks of the same section
 * share up to `size.overlap` tokens of whole sentences. A table's header is repeated at the
 * top of each chunk of its rows.
 */
export function chunkBlocks(blocks: Block[], size: ChunkSize, counter: TokenCounter = approximateTokens, measured?: BlockUnit[][]): { text: string; chunks: Chunk[] } {
  const { text, starts } = documentText(blocks);
  const units: Unit[] = [];
  blocks.forEach((b, bi) => {
    const base = starts[bi]!;
    for (const u of measured?.[bi] ?? blockUnits(b, size, counter)) units.push({ ...u, start: base + u.start, end: base + u.end, block: bi });
  });

  const chunks: Chunk[] = [];
  let cur: Unit[] = [];
  let curTokens = 0;
  const header = (u: Unit[]) => blocks[u[0]!.block]!.header;
  const emit = () => {
    if (!cur.length) return;
    const h = header(cur);
    const start = cur[0]!.start;
    const end = cur.at(-1)!.end;
    const body = text.slice(start, end);
    const t = h && !body.startsWith(h) ? `${h}\n${body}` : body;
    chunks.push({ text: t, loc: mergeLocations(cur.map((u) => blocks[u.block]!.loc)), charStart: start, charEnd: end, tokens: curTokens + (h ? counter.count(h) + 1 : 0) });
  };
  for (const u of units) {
    const b = blocks[u.block]!;
    const h = b.header;
    const headerTokens = h ? counter.count(h) + 1 : 0;
    const sectionChange = cur.length > 0 && (u.boundary ? curTokens >= size.max / 4 || identityChanged(blocks[cur[0]!.block]!.loc, b.loc) : false);
    const headerChange = cur.length > 0 && header(cur) !== h;
    if (cur.length && (sectionChange || headerChange || curTokens + u.tokens + headerTokens > size.max)) {
      emit();
      const carry: Unit[] = [];
      if (!sectionChange && !headerChange && size.overlap > 0) {
        let t = 0;
        for (let i = cur.length - 1; i >= 0; i--) {
          const c = cur[i]!;
          if (t + c.tokens > size.overlap || t + c.tokens + u.tokens + headerTokens > size.max) break;
          carry.unshift(c);
          t += c.tokens;
        }
        // Never carry the whole previous chunk: that would repeat it.
        if (carry.length === cur.length) carry.shift();
      }
      cur = carry;
      curTokens = carry.reduce((a, c) => a + c.tokens, 0);
    }
    cur.push(u);
    curTokens += u.tokens;
  }
  emit();
  return { text, chunks };
}

// A block is segmented in windows of this many characters: the segmenters' memory grows with
// their input, and one line of a minified file or a CSV cell can be hundreds of megabytes.
const WINDOW = 64 * 1024;

/** [from, to) ranges of at most WINDOW characters, cut at whitespace where there is some near the end. */
function* windows(text: string): Generator<[number, number]> {
  for (let from = 0; from < text.length; ) {
    let to = Math.min(text.length, from + WINDOW);
    if (to < text.length) {
      const space = text.lastIndexOf(" ", to);
      const nl = text.lastIndexOf("\n", to);
      const cut = Math.max(space, nl);
      if (cut > from + WINDOW * 0.9) to = cut + 1;
    }
    yield [from, to];
    from = to;
  }
}

/** Splits a sentence longer than `max` tokens at word boundaries. */
function splitLong(s: string, offset: number, max: number, counter: TokenCounter) {
  const tokens = counter.count(s);
  if (tokens <= max) return [{ start: offset, end: offset + s.length, tokens }];
  const out: { start: number; end: number; tokens: number }[] = [];
  let start = 0;
  let acc = 0;
  let lastEnd = 0;
  for (const w of words.segment(s)) {
    const t = w.isWordLike ? counter.count(w.segment) : counter.count(w.segment.trim()) || 0;
    if (acc + t > max && lastEnd > start) {
      out.push({ start: offset + start, end: offset + lastEnd, tokens: acc });
      start = w.index;
      acc = 0;
    }
    // A single "word" longer than a chunk (a base64 blob) is cut by characters.
    if (t > max) {
      const step = Math.max(1, Math.floor((w.segment.length * max) / t));
      for (let i = 0; i < w.segment.length; i += step) {
        const piece = w.segment.slice(i, i + step);
        out.push({ start: offset + w.index + i, end: offset + w.index + i + piece.length, tokens: counter.count(piece) });
      }
      start = w.index + w.segment.length;
      lastEnd = start;
      acc = 0;
      continue;
    }
    acc += t;
    lastEnd = w.index + w.segment.length;
  }
  if (lastEnd > start) out.push({ start: offset + start, end: offset + lastEnd, tokens: acc });
  return out;
}

function trimRange(s: string, start: number, end: number): [number, number] | null {
  while (start < end && /\s/.test(s[start]!)) start++;
  while (end > start && /\s/.test(s[end - 1]!)) end--;
  return end > start ? [start, end] : null;
}

// A chunk never mixes sheets, slides, chapters or attachments: its location would be a lie.
const identityChanged = (a: Location, b: Location) => a.sheet !== b.sheet || a.slide !== b.slide || a.chapter !== b.chapter || a.attachment !== b.attachment;

/** The location of a run of blocks: ranges widen, the first block names the section. */
export function mergeLocations(locs: Location[]): Location {
  const first = locs[0] ?? {};
  const out: Location = { ...first };
  const range = (key: "rows" | "lines", get: (l: Location) => [number, number] | undefined) => {
    const rs = locs.map(get).filter((r): r is [number, number] => !!r);
    if (rs.length) out[key] = [Math.min(...rs.map((r) => r[0])), Math.max(...rs.map((r) => r[1]))];
  };
  range("rows", (l) => l.rows);
  range("lines", (l) => l.lines);
  const pages = locs.map((l) => l.page).filter((p): p is number => p !== undefined);
  if (pages.length) {
    const lo = Math.min(...pages);
    const hi = Math.max(...pages);
    delete out.page;
    if (lo === hi) out.page = lo;
    else out.pages = [lo, hi];
  }
  const times = locs.map((l) => l.time).filter((t): t is [string, string] => !!t);
  if (times.length) out.time = [times[0]![0], times.at(-1)![1]];
  return out;
}
