// Parses one document per message. The owner terminates the worker after any format read by
// a third-party library (or at the time budget), so whatever a crafted file does to this
// thread's heap or prototypes dies with it; parse-pool.ts lists the formats it reuses after.
import { loadTokenizer, type TokenizerSpec } from "../embed/tokenizers";
import { chunkBlocks, type ChunkSize } from "./chunker";
import { lowerThreadPriority } from "./low-priority";
import { parseDocument } from "./parsers/index";
import { ParseError, type ParseLimits } from "./types";
import type { OcrSettings } from "../ocr/engine";
import { useNativeGuard } from "../native/guard";
import { NativeLoadError } from "../native/sharp";
import { installBindings, type NativePaths } from "../native/assets";

export interface ParseRequest {
  bytes: Uint8Array;
  filename: string;
  limits: ParseLimits;
  chunking: ChunkSize;
  /** The embedding model's tokenizer, so chunk sizes are counted as the model counts them. */
  tokenizer: TokenizerSpec;
  ocr: OcrSettings;
  /** Shared with the owner, which terminates this worker only outside native code. */
  guard: SharedArrayBuffer;
  natives: NativePaths;
}

export type ParseReply =
  | { type: "progress"; message: string }
  | { type: "done"; format: string; text: string; chunks: ReturnType<typeof chunkBlocks>["chunks"] }
  /** `retry`: a fault of this server (a native library would not load), not of the file. */
  | { type: "failed"; message: string; retry?: boolean };

declare const self: Worker;

lowerThreadPriority();

const reply = (m: ParseReply) => self.postMessage(m);

// A reused worker keeps its tokenizer: loading the vocabulary costs more than a small file.
let tokenizerCache: { key: string; tokenizer: ReturnType<typeof loadTokenizer> } | null = null;
function tokenizerFor(spec: TokenizerSpec) {
  const key = JSON.stringify(spec);
  if (tokenizerCache?.key !== key) tokenizerCache = { key, tokenizer: loadTokenizer(spec) };
  return tokenizerCache.tokenizer;
}

self.onmessage = async (e: MessageEvent<ParseRequest>) => {
  const { bytes, filename, limits, chunking, tokenizer, ocr, guard } = e.data;
  useNativeGuard(guard);
  let last = 0;
  const progress = (message: string) => {
    const now = Date.now();
    if (now - last < 250) return;
    last = now;
    reply({ type: "progress", message });
  };
  try {
    try {
      installBindings(e.data.natives);
    } catch (err) {
      throw new NativeLoadError(`a native library could not be loaded: ${String((err as Error)?.message ?? err).split("\n")[0]}`);
    }
    const [doc, counter] = await Promise.all([parseDocument({ bytes, filename, limits, progress, ocr, natives: e.data.natives }), tokenizerFor(tokenizer)]);
    progress("chunking");
    const { text, chunks } = chunkBlocks(doc.blocks, chunking, counter);
    reply({ type: "done", format: doc.format, text, chunks });
  } catch (err) {
    if (err instanceof NativeLoadError) {
      reply({ type: "failed", message: `this server could not read the file: ${err.message}`, retry: true });
      return;
    }
    // A library throwing on a damaged file is a property of the file: retrying won't help.
    const message = err instanceof ParseError ? err.message : `the file could not be read; it may be corrupt (${String((err as Error)?.message ?? err).slice(0, 160)})`;
    reply({ type: "failed", message });
  }
};
