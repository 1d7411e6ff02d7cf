import type { Config, UpstreamSetting } from "../config";
import { withoutCredentials } from "../util/redact";
import { fail, RagdError } from "../errors";
import { log } from "../util/log";
import { metrics } from "../metrics";
import { readSse, SilenceTimeout } from "./sse";

// The model servers ragd sends answers to: any OpenAI-compatible /v1/chat/completions
// (vLLM, Ollama, llama.cpp's server, LM Studio, OpenAI). ragd never generates text itself.

export interface ChatToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function?: { name?: string; arguments?: string };
}

export interface ChatChunk {
  id?: string;
  model?: string;
  choices?: { index: number; delta?: { role?: string; content?: string | null; tool_calls?: ChatToolCallDelta[] }; finish_reason?: string | null }[];
  usage?: ChatUsage | null;
}

export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

/** The client went away or cancelled: nothing is reported, the upstream request is dropped. */
export class Cancelled extends Error {}

/** The model server refused the tools it was offered (a model or server without tool calls). */
export class ToolsRefused extends Error {
  constructor(
    message: string,
    /** The refusal as a request that named the tools itself is answered (chat completions). */
    readonly refusal: RagdError,
  ) {
    super(message);
  }
}

const MODELS_TIMEOUT_MS = 2_000;
const MODELS_CACHE_MS = 60_000;

export class ModelServer {
  /** Models that refused tool calls in this process's life: they get ragd's search on the input instead. */
  private readonly refusedTools = new Set<string>();
  private listed: { at: number; ids: string[] } | null = null;

  constructor(
    readonly name: string,
    readonly url: string,
    private readonly apiKey: string | null,
    /** The ids it serves; empty for --llm-url, which takes any id not claimed by another. */
    readonly models: string[],
    private readonly tools: "auto" | "on" | "off",
    private readonly timeoutMs: number,
  ) {}

  takesTools(model: string) {
    return this.tools === "on" || (this.tools === "auto" && !this.refusedTools.has(model));
  }

  /** After a refusal with tools: false when tools are forced on (the refusal stands). */
  learnToolsRefused(model: string): boolean {
    if (this.tools === "on") return false;
    if (!this.refusedTools.has(model)) log.info("model server refused tool calls; ragd will search with the user's input instead", { upstream: this.name, model });
    this.refusedTools.add(model);
    return true;
  }

  private headers() {
    return { "content-type": "application/json", accept: "application/json, text/event-stream", ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}) };
  }

  /**
   * POSTs to /chat/completions and returns the response once its headers are in, within
   * the timeout. Non-2xx answers become the OpenAI envelope (see `refusal`).
   */
  async post(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    const started = performance.now();
    try {
      const res = await this.postUntimed(body, signal);
      this.started.set(res, started);
      return res;
    } catch (e) {
      this.observe(started, e);
      throw e;
    }
  }

  /** When each answer's request was sent, so its duration is known when the answer ends. */
  private readonly started = new WeakMap<Response, number>();

  private observe(started: number | undefined, error: unknown) {
    if (started === undefined) return;
    const outcome = error === null ? "ok" : error instanceof RagdError ? error.code : error instanceof Cancelled ? "cancelled" : error instanceof ToolsRefused ? "tools_refused" : "error";
    metrics.modelServer(this.name, outcome, (performance.now() - started) / 1000);
  }

  private async postUntimed(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    // Aborting this ends the request, and also the reading of its body (a locked body cannot
    // be cancelled any other way): how a silent non-streamed answer is cut at the timeout.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.timeoutMs);
    let res: Response;
    try {
      res = await fetch(`${this.url}/chat/completions`, {
        method: "POST",
        headers: this.headers(),
        body: JSON.stringify(body),
        signal: AbortSignal.any([signal, timeout.signal]),
      });
    } catch (e) {
      if (signal.aborted) throw new Cancelled();
      if (timeout.signal.aborted) throw this.timedOut();
      throw fail("model_server_unreachable", `The model server ${this.name} at ${withoutCredentials(this.url)} cannot be reached: ${(e as Error).message}. Check --llm-url and that the server is running.`);
    } finally {
      clearTimeout(timer);
    }
    if (res.ok) {
      this.bodyTimeouts.set(res, timeout);
      return res;
    }
    const cut = setTimeout(() => timeout.abort(), this.timeoutMs);
    const text = await readCapped(res, 64 * 1024)
      .catch(() => "")
      .finally(() => clearTimeout(cut));
    const refusal = this.refusal(res.status, text, res.headers, String(body.model));
    if (refusesTools(body, res.status, text)) throw new ToolsRefused(text, new RagdError(refusal.code, refusal.message, refusal.param ?? "tools", refusal.headers, refusal.wireCode));
    throw refusal;
  }

  /** The controller whose abort ends a response's body (see postUntimed). */
  private readonly bodyTimeouts = new WeakMap<Response, AbortController>();

  /** A non-streamed answer's JSON, read within the timeout. */
  async json(res: Response, signal: AbortSignal): Promise<Record<string, unknown>> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.bodyTimeouts.get(res)?.abort();
    }, this.timeoutMs);
    let error: unknown = null;
    try {
      const v = await res.json();
      if (typeof v !== "object" || v === null) throw new Error("not a JSON object");
      return v as Record<string, unknown>;
    } catch (e) {
      error = signal.aborted
        ? new Cancelled()
        : timedOut
          ? this.timedOut()
          : fail("model_server_unreachable", `The model server ${this.name} sent an answer ragd cannot read: ${(e as Error).message}`);
      throw error;
    } finally {
      this.observe(this.started.get(res), error);
      clearTimeout(timer);
    }
  }

  /** The chunks of a streamed answer; silence past the timeout is a 504, a broken stream a 502. */
  async *chunks(res: Response, signal: AbortSignal): AsyncGenerator<ChatChunk> {
    if (!res.body) return;
    // The client's abort reaches the body through the request's own signal (see post).
    let error: unknown = null;
    try {
      for await (const ev of readSse(res.body, this.timeoutMs)) {
        if (ev.data === "[DONE]") return;
        let chunk: unknown;
        try {
          chunk = JSON.parse(ev.data);
        } catch {
          throw fail("model_server_unreachable", `The model server ${this.name} sent a stream event that is not JSON: ${ev.data.slice(0, 200)}`);
        }
        const error = (chunk as { error?: { message?: string } }).error;
        if (error) throw fail("model_server_unreachable", `The model server ${this.name} failed mid-answer: ${error.message ?? JSON.stringify(error)}`);
        yield chunk as ChatChunk;
      }
    } catch (e) {
      error = signal.aborted
        ? new Cancelled()
        : e instanceof SilenceTimeout
          ? this.timedOut()
          : e instanceof RagdError
            ? e
            : fail("model_server_unreachable", `The model server ${this.name} broke off its answer: ${(e as Error).message}`);
      throw error;
    } finally {
      this.observe(this.started.get(res), error);
    }
  }

  /** The ids the server itself lists (GET /models), cached for a minute; [] when it does not answer. */
  async listModels(): Promise<string[]> {
    if (this.listed && Date.now() - this.listed.at < MODELS_CACHE_MS) return this.listed.ids;
    let ids: string[] = [];
    try {
      const res = await fetch(`${this.url}/models`, { headers: this.headers(), signal: AbortSignal.timeout(MODELS_TIMEOUT_MS) });
      if (res.ok) {
        const body = (await res.json()) as { data?: { id?: unknown }[] };
        ids = (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
      }
    } catch {
      // the configured ids still stand
    }
    this.listed = { at: Date.now(), ids };
    return ids;
  }

  private timedOut() {
    return fail("model_server_timeout", `The model server ${this.name} did not answer within ${Math.round(this.timeoutMs / 1000)} s (--llm-timeout).`);
  }

  /**
   * A non-2xx answer as the OpenAI envelope: 429 passed on with the headers that say when to
   * come back, 5xx as 502, the server's own message quoted; a 4xx keeps the server's own
   * `code` and `param` when its body is OpenAI's envelope (a client may act on
   * `context_length_exceeded`).
   */
  private refusal(status: number, text: string, headers: Headers, model: string): RagdError {
    let message = text.slice(0, 2000);
    let code: string | null = null;
    let param: string | null = null;
    try {
      const j = JSON.parse(text) as { error?: { message?: string; code?: unknown; param?: unknown } | string; message?: string; detail?: unknown };
      const m = typeof j.error === "string" ? j.error : (j.error?.message ?? j.message ?? (typeof j.detail === "string" ? j.detail : null));
      if (m) message = m;
      if (typeof j.error === "object" && j.error) {
        if (typeof j.error.code === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(j.error.code)) code = j.error.code;
        if (typeof j.error.param === "string" && j.error.param.length <= 200) param = j.error.param;
      }
    } catch {
      // not JSON: quote the text
    }
    const said = `The model server ${this.name} answered ${status}${message ? `: ${message}` : ""}`;
    if (status === 429) {
      const passed: Record<string, string> = {};
      headers.forEach((v, k) => {
        if (k === "retry-after" || k === "retry-after-ms" || k.startsWith("x-ratelimit-")) passed[k] = v;
      });
      return new RagdError("rate_limit_exceeded", said, null, passed);
    }
    // (another try sends the same key: the SDKs would retry a 502 twice for nothing)
    if (status === 401 || status === 403) return new RagdError("model_server_unreachable", `${said}. Check the key ragd sends it (--llm-api-key).`, null, { "x-should-retry": "false" });
    if (status === 404) return fail("model_not_found", `${said}. Check that it serves the model '${model}' and that its URL ends in /v1.`, "model");
    if (status === 408 || status === 504) return fail("model_server_timeout", said);
    if (status >= 500) return fail("model_server_unreachable", said);
    return new RagdError("model_server_rejected", said, param, {}, code);
  }
}

/**
 * A refusal of the tools themselves (a model or server without tool calls), told apart from
 * other 4xx that mention tools (a tool message without its call): only the first is learned.
 */
const TOOLS_UNSUPPORTED = /does not support tools|tools? (?:is|are) not supported|not support(?:ed)? (?:for )?tool|tool[ _]?choice[^.]*(?:requires|not supported)|--enable-auto-tool-choice|--tool-call-parser|--jinja|tools param/i;

function refusesTools(body: Record<string, unknown>, status: number, text: string) {
  if (!body.tools || ![400, 422, 500].includes(status) || !TOOLS_UNSUPPORTED.test(text)) return false;
  const messages = (body.messages ?? []) as { role?: string }[];
  return !messages.some((m) => m.role === "tool");
}

async function readCapped(res: Response, max: number): Promise<string> {
  const buf = new Uint8Array(await res.arrayBuffer());
  return new TextDecoder().decode(buf.subarray(0, max));
}

export interface Routed {
  server: ModelServer;
  model: string;
}

/** Which model server answers which model id. */
export class ModelServers {
  readonly servers: ModelServer[];
  private readonly fallback: ModelServer | null;

  constructor(
    upstreams: UpstreamSetting[],
    single: { url: string | null; apiKey: string | null; model: string | null; tools: "auto" | "on" | "off" },
    timeoutMs: number,
    private readonly defaultModel = single.model,
  ) {
    this.servers = upstreams.map((u) => new ModelServer(u.name, withV1(u.url), u.apiKey, u.models, u.tools, timeoutMs));
    this.fallback = single.url ? new ModelServer("default", withV1(single.url), single.apiKey, single.model ? [single.model] : [], single.tools, timeoutMs) : null;
    if (this.fallback) this.servers.push(this.fallback);
  }

  static fromConfig(c: Config) {
    return new ModelServers(c.llmUpstreams, { url: c.llmUrl, apiKey: c.llmApiKey, model: c.llmModel, tools: c.llmTools }, c.llmTimeoutSeconds * 1000);
  }

  get configured() {
    return this.servers.length > 0;
  }

  /** The server for `model` (or for the default model when none is named). */
  route(model: string | null | undefined): Routed {
    if (!this.configured)
      throw fail(
        "model_server_not_configured",
        "ragd has no model server to write answers with. Start it with --llm-url (RAGD_LLM_URL) set to an OpenAI-compatible base URL, such as http://localhost:11434/v1 for Ollama or http://localhost:8000/v1 for vLLM, and --llm-model for the default model.",
      );
    const id = model ?? this.defaultModel ?? this.servers.find((s) => s.models.length)?.models[0];
    if (!id) throw fail("missing_required_parameter", "model is required: this server has no default chat model (--llm-model)", "model");
    const named = this.servers.find((s) => s !== this.fallback && s.models.includes(id));
    const server = named ?? this.fallback;
    if (!server)
      throw fail("model_not_found", `The model '${id}' is not served here; GET /v1/models lists the models ragd can answer with (${this.servers.flatMap((s) => s.models).join(", ")}).`, "model");
    return { server, model: id };
  }

  /** Chat model ids with the server that answers each: the configured ones, and what --llm-url lists itself. */
  async models(): Promise<{ id: string; ownedBy: string }[]> {
    const out = new Map<string, string>();
    for (const s of this.servers) for (const m of s.models) if (!out.has(m)) out.set(m, s.name);
    if (this.fallback) for (const m of await this.fallback.listModels()) if (!out.has(m)) out.set(m, this.fallback.name);
    return [...out].map(([id, ownedBy]) => ({ id, ownedBy }));
  }
}

/** A base URL given without a path (http://localhost:11434) means its /v1. */
function withV1(url: string) {
  const u = new URL(url);
  return u.pathname === "/" || u.pathname === "" ? `${url.replace(/\/+$/, "")}/v1` : url;
}
