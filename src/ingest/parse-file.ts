// One file's parse in the parse processes: the request, the answer, the time budget, and for
// a long PDF the page ranges read side by side by every parse process that is free.
import type { IngestErrorCode } from "../errors";
import { metrics } from "../metrics";
import type { BlockUnit } from "./chunker";
import type { ParseReply, ParseRequest } from "./parse-child";
import { MemoryExceeded, type Outcome, type ParseProcess, type ParseProcessPool } from "./parse-pool";
import type { Format } from "./parsers/index";
import { chunkChecked, failure, tokenizerFor } from "./parse-inline";
import { scansWithoutText, tooMuchText, type Block } from "./types";

// A long PDF is read in ranges of this many pages by every parse process that is free (about
// 0.15 s of pages each, which repays a process start and a load of the document).
const PDF_PART_PAGES = 32;
// Ranges a reader holds at once: it starts the next as soon as it sends one, instead of
// waiting idle for the server to take the range and hand out another.
const RANGES_AHEAD = 2;

/** The chunks of a PDF read in ranges, as a whole read would cut them (chunker.blockUnits). */
async function chunkRanges(parts: { blocks: Block[]; units: BlockUnit[][] }[], scanned: number, base: Omit<ParseRequest, "pages">): Promise<Extract<ParseReply, { type: "done" | "failed" }>> {
  try {
    const blocks = parts.flatMap((x) => x.blocks);
    if (!blocks.length && scanned) throw scansWithoutText(base.ocr.enabled);
    const { text, chunks } = chunkChecked(blocks, base.limits, base.chunking, await tokenizerFor(base.tokenizer), parts.flatMap((x) => x.units));
    return { type: "done", format: "pdf", text, chunks, ocrPages: 0 };
  } catch (err) {
    return failure(err);
  }
}

/** A run that failed and may succeed if tried again; `code` is recorded as its outcome meanwhile. */
export class Transient extends Error {
  constructor(
    message: string,
    readonly code: IngestErrorCode = "server_error",
  ) {
    super(message);
  }
}

export class Timeout extends Error {
  constructor(ms: number) {
    super(`processing took longer than the ${Math.round(ms / 1000)} s limit per file; split the document or raise --ingest-timeout`);
  }
}

export interface ParseFileOptions {
  pool: ParseProcessPool;
  /** The pipeline's parse slots: another for a range reader, only when one is free and no file waits. */
  slots: { take(): boolean; give(): void; othersWaiting(): boolean };
  /** The request for the whole file; ranges add their pages to it. */
  request: Omit<ParseRequest, "pages">;
  /** The file's first bytes say PDF: it may be read in page ranges. */
  pdf: boolean;
  timeoutMs: number;
  onProgress(message: string): void;
  /** Receives what ends the parse at once (a cancel or a lost lease): every process is stopped. */
  onStart(settle: (r: Outcome) => void): void;
}

/**
 * Parses the file in a parse process. A PDF that turns out long is read in page ranges by as
 * many processes as there are free slots, and the server then cuts the chunks over all the
 * ranges' measured pieces (chunkRanges), so the chunks are those of a whole read.
 */
export function parseFile(o: ParseFileOptions): Promise<ParseReply> {
  const base = o.request;
  return new Promise((resolve, reject) => {
    const first = o.pool.acquire();
    /** Processes reading this file, with the ranges each was sent, in order (the first is being read). */
    const readers = new Map<ParseProcess, { from: number; to: number; at: number }[]>([[first, []]]);
    let extraSlots = 0;
    /** Processes that were given the file (a reader started ahead may never be). */
    const used = new Set<ParseProcess>([first]);
    let settled = false;
    const budget = setTimeout(() => settle(new Timeout(o.timeoutMs)), o.timeoutMs);
    const settle = (r: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(budget);
      const ok = !(r instanceof Error) && r.type === "done";
      for (const p of readers.keys()) {
        if (!used.has(p)) o.pool.giveBack(p);
        else if (ok) o.pool.release(p, (r as { format: string }).format as Format);
        else o.pool.discard(p);
      }
      readers.clear();
      for (; extraSlots > 0; extraSlots--) o.slots.give();
      // A parse process that died took its document with it: the document's own failure.
      if (r instanceof Error) reject(r instanceof MemoryExceeded || r instanceof Timeout || r instanceof Transient ? r : new Transient(r.message, "invalid_file"));
      else if (r.type === "progress" || r.type === "pages" || r.type === "part") reject(new Transient(`the parser answered out of turn (${r.type})`));
      else resolve(r);
    };
    o.onStart(settle);

    // Set once the first process finds a long PDF.
    let split: { pages: number; next: number; parts: { blocks: Block[]; units: BlockUnit[][] }[]; left: number; read: number; scanned: number; ocrPages: number; chars: number } | null = null;
    const report = () => {
      let read = split!.read;
      for (const r of readers.values()) if (r[0]) read += r[0].at - r[0].from;
      o.onProgress(`parsing page ${Math.max(1, Math.min(split!.pages, read))} of ${split!.pages}`);
    };
    const give = (p: ParseProcess): boolean => {
      if (!split || split.next > split.pages) return false;
      const range = { from: split.next, to: Math.min(split.pages, split.next + PDF_PART_PAGES - 1) };
      split.next = range.to + 1;
      readers.get(p)!.push({ ...range, at: range.from });
      used.add(p);
      void o.pool.send(p, { ...base, pages: range });
      return true;
    };
    const begin = (pages: number) => {
      const parts = Math.ceil(pages / PDF_PART_PAGES);
      split = { pages, next: PDF_PART_PAGES + 1, parts: new Array(parts), left: parts, read: 0, scanned: 0, ocrPages: 0, chars: 0 };
      readers.set(first, [{ from: 1, to: PDF_PART_PAGES, at: 1 }]);
      for (let ahead = 0; ahead < RANGES_AHEAD; ahead++) for (const [p, ranges] of readers) if (ranges.length === ahead) give(p);
      while (split.next <= pages && o.slots.take()) {
        extraSlots++;
        const p = addReader();
        for (let ahead = 0; ahead < RANGES_AHEAD; ahead++) give(p);
      }
    };
    /** Readers started ahead that got no range go back unused, and their slots pass on. */
    const returnUnused = () => {
      for (const [q, r] of readers)
        if (!r.length && !used.has(q)) {
          readers.delete(q);
          o.pool.giveBack(q);
          extraSlots--;
          o.slots.give();
        }
    };
    const addReader = () => {
      const p = o.pool.acquire();
      p.handler = listen(p);
      readers.set(p, []);
      return p;
    };
    const partDone = (p: ParseProcess, m: Extract<ParseReply, { type: "part" }>) => {
      const range = readers.get(p)?.shift();
      if (!split || !range) return settle(new Transient("the parser answered for a range it was not given"));
      // The whole text gathers here before it is chunked: the document's size limit applies
      // as the ranges arrive, not only in the process that chunks them.
      for (const b of m.blocks) split.chars += b.text.length;
      if (split.chars > base.limits.maxTextChars) {
        const e = tooMuchText(base.limits.maxTextChars);
        return settle({ type: "failed", code: e.code, message: e.message });
      }
      split.parts[(range.from - 1) / PDF_PART_PAGES] = m;
      split.left--;
      split.read += range.to - range.from + 1;
      split.scanned += m.scanned;
      split.ocrPages += m.ocrPages;
      metrics.pdfRange(p === first);
      report();
      // The file's own process reads on; another stops taking ranges once other files wait
      // for a slot, and leaves when it has read those it holds.
      if (p === first || !o.slots.othersWaiting()) give(p);
      if (readers.get(p)!.length) return;
      if (p !== first) {
        // Its ranges are read: the process drops the document it kept open for them and goes
        // back to the pool, and its slot passes on.
        readers.delete(p);
        void o.pool.send(p, { close: true });
        o.pool.release(p, "pdf");
        extraSlots--;
        o.slots.give();
      }
      returnUnused();
      if (split.left > 0) return;
      // The chunks are cut here, over every range's blocks with the pieces their readers
      // measured: sending them all to a parse process and its chunks back cost more of this
      // thread's time (the JSON both ways) than cutting them.
      o.onProgress("chunking");
      void o.pool.send(first, { close: true });
      const { parts, scanned, ocrPages } = split;
      void chunkRanges(parts, scanned, base).then((r) => settle(r.type === "done" ? { ...r, ocrPages } : r));
    };
    const listen = (p: ParseProcess) => (m: Outcome) => {
      if (m instanceof Error && !used.has(p)) {
        // a reader started ahead that died before it was given anything: the file is not at fault
        if (readers.delete(p)) {
          extraSlots--;
          o.slots.give();
        }
        return;
      }
      if (m instanceof Error) return settle(m);
      switch (m.type) {
        case "progress": {
          const page = split && /^parsing page (\d+) of/.exec(m.message);
          const range = readers.get(p)?.[0];
          if (!split) o.onProgress(m.message);
          else if (page && range) {
            range.at = Number(page[1]);
            report();
          }
          return;
        }
        case "pages":
          if (!m.split) return returnUnused();
          try {
            return begin(m.pages);
          } catch (e) {
            // a reader could not be started (no processes left): the server's trouble
            return settle(new Transient(`could not start a parse process: ${String((e as Error)?.message ?? e)}`));
          }
        case "part":
          return partDone(p, m);
        case "done":
          return settle(split ? { ...m, ocrPages: split.ocrPages } : m);
        default:
          return settle(m);
      }
    };
    first.handler = listen(first);
    // A PDF is offered for splitting only when a second slot is free now: its reader starts
    // while the first process finds the page count. On a busy server files are read whole,
    // as each would be anyway, without the ranges' round trips.
    const split0 = o.pdf && o.slots.take();
    if (split0) {
      extraSlots++;
      addReader();
    }
    void o.pool.send(first, { ...base, ...(split0 ? { pages: { from: 1, to: PDF_PART_PAGES, split: true } } : {}) });
  });
}
