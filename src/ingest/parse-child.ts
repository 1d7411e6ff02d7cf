// The parse process: `ragd` started again with PARSE_CHILD_ARG (see main.ts). It reads one
// document per request from the path the server gives it, and answers with the text and
// chunks. Every third-party parser runs here, outside the server: the server watches this
// process's memory and kills it at the ceiling or the time budget, which can never harm the
// server itself (killing a thread inside a native addon aborts the whole process; killing a
// process is always safe). parse-pool.ts decides which processes serve another file.
import type { IngestErrorCode } from "../errors";
import type { TokenizerSpec } from "../embed/tokenizers";
import { installBindings, type NativePaths } from "../native/assets";
import { NativeLoadError } from "../native/sharp";
import { ocrPagesRead, type OcrSettings } from "../ocr/engine";
import { blockUnits, chunkBlocks, type BlockUnit, type ChunkSize } from "./chunker";
import { dieWithParent, lowerPriority } from "./process-setup";
import { chunkChecked, failure, tokenizerFor } from "./parse-inline";
import { detectFromHead, parseDocument } from "./parsers/index";
import { StoredFileError, type Block, type PageRange, type ParseLimits } from "./types";

export interface ParseRequest {
  /** The stored file: a path the server made from a file id, never from user input. */
  path: string;
  filename: string;
  limits: ParseLimits;
  chunking: ChunkSize;
  /** The embedding model's tokenizer, so chunk sizes are counted as the model counts them. */
  tokenizer: TokenizerSpec;
  ocr: OcrSettings;
  natives: NativePaths;
  /** A PDF's page range (see PageRange); other formats are read whole. */
  pages?: PageRange;
}

/** A range reader is done with the document: it drops what it kept open for the ranges (no reply). */
export interface CloseRequest {
  close: true;
}

export type ParseReply =
  | { type: "ready" }
  | { type: "progress"; message: string }
  /** A split first range found this many pages; `split`: the rest can go to other processes now (else it is read whole here). */
  | { type: "pages"; pages: number; split: boolean }
  | { type: "part"; blocks: Block[]; units: BlockUnit[][]; scanned: number; ocrPages: number }
  | { type: "done"; format: string; text: string; chunks: ReturnType<typeof chunkBlocks>["chunks"]; ocrPages: number }
  /** `retry`: a fault of this server (a native library would not load), not of the file. */
  | { type: "failed"; code: IngestErrorCode; message: string; retry?: boolean };

// Threads started later (onnxruntime's, for OCR) inherit both.
lowerPriority(10);
dieWithParent(Number(process.env.RAGD_PARENT_PID ?? 0));

const reply = (m: ParseReply) => process.send!(m);

// Enough of a file to tell its format (as the pipeline's own check).
const HEAD_BYTES = 8192;

async function handle(req: ParseRequest | CloseRequest) {
  if ("close" in req) return (await import("./parsers/pdf")).closeKeptPdf();
  const { path, filename, limits, chunking, tokenizer, ocr, natives, pages } = req;
  let last = 0;
  const progress = (message: string) => {
    const now = Date.now();
    if (now - last < 250) return;
    last = now;
    reply({ type: "progress", message });
  };
  try {
    try {
      installBindings(natives);
    } catch (err) {
      throw new NativeLoadError(`a native library could not be loaded: ${String((err as Error)?.message ?? err).split("\n")[0]}`);
    }
    // A PDF is read from the file as PDFium asks for its parts (and a further range of one this
    // process holds open is not read again): the bytes that tell the format are enough here.
    const read = (what: Promise<Uint8Array>) => what.catch((e: unknown) => Promise.reject(new StoredFileError(e)));
    const head = await read(Bun.file(path).slice(0, HEAD_BYTES).bytes());
    const again = !!pages && !pages.split && (await import("./parsers/pdf")).keepsPdf(path);
    const whole = !again && detectFromHead(head, filename) !== "pdf";
    const bytes = whole ? await read(Bun.file(path).bytes()) : head;
    const ocrBefore = ocrPagesRead();
    const splitting = (n: number, split: boolean) => reply({ type: "pages", pages: n, split });
    const [doc, counter] = await Promise.all([parseDocument({ bytes, filename, limits, progress, ocr, natives, pages, splitting, keepOpen: path, ...(whole ? {} : { path }) }), tokenizerFor(tokenizer)]);
    if (doc.part) {
      const units = doc.blocks.map((b) => blockUnits(b, chunking, counter));
      reply({ type: "part", blocks: doc.blocks, units, scanned: doc.part.scanned, ocrPages: ocrPagesRead() - ocrBefore });
      return;
    }
    reply({ type: "progress", message: "chunking" });
    const { text, chunks } = chunkChecked(doc.blocks, limits, chunking, counter);
    reply({ type: "done", format: doc.format, text, chunks, ocrPages: ocrPagesRead() - ocrBefore });
  } catch (err) {
    failed(err);
  }
}


function failed(err: unknown) {
  reply(failure(err));
}

// One request at a time, in the order sent: the server sends the next only after an answer,
// but a close needs none.
let queue = Promise.resolve();
process.on("message", (m: ParseRequest | CloseRequest) => {
  // (handle answers a parse's own failure; a close that throws leaves nothing to answer)
  queue = queue.then(() => handle(m)).catch(() => {});
});
// The server went away (it closed the channel, or died): nothing is left to parse for.
process.on("disconnect", () => process.exit(0));
reply({ type: "ready" });
