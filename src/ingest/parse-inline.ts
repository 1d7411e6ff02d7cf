// What a parse process and the server share about turning a document into chunks, and the
// one case the server reads itself: a small plain-text file. Its parse is decoding and
// splitting a few kilobytes, where the round trip through a parse process (about 2.5 ms of
// CPU a file, against 0.3 for the parse) was most of ingestion's cost beside the model.
import { loadTokenizer, type TokenizerSpec } from "../embed/tokenizers";
import { NativeLoadError } from "../native/sharp";
import { chunkBlocks, type BlockUnit, type ChunkSize, type TokenCounter } from "./chunker";
import type { ParseReply } from "./parse-child";
import { parseDocument, type Format } from "./parsers/index";
import { ParseError, StoredFileError, tooMuchText, type Block, type ParseInput, type ParseLimits } from "./types";

/** Formats read by plain decoding, which the server reads itself when the whole file is at hand. */
const INLINE: ReadonlySet<string> = new Set<Format>(["text", "markdown"]);

export const readsInline = (format: string) => INLINE.has(format);

/** The chunks of a document's blocks, refused past the text limit. */
export function chunkChecked(blocks: Block[], limits: ParseLimits, chunking: ChunkSize, counter: TokenCounter, units?: BlockUnit[][]) {
  let chars = 0;
  for (const b of blocks) chars += b.text.length;
  if (chars > limits.maxTextChars) throw tooMuchText(limits.maxTextChars);
  return chunkBlocks(blocks, chunking, counter, units);
}

/** A parse's failure as its reply: the file's fault (final), or this server's (retried). */
export function failure(err: unknown): Extract<ParseReply, { type: "failed" }> {
  if (err instanceof NativeLoadError) return { type: "failed", code: "server_error", message: `this server could not read the file: ${err.message}`, retry: true };
  if (err instanceof StoredFileError) return { type: "failed", code: "server_error", message: err.message, retry: true };
  // A library throwing on a damaged file is a property of the file: retrying won't help.
  if (err instanceof ParseError) return { type: "failed", code: err.code, message: err.message };
  return { type: "failed", code: "invalid_file", message: `the file could not be read; it may be corrupt (${String((err as Error)?.message ?? err).slice(0, 160)})` };
}

// A process keeps its tokenizer (a reused parse process, the server for small files):
// loading the vocabulary costs more than a small file.
let tokenizer: { key: string; counter: Promise<TokenCounter> } | null = null;
export function tokenizerFor(spec: TokenizerSpec): Promise<TokenCounter> {
  const key = JSON.stringify(spec);
  if (tokenizer?.key !== key) tokenizer = { key, counter: loadTokenizer(spec) };
  return tokenizer.counter;
}

/** A small plain-text file, whole in `input.bytes`, parsed and chunked as a parse process would. */
export async function parseInline(input: Omit<ParseInput, "progress">, chunking: ChunkSize, spec: TokenizerSpec): Promise<ParseReply> {
  try {
    const [doc, counter] = await Promise.all([parseDocument({ ...input, progress: () => {} }), tokenizerFor(spec)]);
    const { text, chunks } = chunkChecked(doc.blocks, input.limits, chunking, counter);
    return { type: "done", format: doc.format, text, chunks, ocrPages: 0 };
  } catch (err) {
    return failure(err);
  }
}
