import type { Tokenizer } from "./tokenizer";
import type { TokenizerSpec } from "./tokenizers";

export interface EmbeddingModel {
  /** The id clients pass as `model` and that every stored vector is tagged with. */
  id: string;
  dims: number;
  /** The most tokens the model reads; chunks never exceed it. */
  maxTokens: number;
  ownedBy: string;
}

export type EmbedPriority = "query" | "ingest";

export interface Embeddings {
  /** One L2-normalised vector per input, in input order. */
  vectors: Float32Array[];
  /** Tokens the model read per input (after truncation). */
  tokens: number[];
}

/** One embedding backend: the bundled model, a local ONNX export, or a remote OpenAI-compatible API. */
export interface EmbeddingProvider {
  readonly model: EmbeddingModel;
  /** For counting chunk sizes in parse workers, which build their own copy. */
  readonly tokenizerSpec: TokenizerSpec;
  readonly tokenizer: Tokenizer;
  /** Queries jump ahead of ingestion so a search never waits behind a large document. */
  embed(texts: string[], priority: EmbedPriority): Promise<Embeddings>;
  close(): Promise<void>;
}

export class EmbedError extends Error {}
