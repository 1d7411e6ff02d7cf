import type { EmbeddingModel, EmbeddingProvider, Embeddings } from "./provider";
import { EmbedError } from "./provider";
import { normalizeRows } from "./normalize";
import { withoutCredentials } from "../util/redact";
import { loadTokenizer } from "./tokenizers";
import type { Tokenizer } from "./tokenizer";

export interface RemoteOptions {
  /** Base URL of an OpenAI-compatible API, e.g. https://api.openai.com/v1 */
  url: string;
  apiKey: string;
  model: string;
  maxTokens: number;
  batchSize?: number;
  timeoutMs?: number;
}

const RETRIES = 3;

/** Any OpenAI-compatible `/v1/embeddings` endpoint. */
export class RemoteProvider implements EmbeddingProvider {
  readonly tokenizerSpec = { kind: "approximate" } as const;

  private constructor(
    readonly model: EmbeddingModel,
    readonly tokenizer: Tokenizer,
    private readonly o: RemoteOptions,
  ) {}

  static async open(o: RemoteOptions): Promise<RemoteProvider> {
    const tokenizer = await loadTokenizer({ kind: "approximate" });
    const probe = new RemoteProvider({ id: o.model, dims: 0, maxTokens: o.maxTokens, ownedBy: new URL(o.url).host }, tokenizer, o);
    // The dimension is what the endpoint returns; asking once at start also proves the URL and key.
    const { vectors } = await probe.embed(["dimension probe"], "query");
    return new RemoteProvider({ ...probe.model, dims: vectors[0]!.length }, tokenizer, o);
  }

  async embed(texts: string[], _priority: string): Promise<Embeddings> {
    const size = this.o.batchSize ?? 128;
    const vectors: Float32Array[] = [];
    const tokens: number[] = [];
    for (let at = 0; at < texts.length; at += size) {
      const batch = texts.slice(at, at + size);
      const body = await this.request(batch);
      const data = [...body.data].sort((a, b) => a.index - b.index);
      if (data.length !== batch.length) throw new EmbedError(`the embeddings endpoint returned ${data.length} vectors for ${batch.length} inputs`);
      for (const d of data) {
        // The index and the stored vectors have the dimension probed at start; another would be stored and then refused by the index.
        if (this.model.dims && d.embedding.length !== this.model.dims) throw new EmbedError(`the embeddings endpoint returned ${d.embedding.length} dimensions, ${this.model.dims} at start: restart ragd (and run \`ragd reindex\` if the model changed)`);
        vectors.push(normalizeRows(Float32Array.from(d.embedding), d.embedding.length));
      }
      for (const t of batch) tokens.push(Math.min(this.o.maxTokens, this.tokenizer.count(t)));
    }
    return { vectors, tokens };
  }

  private async request(input: string[]): Promise<{ data: { index: number; embedding: number[] }[] }> {
    let last = "";
    for (let attempt = 1; attempt <= RETRIES; attempt++) {
      try {
        const res = await fetch(`${this.o.url.replace(/\/$/, "")}/embeddings`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${this.o.apiKey}` },
          body: JSON.stringify({ model: this.o.model, input, encoding_format: "float" }),
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 60_000),
        });
        if (res.ok) return (await res.json()) as { data: { index: number; embedding: number[] }[] };
        last = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
        if (res.status < 500 && res.status !== 429) break;
      } catch (e) {
        last = String((e as Error)?.message ?? e);
      }
      await Bun.sleep(500 * 2 ** attempt);
    }
    throw new EmbedError(`the embeddings endpoint ${withoutCredentials(this.o.url)} failed: ${last}`);
  }

  async close() {}
}
