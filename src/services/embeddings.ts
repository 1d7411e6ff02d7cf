import type { EmbeddingProvider } from "../embed/provider";
import { EmbedError } from "../embed/provider";
import { fail } from "../errors";

/** The request as its schema (http/schemas/embeddings.ts) admits it. */
export interface EmbeddingInput {
  input: string | string[] | number[] | number[][];
  model: string;
  encoding_format?: "float" | "base64";
  dimensions?: number;
  user?: string;
}
const DEFAULT_ALIAS = "default";

/** `/v1/embeddings` and `/v1/models`: the configured model, in OpenAI's shapes. */
export class EmbeddingsService {
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(private readonly provider: EmbeddingProvider) {}

  get model() {
    return this.provider.model;
  }

  modelObject() {
    return { id: this.provider.model.id, object: "model" as const, created: this.created, owned_by: this.provider.model.ownedBy };
  }

  async create(body: EmbeddingInput) {
    if (body.model !== this.provider.model.id && body.model !== DEFAULT_ALIAS) throw modelNotFound(body.model);
    const format = body.encoding_format ?? "float";
    if (body.dimensions !== undefined && body.dimensions !== this.provider.model.dims)
      throw fail("invalid_value", `${this.provider.model.id} returns ${this.provider.model.dims} dimensions and cannot shorten them; omit 'dimensions'`, "dimensions");
    const { vectors, tokens } = await embedOrUnavailable(this.provider, await inputTexts(body.input));
    const used = tokens.reduce((a, b) => a + b, 0);
    return {
      object: "list" as const,
      data: vectors.map((v, index) => ({
        object: "embedding" as const,
        index,
        embedding: format === "base64" ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : Array.from(v),
      })),
      model: this.provider.model.id,
      usage: { prompt_tokens: used, total_tokens: used },
    };
  }
}

const MOST_IDS_AN_INPUT = 8191;
const MOST_IDS_A_REQUEST = 300_000;

/**
 * The texts to embed. Token ids are cl100k_base's, as OpenAI's embedding models read them: a
 * list of ids is one input, a list of such lists one input each.
 */
async function inputTexts(input: EmbeddingInput["input"]): Promise<string[]> {
  if (typeof input === "string") return [input];
  if (input.every((t) => typeof t === "string")) return input as string[];
  const { decodeTokens, firstUnknownToken, LAST_TEXT_TOKEN } = await import("../embed/cl100k");
  const nested = Array.isArray(input[0]);
  const lists = nested ? (input as number[][]) : [input as number[]];
  // OpenAI's own bounds for its embedding models; a token decodes to as many as 128 bytes
  let total = 0;
  lists.forEach((ids, i) => {
    if (ids.length > MOST_IDS_AN_INPUT)
      throw fail("invalid_value", `${nested ? `input[${i}]` : "input"} holds ${ids.length} token ids; an input takes at most ${MOST_IDS_AN_INPUT}, as OpenAI's embedding models do`, "input");
    total += ids.length;
  });
  if (total > MOST_IDS_A_REQUEST) throw fail("invalid_value", `input holds ${total} token ids in all; a request takes at most ${MOST_IDS_A_REQUEST}, as OpenAI's does. Send them in several requests.`, "input");
  return lists.map((ids, i) => {
    const bad = firstUnknownToken(ids);
    if (bad >= 0) {
      const where = nested ? `input[${i}][${bad}]` : `input[${bad}]`;
      throw fail("invalid_value", `${where} is ${ids[bad]}, which is not a text token of cl100k_base (the tokenizer of OpenAI's embedding models, ids 0 to ${LAST_TEXT_TOKEN}); send the text instead`, "input");
    }
    return decodeTokens(ids);
  });
}

const modelNotFound = (id: string) =>
  fail("model_not_found", `The model '${id}' does not exist on this server; GET /v1/models lists the models it serves.`, "model");

/** Query-time embedding; a failing model or remote API is a 503 the client may retry, never a bare 500. */
export async function embedOrUnavailable(provider: EmbeddingProvider, texts: string[]) {
  try {
    return await provider.embed(texts, "query");
  } catch (e) {
    if (e instanceof EmbedError) throw fail("embedding_unavailable", `The embedding model ${provider.model.id} could not embed the input: ${e.message}`);
    throw e;
  }
}
