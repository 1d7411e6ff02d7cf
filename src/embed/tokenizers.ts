import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { approximateTokens } from "../ingest/chunker";
import { UnigramTokenizer, type Tokenizer } from "./tokenizer";

/** How to build a provider's tokenizer; plain data, so a Worker can build its own. */
export type TokenizerSpec =
  | { kind: "unigram"; vocabPath: string }
  | { kind: "hf"; dir: string }
  // Remote models: only counting is needed locally (chunk sizes), and an estimate will do.
  | { kind: "approximate" };

class HfTokenizer implements Tokenizer {
  constructor(private readonly inner: { encode(text: string): { ids: number[] } }) {}
  encode(text: string) {
    return this.inner.encode(text).ids;
  }
  count(text: string) {
    return this.encode(text).length;
  }
}

export async function loadTokenizer(spec: TokenizerSpec): Promise<Tokenizer> {
  if (spec.kind === "unigram") return new UnigramTokenizer(JSON.parse(readFileSync(spec.vocabPath, "utf8")));
  if (spec.kind === "hf") {
    const { Tokenizer: Hf } = await import("@huggingface/tokenizers");
    const json = JSON.parse(readFileSync(join(spec.dir, "tokenizer.json"), "utf8"));
    const cfgPath = join(spec.dir, "tokenizer_config.json");
    const config = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
    return new HfTokenizer(new Hf(json, config));
  }
  return { encode: () => [], count: (t) => approximateTokens.count(t) };
}

/** Keeps a sequence within the model's limit, keeping a trailing special token (BERT's [SEP]) in place. */
export function truncate(ids: number[], max: number, keepLast: boolean): number[] {
  if (ids.length <= max) return ids;
  return keepLast ? [...ids.slice(0, max - 1), ids[ids.length - 1]!] : ids.slice(0, max);
}
