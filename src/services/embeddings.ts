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
    const input = body.input;
    if (typeof input !== "string" && input.some((t) => typeof t !== "string"))
      throw fail("invalid_value", "this server embeds text; token-id arrays are not accepted for input", "input");
    const texts = typeof input === "string" ? [input] : (input as string[]);
    const { vectors, tokens } = await embedOrUnavailable(this.provider, texts);
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
