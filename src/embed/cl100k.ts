// Token ids of cl100k_base, the tokenizer of OpenAI's embedding models, back to text. Clients
// that count tokens before they embed send ids instead of text (LangChain's OpenAIEmbeddings
// does by default); this server's own model reads the text they stand for.
import ranks from "js-tiktoken/ranks/cl100k_base";

/** Ids of ordinary tokens run from 0 to this; the special ones (<|endoftext|> and the like) are not text. */
export const LAST_TEXT_TOKEN = 100_255;

interface Table {
  bytes: Uint8Array;
  /** Where token i's bytes start in `bytes`; its end is the next one's start. */
  starts: Uint32Array;
}

let table: Table | null = null;

// The ranks file lists the tokens' bytes in base64, in id order from an offset, one line each.
function load(): Table {
  const pieces: Uint8Array[] = [];
  for (const line of ranks.bpe_ranks.split("\n")) {
    if (!line) continue;
    const [, offset, ...tokens] = line.split(" ");
    if (Number(offset) !== pieces.length) throw new Error("cl100k_base ranks out of order");
    for (const t of tokens) pieces.push(Buffer.from(t, "base64"));
  }
  if (pieces.length !== LAST_TEXT_TOKEN + 1) throw new Error(`cl100k_base holds ${pieces.length} tokens, not ${LAST_TEXT_TOKEN + 1}`);
  const starts = new Uint32Array(pieces.length + 1);
  for (let i = 0; i < pieces.length; i++) starts[i + 1] = starts[i]! + pieces[i]!.length;
  const bytes = new Uint8Array(starts[pieces.length]!);
  pieces.forEach((p, i) => bytes.set(p, starts[i]!));
  return { bytes, starts };
}

const utf8 = new TextDecoder("utf-8");

/** The index of the first id that is not an ordinary token, or -1. */
export function firstUnknownToken(ids: number[]): number {
  return ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id > LAST_TEXT_TOKEN);
}

/**
 * The text of ordinary token ids (check them with firstUnknownToken first). A list cut inside
 * a character's bytes (a long text sent in pieces) decodes that character as U+FFFD.
 */
export function decodeTokens(ids: number[]): string {
  const { bytes, starts } = (table ??= load());
  let length = 0;
  for (const id of ids) length += starts[id + 1]! - starts[id]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const id of ids) {
    out.set(bytes.subarray(starts[id]!, starts[id + 1]!), at);
    at += starts[id + 1]! - starts[id]!;
  }
  return utf8.decode(out);
}
