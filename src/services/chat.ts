import { CITATION_RULE, formatSources, type Source } from "../answers/sources";
import { fail, RagdError } from "../errors";
import { textOf } from "../llm/chat";
import { SSE_HEADERS, sseBytes } from "../llm/sse";
import { Cancelled, ToolsRefused, type ModelServers } from "../llm/upstream";
import type { SearchInput, VectorStoresService } from "./vector-stores";

// /v1/chat/completions: passed through to the model server (streamed or not), so a client
// needs one base URL. When the request names stores (`file_search`, a ragd extension) or
// the server grounds every chat in the knowledge base, ragd searches with the last user
// message, puts the passages before it as a system message, and says which files it used
// in `sources` (on the completion, or on the first chunk of a stream).

export interface ChatFileSearch {
  vector_store_ids?: string[];
  max_num_results?: number;
  filters?: unknown;
  ranking_options?: SearchInput["ranking_options"];
}

export interface ChatInput {
  model?: string;
  messages: Record<string, unknown>[];
  stream?: boolean | null;
  file_search?: ChatFileSearch | null;
  [passedThrough: string]: unknown;
}

export interface ChatSource {
  index: number;
  file_id: string;
  filename: string;
  score: number;
  attributes: Record<string, string | number | boolean>;
}

export class ChatService {
  constructor(
    private readonly servers: ModelServers,
    private readonly stores: VectorStoresService,
    private readonly o: { grounding: "off" | "knowledge_base"; maxResults: number },
  ) {}

  /** Calls in progress, each ended by its client or by stop(). */
  private readonly active = new Set<AbortController>();
  private stopping = false;

  /** Ends every call in progress (the server is stopping). */
  stop() {
    this.stopping = true;
    for (const a of this.active) a.abort();
  }

  async complete(projectId: string, body: ChatInput, request: AbortSignal): Promise<Record<string, unknown> | Response> {
    if (this.stopping) throw fail("shutting_down", "ragd is shutting down; send the request again once it is back.");
    // One controller per call, dropped when the call ends (a signal combined with a
    // long-lived one would keep every request's listeners alive).
    const abort = new AbortController();
    const onClientGone = () => abort.abort();
    request.addEventListener("abort", onClientGone, { once: true });
    this.active.add(abort);
    const done = () => {
      request.removeEventListener("abort", onClientGone);
      this.active.delete(abort);
    };
    let streaming = false;
    try {
      const { server, model } = this.servers.route(body.model);
      const { file_search, ...rest } = body;
      const upstream: Record<string, unknown> = { ...rest, model };
      const sources = await this.ground(projectId, upstream, file_search ?? null);
      const res = await server.post(upstream, abort.signal);
      if (!body.stream) {
        const json = await server.json(res, abort.signal);
        return sources ? { ...json, sources } : json;
      }
      streaming = true;
      return new Response(this.relay(server.chunks.bind(server), res, sources, abort, done), { headers: SSE_HEADERS });
    } catch (e) {
      if (e instanceof Cancelled && this.stopping) throw fail("shutting_down", "ragd is shutting down; send the request again once it is back.");
      // the client's own tools: the model server's refusal of them is the answer
      if (e instanceof ToolsRefused) throw e.refusal;
      throw e;
    } finally {
      if (!streaming) done();
    }
  }

  /** Searches and adds the passages to the messages; the sources, or null when ragd did not ground this request. */
  private async ground(projectId: string, body: Record<string, unknown>, fs: ChatFileSearch | null): Promise<ChatSource[] | null> {
    if (!fs && this.o.grounding === "off") return null;
    const storeIds = fs?.vector_store_ids?.length ? fs.vector_store_ids : [await this.stores.defaultStore(projectId)];
    const messages = body.messages as Record<string, unknown>[];
    const lastUser = messages.findLastIndex((m) => m.role === "user");
    const query = lastUser < 0 ? "" : textOf(messages[lastUser]!.content).trim().slice(0, 1_000);
    if (!query) {
      await this.stores.searchable(projectId, storeIds, "file_search.vector_store_ids");
      return [];
    }
    const hits = await this.stores.searchStores(projectId, storeIds, [query], { max_num_results: fs?.max_num_results ?? this.o.maxResults, filters: fs?.filters, ranking_options: fs?.ranking_options }, "file_search.vector_store_ids");
    const found: Source[] = hits.map((h, i) => ({ ...h, n: i + 1 }));
    if (found.length) {
      const note = { role: "system", content: `Passages from the user's documents that may answer their next message. ${CITATION_RULE}\n\n${formatSources(found)}` };
      body.messages = [...messages.slice(0, lastUser), note, ...messages.slice(lastUser)];
    }
    return found.map((s) => ({ index: s.n, file_id: s.fileId, filename: s.filename, score: s.score, attributes: s.attributes }));
  }

  /** The model server's stream, relayed event by event; `sources` rides on the first chunk. */
  private relay(chunks: (res: Response, signal: AbortSignal) => AsyncGenerator<unknown>, res: Response, sources: ChatSource[] | null, abort: AbortController, done: () => void) {
    let first = true;
    let iterator: AsyncGenerator<unknown> | null = null;
    let ended = false;
    const end = () => {
      if (!ended) done();
      ended = true;
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        iterator ??= chunks(res, abort.signal);
        try {
          const next = await iterator.next();
          if (next.done) {
            controller.enqueue(sseBytes("[DONE]"));
            controller.close();
            end();
            return;
          }
          const chunk = next.value as Record<string, unknown>;
          controller.enqueue(sseBytes(first && sources ? { ...chunk, sources } : chunk));
          first = false;
        } catch (e) {
          end();
          if (e instanceof Cancelled) {
            // Stopping the server, the client is told why its stream ends; a client that left hears nothing.
            if (this.stopping) controller.enqueue(sseBytes(fail("shutting_down", "ragd is shutting down; send the request again once it is back.").toJSON()));
            return controller.close();
          }
          // Mid-stream, a failure can only be told in the stream: OpenAI's error event.
          const err = e instanceof RagdError ? e : fail("model_server_unreachable", `The model server's stream failed: ${(e as Error).message}`);
          controller.enqueue(sseBytes(err.toJSON()));
          controller.close();
        }
      },
      cancel: async () => {
        abort.abort();
        end();
        await iterator?.return(undefined).catch(() => {});
      },
    });
  }
}
