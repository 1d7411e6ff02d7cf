import { readInput, type FileReader, type Item } from "../answers/input";
import { FILE_SEARCH_TOOL, respond, type FileSearchSpec, type RunSpec, type ToolChoice } from "../answers/respond";
import type { Cited } from "../answers/sources";
import { fail, notFound, RagdError } from "../errors";
import type { ChatMessage, ChatTool } from "../llm/chat";
import { SSE_HEADERS, sseBytes } from "../llm/sse";
import { Cancelled, type ModelServers } from "../llm/upstream";
import type { ResponseRow, ResponsesRepo, ResponseStatus } from "../storage/repos";
import { isResponseId, newItemId, newResponseId, randomBase62, responseOfItem } from "../util/ids";
import { log } from "../util/log";
import type { SearchInput, VectorStoresService } from "./vector-stores";
import type { FilesService } from "./files";
import { EMBEDDABLE } from "./files";
import { parseFilter } from "./filters";

// /v1/responses: a request read and checked, the conversation it continues gathered, the
// answer written (answers/respond.ts) against a model server, and the response kept (unless
// `store: false`) for retrieval and for the next turn's previous_response_id.

/** The request as its schema (http/schemas/responses.ts) admits it; the rest is checked here. */
export interface CreateResponseInput {
  model?: string;
  input?: string | unknown[];
  instructions?: string | null;
  tools?: Record<string, unknown>[];
  tool_choice?: unknown;
  include?: string[] | null;
  previous_response_id?: string | null;
  store?: boolean | null;
  stream?: boolean | null;
  background?: boolean | null;
  temperature?: number | null;
  top_p?: number | null;
  max_output_tokens?: number | null;
  max_tool_calls?: number | null;
  metadata?: Record<string, string> | null;
  text?: { format?: Record<string, unknown>; verbosity?: string | null } | null;
  parallel_tool_calls?: boolean | null;
  reasoning?: unknown;
  truncation?: string | null;
  user?: string;
  conversation?: unknown;
  prompt?: unknown;
  moderation?: unknown;
  [other: string]: unknown;
}

export interface ResponsesOptions {
  /** Passages per search when the request does not say (--answer-max-results). */
  maxResults: number;
  /** How long an input_file still being processed is waited for. */
  fileWaitMs: number;
}

const MAX_CHAIN = 1_000;
// A conversation read back for its next turn: more than any model's window takes, and a bound
// on what one request loads (a chain of turns with 4 MB inputs would load gigabytes).
const MAX_HISTORY_CHARS = 16 * 1024 * 1024;
const MAX_STORES = 10;
const MAX_TEXT_FILE = 4 * 1024 * 1024;
const MAX_IMAGE = 20 * 1024 * 1024;
const FINISHED: ReadonlySet<ResponseStatus> = new Set(["completed", "failed", "cancelled", "incomplete"]);

type Obj = Record<string, any>;

/** Everything a run needs, made before any byte of the answer is sent. */
interface Prepared {
  projectId: string;
  request: CreateResponseInput;
  response: Obj;
  spec: RunSpec;
  items: Item[];
  store: boolean;
  background: boolean;
}

interface Running {
  abort: AbortController;
  done: Promise<void>;
  background: boolean;
  /** Its row is stored (and leased): `store` was not false. */
  stored: boolean;
}

// A run's lease (ResponsesRepo): renewed every RENEW_MS while it lasts, so a cancel or delete
// from another process reaches it within about that; a process silent for LEASE_MS leaves its
// runs to the others (background ones run again, the rest end failed).
const LEASE_MS = 30_000;
const RENEW_MS = 2_000;
// Runs whose process is gone are looked for every this many renewals (and at start).
const ORPHANS_EVERY = 5;

export class ResponsesService {
  /** Every run in progress, background or not: cancel and shutdown reach them here. */
  private readonly running = new Map<string, Running>();
  private stopping = false;
  /** This process, as the runner of the responses it writes. */
  private readonly runner = `proc_${randomBase62(16)}`;
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticking: Promise<void> | null = null;
  private ticks = 0;
  private adopting = false;

  constructor(
    private readonly repo: ResponsesRepo,
    private readonly servers: ModelServers,
    private readonly files: FilesService,
    private readonly stores: VectorStoresService,
    /** The text ingestion read from a file (null until it is processed). */
    private readonly documentText: (fileId: string) => Promise<string | null>,
    private readonly o: ResponsesOptions,
  ) {}

  /** Takes the runs a stopped server left; from then on looks for orphans now and then. */
  async start() {
    this.renewing();
    this.adopting = true;
    await this.adoptOrphans();
  }

  /**
   * Keeps this process's leases from its first run on (the server answers before start() is
   * called), and looks for orphans once started.
   */
  private renewing() {
    if (this.timer || this.stopping) return;
    this.timer = setInterval(() => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .catch((e) => log.warn("could not renew the responses' leases; the next turn tries again", { error: String(e) }))
        .finally(() => (this.ticking = null));
    }, RENEW_MS);
    this.timer.unref?.();
  }

  /**
   * Renews the leases of the runs written here. A run whose lease was not renewed was
   * cancelled or deleted by another process (or taken over after this one fell silent): it stops.
   */
  private async tick() {
    const stored = [...this.running].filter(([, r]) => r.stored).map(([id]) => id);
    if (stored.length) {
      const kept = new Set(await this.repo.renew(this.runner, stored, LEASE_MS));
      for (const id of stored) if (!kept.has(id)) this.running.get(id)?.abort.abort();
    }
    if (this.adopting && ++this.ticks % ORPHANS_EVERY === 0) await this.adoptOrphans();
  }

  /**
   * Unfinished responses no live process writes (its process stopped or died): background
   * ones run again from their request (nothing of a run is visible before it ends); the others
   * had a client that is gone. Each is taken first, so one process does this for each.
   */
  private async adoptOrphans() {
    for (const row of await this.repo.orphans(this.runner)) {
      if (this.stopping) return;
      if (this.running.has(row.id) || !(await this.repo.take(row.id, this.runner, LEASE_MS))) continue;
      if (!row.background) {
        const object = JSON.parse(row.object) as Obj;
        await this.save(row.id, { ...object, status: "failed", error: { code: "server_error", message: "ragd stopped while this response was being written; create it again." } }, [], []);
        continue;
      }
      this.resume(row);
    }
  }

  /**
   * Runs a background response again from its stored request. It is tracked from the start,
   * so cancel and delete reach it while its request is read again (which may wait for files,
   * or for the response it continues, itself resuming).
   */
  private resume(row: ResponseRow) {
    const abort = new AbortController();
    const fail = async (status: "failed" | "cancelled", message: string | null) => {
      const object = JSON.parse(row.object) as Obj;
      await this.save(row.id, { ...object, status, error: message ? { code: "server_error", message } : null }, [], []).catch(() => {});
    };
    const done = (async () => {
      let p: Prepared;
      try {
        p = await this.prepare(row.projectId, JSON.parse(row.request) as CreateResponseInput, { id: row.id, createdAt: row.createdAt }, abort.signal, true);
      } catch (e) {
        if (this.stopping) return; // still unfinished: the next start tries again
        if (abort.signal.aborted) return fail("cancelled", null);
        return fail("failed", `ragd restarted and could not run this response again: ${(e as Error).message}`);
      }
      if (abort.signal.aborted) return this.stopping ? undefined : fail("cancelled", null);
      log.info("resumed a background response", { id: row.id });
      await this.run(p, () => {}, abort.signal).catch(() => {});
    })().finally(() => this.running.delete(row.id));
    this.running.set(row.id, { abort, done, background: true, stored: true });
  }

  /**
   * Stops every run and waits for them to save: background ones stay unfinished in storage
   * and run again at the next start; the others end cancelled, their clients told.
   */
  async stop() {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    // (the runs end first: a turn of renewals, on a database that does not answer, is not waited for before)
    const runs = [...this.running.values()];
    for (const r of runs) r.abort.abort();
    await this.ticking;
    const adopted = [...this.running.values()].filter((r) => !runs.includes(r));
    for (const r of adopted) r.abort.abort();
    await Promise.all([...runs, ...adopted].map((r) => r.done));
    // The background runs stay unfinished: handed back, any process (this one once started
    // again) takes them at once instead of after their lease.
    await this.repo.release(this.runner).catch((e) => log.warn("could not hand back the responses' leases; they lapse by themselves", { error: String(e) }));
  }

  private refuseWhileStopping() {
    if (this.stopping) throw fail("shutting_down", "ragd is shutting down; send the request again once it is back.");
  }

  /** A JSON answer (`stream` false): the finished response, or queued when `background`. */
  async create(projectId: string, body: CreateResponseInput, signal: AbortSignal): Promise<Obj> {
    this.refuseWhileStopping();
    const p = await this.prepare(projectId, body, null, signal);
    this.refuseWhileStopping();
    await this.insert(p);
    if (p.background) {
      const queued = structuredClone(p.response);
      this.track(p, () => {}, null);
      return queued;
    }
    let failure: unknown = null;
    await this.track(p, () => {}, signal, (e) => (failure = e)).done;
    // (deleted elsewhere while it ran, its client still waiting: the response as it ended)
    if (failure instanceof Cancelled && !signal.aborted && !this.stopping) return p.response;
    if (failure) throw failure;
    return p.response;
  }

  /** An SSE answer (`stream` true). Checks happen before the stream opens, so they are plain HTTP errors. */
  async createStream(projectId: string, body: CreateResponseInput, signal: AbortSignal): Promise<Response> {
    this.refuseWhileStopping();
    const p = await this.prepare(projectId, body, null, signal);
    this.refuseWhileStopping();
    await this.insert(p);
    let seq = 0;
    let open = true;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let run: Running | null = null;
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c;
      },
      // The client went away: a background response goes on; any other stops.
      cancel: () => {
        open = false;
        if (!p.background) run?.abort.abort();
      },
    });
    const emit = (e: Obj) => {
      if (!open) return;
      try {
        controller.enqueue(sseBytes({ ...e, sequence_number: seq++ }, e.type));
      } catch {
        open = false;
      }
    };
    run = this.track(p, emit, p.background ? null : signal);
    void run.done.finally(() => {
      if (open) controller.close();
      open = false;
    });
    return new Response(stream, { headers: SSE_HEADERS });
  }

  async get(projectId: string, id: string, stream?: boolean): Promise<Obj> {
    if (stream) throw fail("invalid_value", "ragd does not replay a response's events; GET it without stream, or create it with stream: true", "stream");
    return JSON.parse((await this.row(projectId, id)).object) as Obj;
  }

  async delete(projectId: string, id: string) {
    const row = await this.row(projectId, id);
    // (written by another process, it stops at its next lease renewal)
    this.running.get(row.id)?.abort.abort();
    await this.repo.remove(projectId, row.id);
    return { id: row.id, object: "response" as const, deleted: true as const };
  }

  async cancel(projectId: string, id: string): Promise<Obj> {
    const row = await this.row(projectId, id);
    if (!row.background) throw fail("response_not_cancellable", `Only responses created with background: true can be cancelled; ${id} was not.`, "response_id");
    const run = this.running.get(row.id);
    if (run) {
      run.abort.abort();
      await run.done;
    } else if (row.status === "queued" || row.status === "in_progress") {
      // Written by another process (or by none: its process is gone): it ends here, and the
      // process writing it stops at its next lease renewal, its own save refused.
      const object = { ...(JSON.parse(row.object) as Obj), status: "cancelled" };
      endOpenItems(object);
      await this.repo.cancel(row.id, JSON.stringify(object));
    }
    return JSON.parse((await this.row(projectId, id)).object) as Obj;
  }

  async inputItems(projectId: string, id: string, q: { limit: number; order: "asc" | "desc"; after?: string; before?: string }) {
    const row = await this.row(projectId, id);
    const all = JSON.parse(row.inputItems) as Item[];
    const ordered = q.order === "asc" ? all : [...all].reverse();
    const at = (cursor: string, param: string) => {
      const i = ordered.findIndex((it) => it.id === cursor);
      if (i < 0) throw fail("invalid_cursor", `${param} ${cursor} is not an item of response ${id}`, param);
      return i;
    };
    let start = 0;
    let end = ordered.length;
    if (q.after) start = at(q.after, "after") + 1;
    if (q.before) {
      end = at(q.before, "before");
      start = Math.max(start, end - q.limit);
    }
    const data = ordered.slice(start, Math.min(end, start + q.limit));
    return {
      object: "list" as const,
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: q.before ? start > 0 : start + data.length < end,
    };
  }

  // ---- a run

  private async row(projectId: string, id: string): Promise<ResponseRow> {
    const row = isResponseId(id) ? await this.repo.get(projectId, id) : null;
    if (!row) throw notFound("response", id, "response_id");
    return row;
  }

  private async insert(p: Prepared) {
    if (!p.store) return;
    const row: ResponseRow = {
      id: p.response.id,
      projectId: p.projectId,
      createdAt: p.response.created_at,
      status: p.response.status,
      background: p.background,
      previousId: p.request.previous_response_id ?? null,
      request: JSON.stringify(p.request),
      object: JSON.stringify(p.response),
      inputItems: JSON.stringify(p.items),
      context: JSON.stringify(p.spec.input),
      sources: "[]",
    };
    await this.repo.insert(row, this.runner, LEASE_MS);
    this.renewing();
  }

  /** False when the response is no longer this process's to write: cancelled or deleted elsewhere, or taken over. */
  private save(id: string, response: Obj, context: ChatMessage[], sources: Cited[]): Promise<boolean> {
    return this.repo.update(id, this.runner, { status: response.status, object: JSON.stringify(response), context: JSON.stringify(context), sources: JSON.stringify(sources) });
  }

  /**
   * Starts a run, tracked for cancel and shutdown. A run tied to a request (`signal`) stops
   * when its client goes; a background one only when cancelled, deleted or shut down.
   * `onError` receives a failure a JSON answer must report (else it is in the response).
   */
  private track(p: Prepared, emit: (e: Obj) => void, signal: AbortSignal | null, onError?: (e: unknown) => void): Running {
    const abort = new AbortController();
    if (signal?.aborted) abort.abort();
    else signal?.addEventListener("abort", () => abort.abort(), { once: true });
    const done = this.run(p, emit, abort.signal)
      .catch((e) => onError?.(e))
      .finally(() => this.running.delete(p.response.id));
    const r = { abort, done, background: p.background, stored: p.store };
    this.running.set(p.response.id, r);
    return r;
  }

  /**
   * Writes the answer, emitting the stream's events, and saves the outcome; a failure is
   * reported in the response (`response.failed`) and thrown for a JSON answer to report.
   */
  private async run(p: Prepared, emit: (e: Obj) => void, signal: AbortSignal): Promise<void> {
    const r = p.response;
    emit({ type: "response.created", response: r });
    if (r.status === "queued") {
      emit({ type: "response.queued", response: r });
      r.status = "in_progress";
      // (cancelled or deleted elsewhere before it began: nothing to write)
      if (p.store && !(await this.save(r.id, r, p.spec.input, []))) {
        r.status = "cancelled";
        emit({ type: "response.incomplete", response: r });
        return;
      }
    }
    emit({ type: "response.in_progress", response: r });
    try {
      const result = await respond(p.spec, r, emit, signal);
      if (p.store && !(await this.save(r.id, r, result.context, result.sources))) {
        // Cancelled or deleted elsewhere while the answer was written: it did not end here.
        r.status = "cancelled";
        r.completed_at = null;
        throw new Cancelled();
      }
      emit({ type: r.status === "incomplete" ? "response.incomplete" : "response.completed", response: r });
    } catch (e) {
      if (e instanceof Cancelled || signal.aborted) {
        // A server stop leaves a background response unfinished, to run again at the next
        // start; a client reading its stream is told to fetch it later.
        if (this.stopping && p.background) {
          emit({ type: "error", code: "shutting_down", message: `ragd is shutting down; response ${r.id} runs again once it is back: retrieve it then.`, param: null });
          return;
        }
        if (this.stopping) {
          // Its client is still there: it is told why the answer ends, and so is a later GET.
          r.status = "failed";
          r.error = { code: "server_error", message: "ragd is shutting down; create the response again once it is back." };
          if (p.store) await this.save(r.id, r, p.spec.input, []).catch(() => {});
          emit({ type: "response.failed", response: r });
          throw fail("shutting_down", "ragd is shutting down; send the request again once it is back.");
        }
        r.status = "cancelled";
        r.completed_at = null;
        endOpenItems(r);
        if (p.store) await this.save(r.id, r, p.spec.input, []).catch(() => {});
        // A stream still read (a background one, cancelled or deleted) ends with the response
        // as it stands, so a client's final response says `cancelled`, not `in_progress`. The
        // spec has no cancelled event; incomplete is "finished, not completed", without error
        // (a known difference: the event's type is not the response's status).
        emit({ type: "response.incomplete", response: r });
        throw new Cancelled();
      }
      const known = e instanceof RagdError;
      if (!known) log.error("response failed", { id: r.id, error: (e as Error)?.stack ?? String(e) });
      r.status = "failed";
      r.completed_at = null;
      endOpenItems(r);
      r.error = { code: known ? failedCode(e) : "server_error", message: known ? e.message : "The server had an error while writing this response." };
      if (p.store) await this.save(r.id, r, p.spec.input, []).catch(() => {});
      emit({ type: "response.failed", response: r });
      throw e;
    }
  }

  // ---- the request, read and checked

  private async prepare(projectId: string, body: CreateResponseInput, existing: { id: string; createdAt: number } | null, signal: AbortSignal, resuming = false): Promise<Prepared> {
    const instead = {
      conversation: "continue a conversation with previous_response_id",
      prompt: "send the prompt's instructions and input themselves",
      // (a request that asks for moderation must not be answered without it)
      moderation: "ragd runs no moderation; drop moderation, or moderate before and after ragd",
    } as const;
    for (const unsupported of ["conversation", "prompt", "moderation"] as const)
      if (body[unsupported] !== undefined && body[unsupported] !== null)
        throw fail("invalid_value", `ragd does not support '${unsupported}': ${instead[unsupported]}.`, unsupported);
    const store = body.store ?? true;
    const background = body.background ?? false;
    if (background && !store) throw fail("invalid_value", "background responses must be stored: drop store: false", "background");
    if (body.input === undefined && !body.previous_response_id) throw fail("missing_required_parameter", "input is required: the user's message, or a list of input items", "input");
    // (a model server takes no request without messages, and it would be stored as failed)
    if (Array.isArray(body.input) && body.input.length === 0 && !body.previous_response_id)
      throw fail("invalid_value", "input is empty: give the user's message, or at least one input item", "input");
    const { server, model } = this.servers.route(body.model);

    const tools = body.tools ?? [];
    let fileSearch: { tool: Obj; storeIds: string[]; param: string } | null = null;
    const functions: ChatTool[] = [];
    for (const [i, t] of tools.entries()) {
      const at = `tools[${i}]`;
      if (t.type === "file_search") {
        if (fileSearch) throw fail("invalid_value", "only one file_search tool may be given; list all its stores in vector_store_ids", at);
        const ids = t.vector_store_ids;
        if (!Array.isArray(ids) || !ids.length || ids.some((v) => typeof v !== "string"))
          throw fail("invalid_value", `${at}.vector_store_ids must list the vector stores to search`, `${at}.vector_store_ids`);
        if (ids.length > MAX_STORES) throw fail("invalid_value", `${at}.vector_store_ids: at most ${MAX_STORES} stores`, `${at}.vector_store_ids`);
        // (a filter the search would refuse is a 400 now, not a response failed mid-stream)
        parseFilter(t.filters ?? undefined, `${at}.filters`);
        fileSearch = { tool: t, storeIds: ids as string[], param: `${at}.vector_store_ids` };
      } else if (t.type === "function") {
        const name = t.name;
        if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw fail("invalid_value", `${at}.name must be 1-64 letters, digits, '_' or '-'`, `${at}.name`);
        if (name === FILE_SEARCH_TOOL) throw fail("invalid_value", `${at}.name: '${FILE_SEARCH_TOOL}' is ragd's own tool; give your function another name`, `${at}.name`);
        functions.push({
          type: "function",
          function: {
            name,
            ...(typeof t.description === "string" ? { description: t.description } : {}),
            ...(t.parameters && typeof t.parameters === "object" ? { parameters: t.parameters as Obj } : {}),
            ...(typeof t.strict === "boolean" ? { strict: t.strict } : {}),
          },
        });
      } else
        throw fail(
          "invalid_value",
          `${at}.type ${JSON.stringify(t.type)} is not supported: ragd runs file_search itself and passes function tools to the model`,
          `${at}.type`,
        );
    }
    const toolChoice = readToolChoice(body.tool_choice, fileSearch !== null, functions);

    // The conversation so far, then this turn's input (files read in).
    const history = body.previous_response_id ? await this.history(projectId, body.previous_response_id, resuming ? signal : null) : { messages: [], cited: new Map<number, Cited>() };
    const id = existing?.id ?? newResponseId();
    const read =
      body.input === undefined
        ? { items: [], messages: [], query: "" }
        : await readInput(body.input, { files: this.fileReader(projectId, signal), item: this.itemReader(projectId), newId: (prefix) => newItemId(prefix, id) });
    if (fileSearch) {
      // Unknown or foreign stores are a 404 now, not a failed search mid-answer.
      await this.stores.searchable(projectId, fileSearch.storeIds, fileSearch.param);
    }
    const fs = fileSearch;
    const search: FileSearchSpec | null = fs
      ? {
          search: (queries) =>
            this.stores.searchStores(
              projectId,
              fs.storeIds,
              queries,
              {
                max_num_results: typeof fs.tool.max_num_results === "number" ? fs.tool.max_num_results : this.o.maxResults,
                filters: fs.tool.filters ?? undefined,
                ranking_options: fs.tool.ranking_options as SearchInput["ranking_options"],
              },
              fs.param,
            ),
          includeResults: (body.include ?? []).includes("file_search_call.results"),
        }
      : null;

    const sampling: Obj = {};
    if (body.temperature !== undefined && body.temperature !== null) sampling.temperature = body.temperature;
    if (body.top_p !== undefined && body.top_p !== null) sampling.top_p = body.top_p;
    if (body.max_output_tokens !== undefined && body.max_output_tokens !== null) sampling.max_tokens = body.max_output_tokens;
    const effort = (body.reasoning as { effort?: unknown } | null | undefined)?.effort;
    if (typeof effort === "string") sampling.reasoning_effort = effort;
    const format = body.text?.format;
    if (format?.type === "json_object") sampling.response_format = { type: "json_object" };
    else if (format?.type === "json_schema")
      sampling.response_format = {
        type: "json_schema",
        json_schema: { name: format.name, schema: format.schema, ...(format.description !== undefined ? { description: format.description } : {}), ...(format.strict !== undefined ? { strict: format.strict } : {}) },
      };

    const now = Math.floor(Date.now() / 1000);
    const metadata = body.metadata ?? {};
    const response: Obj = {
      id,
      object: "response",
      created_at: existing?.createdAt ?? now,
      status: background ? "queued" : "in_progress",
      background,
      completed_at: null,
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      max_tool_calls: body.max_tool_calls ?? null,
      model,
      output: [],
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: body.previous_response_id ?? null,
      reasoning: body.reasoning ?? null,
      store,
      temperature: body.temperature ?? 1,
      text: { format: format ?? { type: "text" }, ...(body.text?.verbosity ? { verbosity: body.text.verbosity } : {}) },
      tool_choice: body.tool_choice ?? "auto",
      // As OpenAI echoes them: every field present, unset ones null.
      tools: tools.map((t) =>
        t.type === "file_search"
          ? { filters: null, ...t }
          : { type: "function", name: t.name, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null },
      ),
      top_p: body.top_p ?? 1,
      truncation: body.truncation ?? "disabled",
      ...(body.user !== undefined ? { user: body.user } : {}),
      metadata,
    };
    const spec: RunSpec = {
      server,
      model,
      system: body.instructions ? [{ role: "system", content: body.instructions }] : [],
      history: history.messages,
      input: read.messages,
      query: read.query || lastUserText(history.messages),
      fileSearch: search,
      functions,
      toolChoice,
      sampling,
      maxToolCalls: body.max_tool_calls ?? null,
      parallelToolCalls: body.parallel_tool_calls ?? null,
      cited: history.cited,
      truncation: body.truncation === "auto" ? "auto" : "disabled",
    };
    return { projectId, request: body, response, spec, items: read.items, store, background };
  }

  /**
   * The chat messages of previous_response_id's conversation, oldest first, with the passages
   * it cited. `waitFor` (a resumed background response): wait while the previous one, itself
   * resuming, finishes, instead of refusing.
   */
  private async history(projectId: string, previousId: string, waitFor: AbortSignal | null) {
    const chain: Pick<ResponseRow, "context" | "sources">[] = [];
    let id: string | null = previousId;
    let size = 0;
    while (id && chain.length < MAX_CHAIN) {
      let row: ResponseRow | null = isResponseId(id) ? await this.repo.get(projectId, id) : null;
      while (waitFor && !chain.length && row && !FINISHED.has(row.status) && !waitFor.aborted && !this.stopping) {
        await Bun.sleep(200);
        row = await this.repo.get(projectId, id);
      }
      if (!row) {
        if (!chain.length) throw fail("previous_response_not_found", `Previous response with id '${previousId}' not found.`, "previous_response_id");
        break; // an earlier turn was deleted: the conversation starts after it
      }
      if (!chain.length && !FINISHED.has(row.status))
        throw fail("invalid_value", `Response ${previousId} is still ${row.status}; wait for it to finish before continuing its conversation.`, "previous_response_id");
      // (only what the next turn needs is kept; every column read counts, so a chain of turns
      // with large instructions, kept outside the conversation, cannot make one request load more)
      size += row.context.length + row.sources.length + row.request.length + row.object.length + row.inputItems.length;
      if (size > MAX_HISTORY_CHARS)
        throw fail("invalid_value", `The conversation before ${previousId} is stored in more than ${MAX_HISTORY_CHARS / 1024 / 1024}M characters, more than this server reads back; start a new one (without previous_response_id), or pass the turns that matter as input.`, "previous_response_id");
      chain.push({ context: row.context, sources: row.sources });
      id = row.previousId;
    }
    chain.reverse();
    const cited = new Map<number, Cited>();
    for (const r of chain) for (const c of JSON.parse(r.sources) as Cited[]) cited.set(c.n, c);
    return { messages: chain.flatMap((r) => JSON.parse(r.context) as ChatMessage[]), cited };
  }

  /**
   * Items of the project's stored responses, for `item_reference`s: each response read once
   * a request, and no more than a conversation's worth of them (MAX_HISTORY_CHARS).
   */
  private itemReader(projectId: string) {
    const read = new Map<string, Promise<Item[] | null>>();
    let size = 0;
    const itemsOf = async (responseId: string) => {
      const row = await this.repo.get(projectId, responseId);
      if (!row) return null;
      // (every column read counts, as for a conversation)
      size += row.context.length + row.sources.length + row.request.length + row.object.length + row.inputItems.length;
      if (size > MAX_HISTORY_CHARS) throw fail("invalid_value", `The items referenced are stored in more than ${MAX_HISTORY_CHARS / 1024 / 1024}M characters, more than this server reads back; send the items that matter themselves.`, "input");
      return [...((JSON.parse(row.object) as Obj).output ?? []), ...(JSON.parse(row.inputItems) as Item[])] as Item[];
    };
    return async (itemId: string, param: string): Promise<Item> => {
      const responseId = responseOfItem(itemId);
      let items = responseId ? read.get(responseId) : undefined;
      if (responseId && !items) read.set(responseId, (items = itemsOf(responseId)));
      const found = (await items)?.find((it) => it.id === itemId);
      // (as a previous_response_id: never stored, store: false, deleted, or another project's)
      if (!found) throw fail("invalid_value", `Item with id '${itemId}' not found: an item_reference names an item of a stored response of this project.`, param);
      return found;
    };
  }

  private fileReader(projectId: string, signal: AbortSignal): FileReader {
    // The file's own failures (gone, or its bytes gone) are about the input part that named
    // it: its param says which. The store's (out of reach) are not, and pass on as they are.
    const content = (fileId: string, param: string) =>
      this.files.content(projectId, fileId).catch((e) => {
        if (e instanceof RagdError && e.code === "not_found") throw notFound("file", fileId, param);
        if (e instanceof RagdError && e.code === "stored_bytes_missing") throw new RagdError(e.code, e.message, param, e.headers);
        throw e;
      });
    return {
      text: async (fileId, param) => {
        const row = await this.ready(projectId, fileId, param, signal);
        if (EMBEDDABLE.has(row.purpose)) {
          const text = await this.documentText(row.id);
          if (text === null) throw fail("file_not_ready", `File ${fileId} has no text yet; try again shortly.`, param);
          return { filename: row.filename, text: capped(text) };
        }
        // Files kept for other purposes (batch, fine-tune) are read as they are, when they are text.
        if (row.bytes > MAX_TEXT_FILE) throw fail("invalid_value", `File ${fileId} (purpose ${row.purpose}) is too large to give the model as text; upload documents with purpose user_data`, param);
        const { body } = await content(row.id, param);
        try {
          return { filename: row.filename, text: capped(new TextDecoder("utf-8", { fatal: true }).decode(await new Response(body).arrayBuffer())) };
        } catch {
          throw fail("invalid_value", `File ${fileId} (purpose ${row.purpose}) is not text; upload documents with purpose user_data so ragd reads them`, param);
        }
      },
      image: async (fileId, param) => {
        const { row, body } = await content(fileId, param);
        if (row.bytes > MAX_IMAGE) throw fail("invalid_value", `File ${fileId} is too large to send as an image (20 MB at most)`, param);
        const bytes = new Uint8Array(await new Response(body).arrayBuffer());
        const type = imageType(bytes);
        if (!type) throw fail("invalid_value", `File ${fileId} (${row.filename}) is not a PNG, JPEG, GIF or WebP image`, param);
        return `data:${type};base64,${Buffer.from(bytes).toString("base64")}`;
      },
    };
  }

  /** The file, once ingestion is done with it (waiting up to fileWaitMs). */
  private async ready(projectId: string, fileId: string, param: string, signal: AbortSignal) {
    const deadline = Date.now() + this.o.fileWaitMs;
    for (;;) {
      const row = await this.files.get(projectId, fileId).catch((e) => {
        throw e instanceof RagdError && e.code === "not_found" ? notFound("file", fileId, param) : e;
      });
      if (row.status === "error") throw fail("invalid_file", `File ${fileId} (${row.filename}) could not be read: ${row.statusDetails ?? "ingestion failed"}`, param);
      if (row.status === "processed") return row;
      this.refuseWhileStopping();
      if (Date.now() >= deadline || signal.aborted)
        throw fail("file_not_ready", `File ${fileId} (${row.filename}) is still being processed; try again when its status is processed.`, param);
      await Bun.sleep(100);
    }
  }
}

/**
 * A file's text as the model gets it: past this many characters (about 250,000 tokens, more
 * than any model's context) the rest is left out and the model is told so, rather than
 * sending, and storing with the conversation, a document of any size.
 */
const MAX_FILE_CHARS = 1_000_000;
function capped(text: string) {
  return text.length <= MAX_FILE_CHARS ? text : `${text.slice(0, MAX_FILE_CHARS)}\n[... the file continues; ${text.length - MAX_FILE_CHARS} more characters were left out]`;
}

function readToolChoice(choice: unknown, fileSearch: boolean, functions: ChatTool[]): ToolChoice {
  if (choice === undefined || choice === null) return "auto";
  if (choice === "auto" || choice === "none" || choice === "required") return choice;
  const c = choice as Obj;
  if (c?.type === "file_search") {
    if (!fileSearch) throw fail("invalid_value", "tool_choice names file_search, but tools has no file_search tool", "tool_choice");
    return { type: "file_search" };
  }
  if (c?.type === "function") {
    if (!functions.some((f) => f.function.name === c.name)) throw fail("invalid_value", `tool_choice names the function ${JSON.stringify(c.name)}, which tools does not list`, "tool_choice");
    return { type: "function", name: c.name };
  }
  throw fail("invalid_value", 'tool_choice must be "auto", "none", "required", {"type":"file_search"} or {"type":"function","name":...}', "tool_choice");
}

function lastUserText(messages: ChatMessage[]): string {
  const m = messages.findLast((x) => x.role === "user");
  return typeof m?.content === "string" ? m.content : "";
}

function imageType(b: Uint8Array): string | null {
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "image/png";
  if (b[0] === 0xff && b[1] === 0xd8) return "image/jpeg";
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return "image/gif";
  if (b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45) return "image/webp";
  return null;
}

/** Items a response was still writing when it stopped end as `incomplete` (respond() emits their done events). */
function endOpenItems(r: Obj) {
  for (const item of r.output ?? []) if (item.status === "in_progress" || item.status === "searching") item.status = "incomplete";
}

/**
 * A failed response's `error.code`, one of the spec's: what a model server refused (its 4xx;
 * the message quotes it, and a JSON answer passes its own code on) was the prompt.
 */
function failedCode(e: RagdError): string {
  if (e.code === "rate_limit_exceeded") return "rate_limit_exceeded";
  return e.code === "model_server_rejected" ? "invalid_prompt" : "server_error";
}
