import { fail, RagdError } from "../errors";
import type { ChatMessage, ChatTool, ChatToolCall, ChatToolChoice } from "../llm/chat";
import { ToolsRefused, type ChatUsage, type ModelServer } from "../llm/upstream";
import { newCallId, newItemId } from "../util/ids";
import { CITATION_RULE, CitationReader, formatSources, SEARCH_TOOL_DESCRIPTION, type Cited, type Source } from "./sources";

// One response written: the model server's turns relayed as Responses API output items and
// events, with file_search run inside ragd between turns. The response object is updated in
// place; every event is handed to `emit` as it happens (a stream serialises it at once).

export const FILE_SEARCH_TOOL = "file_search";
const MAX_QUERIES = 5;
const MAX_QUERY_CHARS = 1_000;
/** file_search calls a response may make when the request does not set max_tool_calls. */
const DEFAULT_SEARCH_ROUNDS = 4;
/** file_search calls one response makes at most, whatever max_tool_calls allows: each costs a search and a turn of the model. */
const MOST_SEARCH_ROUNDS = 20;

export interface FileSearchSpec {
  /** Runs one search over the request's stores; the hits come back best first. */
  search(queries: string[]): Promise<Omit<Source, "n">[]>;
  includeResults: boolean;
}

export type ToolChoice = "auto" | "none" | "required" | { type: "file_search" } | { type: "function"; name: string };

export interface RunSpec {
  server: ModelServer;
  model: string;
  /** Instructions, as system messages. */
  system: ChatMessage[];
  /** The conversation before this response (previous_response_id's chain). */
  history: ChatMessage[];
  /** This response's input, read. */
  input: ChatMessage[];
  /** The last user text of the input, for ragd's own search. */
  query: string;
  fileSearch: FileSearchSpec | null;
  functions: ChatTool[];
  toolChoice: ToolChoice;
  /** temperature, top_p, max_tokens, response_format: passed to the model server when set. */
  sampling: Record<string, unknown>;
  maxToolCalls: number | null;
  /** parallel_tool_calls as the request gave it (sent only with tools); null when not given. */
  parallelToolCalls: boolean | null;
  /** Passage numbers used earlier in the conversation (citations may still name them). */
  cited: Map<number, Cited>;
  /** `auto`: a conversation past the model's context loses its oldest turns until it fits. */
  truncation: "auto" | "disabled";
}

export type Emit = (event: Record<string, unknown> & { type: string }) => void;

export interface RunResult {
  /** The chat messages this response added: its input (with passages ragd put before it) and the model's turns. */
  context: ChatMessage[];
  /** Passages it introduced. */
  sources: Cited[];
}

type Obj = Record<string, any>;

interface PendingCall {
  id: string;
  name: string;
  args: string;
  /** Output position of a caller's function_call item, once announced. */
  index?: number;
}

/** Writes the response's output items and the events that announce them. */
class OutputWriter {
  private message: { item: Obj; part: Obj; index: number; reader: CitationReader } | null = null;
  /** The caller's function call whose arguments are streaming. */
  private call: PendingCall | null = null;

  constructor(
    private readonly response: Obj,
    private readonly emit: Emit,
    private readonly cited: Map<number, Cited>,
  ) {}

  add(item: Obj): number {
    const index = this.response.output.push(item) - 1;
    this.emit({ type: "response.output_item.added", output_index: index, item });
    return index;
  }

  done(index: number) {
    this.emit({ type: "response.output_item.done", output_index: index, item: this.response.output[index] });
  }

  text(delta: string) {
    if (!this.message) {
      if (this.call) this.finishCall(this.call);
      const item = { id: newItemId("msg", this.response.id), type: "message", status: "in_progress", role: "assistant", content: [] as Obj[] };
      const index = this.add(item);
      const part = { type: "output_text", text: "", annotations: [] as Obj[], logprobs: [] };
      item.content.push(part);
      this.emit({ type: "response.content_part.added", item_id: item.id, output_index: index, content_index: 0, part: { ...part, annotations: [] } });
      this.message = { item, part, index, reader: new CitationReader(this.cited) };
    }
    const m = this.message;
    m.part.text += delta;
    this.emit({ type: "response.output_text.delta", item_id: m.item.id, output_index: m.index, content_index: 0, delta, logprobs: [] });
    this.annotate(false);
  }

  private annotate(final: boolean) {
    const m = this.message!;
    for (const c of m.reader.feed(m.part.text, final)) {
      const annotation = { type: "file_citation", file_id: c.fileId, filename: c.filename, index: c.index };
      const at = m.part.annotations.push(annotation) - 1;
      this.emit({ type: "response.output_text.annotation.added", item_id: m.item.id, output_index: m.index, content_index: 0, annotation_index: at, annotation });
    }
  }

  /** Ends the open message, if any; returns its text. */
  closeMessage(status: "completed" | "incomplete"): string | null {
    const m = this.message;
    if (!m) return null;
    this.annotate(true);
    this.emit({ type: "response.output_text.done", item_id: m.item.id, output_index: m.index, content_index: 0, text: m.part.text, logprobs: [] });
    this.emit({ type: "response.content_part.done", item_id: m.item.id, output_index: m.index, content_index: 0, part: m.part });
    m.item.status = status;
    this.done(m.index);
    this.message = null;
    return m.part.text;
  }

  /**
   * A caller's function call, announced once its name is known. The message written before it
   * ends first, as OpenAI ends one item before it adds the next (text after the call, if a
   * model writes any, goes in a message of its own).
   */
  announceCall(c: PendingCall) {
    this.closeMessage("completed");
    // (a model streams its calls one after another: the next one's start ends the last)
    if (this.call) this.finishCall(this.call);
    this.call = c;
    const item = { id: newItemId("fc", this.response.id), type: "function_call", status: "in_progress", call_id: c.id, name: c.name, arguments: "" };
    c.index = this.add(item);
    if (c.args) this.callArgs(c, c.args);
  }

  callArgs(c: PendingCall, delta: string) {
    const item = this.response.output[c.index!];
    // (a model server that went back to an ended call: its item takes the whole arguments
    // when the turn ends, without events after its done)
    if (item.status !== "in_progress") return;
    item.arguments += delta;
    this.emit({ type: "response.function_call_arguments.delta", item_id: item.id, output_index: c.index, delta });
  }

  finishCall(c: PendingCall) {
    const item = this.response.output[c.index!];
    item.arguments = c.args;
    if (this.call === c) this.call = null;
    if (item.status !== "in_progress") return;
    item.status = "completed";
    this.emit({ type: "response.function_call_arguments.done", item_id: item.id, name: c.name, output_index: c.index, arguments: c.args });
    this.done(c.index!);
  }

  get open() {
    return this.message !== null;
  }

  /** The run stopped: every item still being written ends `incomplete`, with its done events. */
  endOpen() {
    if (this.message) this.closeMessage("incomplete");
    this.call = null;
    for (const [index, item] of (this.response.output as Obj[]).entries())
      if (item.status === "in_progress" || item.status === "searching") {
        item.status = "incomplete";
        this.done(index);
      }
  }
}

// Tries at most, shortening a conversation the model server found too long (truncation auto).
const MOST_TRUNCATIONS = 8;

/** Writes the response: returns what it added to the conversation. Throws RagdError or Cancelled. */
export async function respond(spec: RunSpec, response: Obj, emit: Emit, signal: AbortSignal): Promise<RunResult> {
  const out = new OutputWriter(response, emit, spec.cited);
  try {
    return await write(spec, response, emit, signal, out);
  } catch (e) {
    out.endOpen();
    throw e;
  }
}

async function write(spec: RunSpec, response: Obj, emit: Emit, signal: AbortSignal, out: OutputWriter): Promise<RunResult> {
  const context: ChatMessage[] = [...spec.input];
  const sources: Cited[] = [];
  let next = Math.max(0, ...spec.cited.keys()) + 1;
  const usage = { input: 0, cached: 0, output: 0, reasoning: 0, reported: false };
  const fs = spec.toolChoice === "none" ? null : spec.fileSearch;
  let searchesLeft = Math.min(spec.maxToolCalls ?? DEFAULT_SEARCH_ROUNDS, MOST_SEARCH_ROUNDS);
  let mode: "tool_call" | "user_input" | null = fs ? (spec.server.takesTools(spec.model) ? "tool_call" : "user_input") : null;
  let forced = true;
  // max_output_tokens bounds the whole response, every turn together: each turn may write
  // what the turns before it left, as the model server counted them.
  let outputLeft = typeof spec.sampling.max_tokens === "number" ? spec.sampling.max_tokens : null;
  // Where the conversation (history, then this response's messages) the model is sent starts:
  // truncation auto moves it on; what is stored keeps every message.
  let cut = 0;
  let truncations = 0;

  const setMode = (m: typeof mode) => {
    mode = m;
    // Metadata holds 16 keys at most: a request that used them all is not told.
    const md = response.metadata ?? {};
    if (m && (Object.keys(md).length < 16 || "ragd_file_search" in md)) response.metadata = { ...md, ragd_file_search: m };
  };
  setMode(mode);

  /** One file_search_call item: announced, searched, completed; its passages numbered on. */
  const search = async (queries: string[]): Promise<Source[]> => {
    const item: Obj = { id: newItemId("fs", response.id), type: "file_search_call", status: "in_progress", queries, results: null };
    const index = out.add(item);
    emit({ type: "response.file_search_call.in_progress", output_index: index, item_id: item.id });
    item.status = "searching";
    emit({ type: "response.file_search_call.searching", output_index: index, item_id: item.id });
    const hits = await fs!.search(queries);
    const found = hits.map((h) => ({ ...h, n: next++ }));
    for (const s of found) {
      const c = { n: s.n, fileId: s.fileId, filename: s.filename };
      spec.cited.set(s.n, c);
      sources.push(c);
    }
    item.status = "completed";
    if (fs!.includeResults) item.results = found.map((s) => ({ file_id: s.fileId, filename: s.filename, score: s.score, text: s.text, attributes: s.attributes }));
    emit({ type: "response.file_search_call.completed", output_index: index, item_id: item.id });
    out.done(index);
    return found;
  };

  /** ragd searches with the user's words and puts the passages just before their message. */
  const searchInput = async () => {
    const q = spec.query.trim().slice(0, MAX_QUERY_CHARS);
    if (!q || searchesLeft <= 0) return;
    searchesLeft--;
    const found = await search([q]);
    const note: ChatMessage = { role: "system", content: `Passages from the user's documents that may answer their next message:\n\n${formatSources(found)}` };
    const lastUser = context.findLastIndex((m) => m.role === "user");
    context.splice(lastUser < 0 ? context.length : lastUser, 0, note);
  };

  if (mode === "user_input") await searchInput();

  for (;;) {
    const offerSearch = mode === "tool_call" && searchesLeft > 0;
    const tools: ChatTool[] = [...(offerSearch ? [searchTool()] : []), ...spec.functions];
    const body: Obj = {
      model: spec.model,
      messages: [...system(spec, mode), ...[...spec.history, ...context].slice(cut)],
      stream: true,
      stream_options: { include_usage: true },
      ...spec.sampling,
      ...(outputLeft === null ? {} : { max_tokens: outputLeft }),
    };
    if (tools.length) {
      body.tools = tools;
      body.tool_choice = toolChoice(spec.toolChoice, forced, offerSearch);
      if (spec.parallelToolCalls !== null) body.parallel_tool_calls = spec.parallelToolCalls;
    }
    let turn: Turn;
    try {
      turn = await runTurn(spec.server, body, out, signal);
    } catch (e) {
      // A model (or server) without tool calls: ragd searches with the user's words instead.
      if (e instanceof ToolsRefused && mode === "tool_call" && !spec.functions.length && !out.open && spec.server.learnToolsRefused(spec.model)) {
        setMode("user_input");
        await searchInput();
        continue;
      }
      if (e instanceof ToolsRefused) throw refusedTools(spec, e);
      const over = spec.truncation === "auto" && !out.open && truncations < MOST_TRUNCATIONS ? overContext(e) : null;
      const later = over ? laterCut([...spec.history, ...context], cut, over.keep) : null;
      if (later !== null) {
        cut = later;
        truncations++;
        continue;
      }
      throw e;
    }
    forced = false;
    if (turn.usage) {
      usage.reported = true;
      usage.input += turn.usage.prompt_tokens ?? 0;
      usage.output += turn.usage.completion_tokens ?? 0;
      usage.cached += turn.usage.prompt_tokens_details?.cached_tokens ?? 0;
      usage.reasoning += turn.usage.completion_tokens_details?.reasoning_tokens ?? 0;
      if (outputLeft !== null) outputLeft -= turn.usage.completion_tokens ?? 0;
    }
    const searches = turn.calls.filter((c) => c.name === FILE_SEARCH_TOOL);
    const functions = turn.calls.filter((c) => !searches.includes(c));
    const calls: ChatToolCall[] = turn.calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.args } }));
    context.push({ role: "assistant", content: turn.text, ...(calls.length ? { tool_calls: calls } : {}) });
    for (const c of searches) {
      // Calls past max_tool_calls (a model may make several at once) are answered, not run.
      if (searchesLeft <= 0) {
        context.push({ role: "tool", tool_call_id: c.id, content: "Not searched: the search budget of this response (max_tool_calls) is used up. Answer from the passages you have." });
        continue;
      }
      searchesLeft--;
      const found = await search(queriesOf(c.args, spec.query));
      context.push({ role: "tool", tool_call_id: c.id, content: formatSources(found) });
    }
    if (functions.length || !searches.length) {
      if (turn.finish === "length" || turn.finish === "content_filter") {
        response.status = "incomplete";
        response.incomplete_details = { reason: turn.finish === "length" ? "max_output_tokens" : "content_filter" };
      }
      break;
    }
    // The model searched and would write on, but the response's tokens are spent.
    if (outputLeft !== null && outputLeft <= 0) {
      response.status = "incomplete";
      response.incomplete_details = { reason: "max_output_tokens" };
      break;
    }
  }

  if (response.status !== "incomplete") response.status = "completed";
  // (the spec: "only present when the status is `completed`")
  response.completed_at = response.status === "completed" ? Math.floor(Date.now() / 1000) : null;
  if (usage.reported)
    response.usage = {
      input_tokens: usage.input,
      input_tokens_details: { cached_tokens: usage.cached, cache_write_tokens: 0 },
      output_tokens: usage.output,
      output_tokens_details: { reasoning_tokens: usage.reasoning },
      total_tokens: usage.input + usage.output,
    };
  return { context, sources };
}

function system(spec: RunSpec, mode: "tool_call" | "user_input" | null): ChatMessage[] {
  if (!mode) return spec.system;
  const how =
    mode === "tool_call"
      ? "You can search the user's documents with the file_search tool; it returns numbered passages."
      : "Passages from the user's documents are given to you, numbered.";
  return [...spec.system, { role: "system", content: `${how} ${CITATION_RULE}` }];
}

function searchTool(): ChatTool {
  return {
    type: "function",
    function: {
      name: FILE_SEARCH_TOOL,
      description: SEARCH_TOOL_DESCRIPTION,
      parameters: {
        type: "object",
        properties: { queries: { type: "array", items: { type: "string" }, description: "Search queries, each a few words" } },
        required: ["queries"],
      },
    },
  };
}

function toolChoice(choice: ToolChoice, first: boolean, offerSearch: boolean): ChatToolChoice {
  if (typeof choice === "string") return choice === "required" && !first ? "auto" : choice;
  if (choice.type === "file_search") return first && offerSearch ? { type: "function", function: { name: FILE_SEARCH_TOOL } } : "auto";
  return first ? { type: "function", function: { name: choice.name } } : "auto";
}

/**
 * A model server's refusal of a conversation longer than its context (OpenAI's code, or the
 * words of servers that send none: vLLM's "maximum context length", llama.cpp's
 * exceed_context_size_error), with the share of the conversation to keep: what its numbers
 * say fits ("maximum context length is 8192 tokens. However, you requested 9000"), less a
 * tenth, else half.
 */
function overContext(e: unknown): { keep: number } | null {
  if (!(e instanceof RagdError) || e.code !== "model_server_rejected") return null;
  if (e.wireCode !== "context_length_exceeded" && !/context[ _]length|context window|maximum context|exceed_context_size/i.test(e.message)) return null;
  const n = /maximum context length is (\d+) tokens.*?requested (\d+) tokens/is.exec(e.message);
  const fits = n ? Number(n[1]) / Number(n[2]) : 0;
  return { keep: fits > 0 && fits < 1 ? Math.max(0.05, fits * 0.9) : 0.5 };
}

/**
 * Where the conversation sent to the model starts next: the first turn (a user message, with
 * the system messages just before it, such as its passages) from which at most `keep` of the
 * characters sent now are left, past `cut`; the last user turn at the latest, null when that
 * is where it starts already. Turns go whole, so a tool call never loses its output.
 */
function laterCut(convo: ChatMessage[], cut: number, keep: number): number | null {
  const size = (m: ChatMessage) => (typeof m.content === "string" ? m.content.length : JSON.stringify(m.content ?? "").length) + JSON.stringify(m.tool_calls ?? "").length;
  const starts: number[] = [];
  for (let i = 0; i < convo.length; i++) {
    if (convo[i]!.role !== "user") continue;
    let k = i;
    while (k > 0 && convo[k - 1]!.role === "system") k--;
    if (k > cut) starts.push(k);
  }
  if (!starts.length) return null;
  let left = 0;
  for (let i = cut; i < convo.length; i++) left += size(convo[i]!);
  const target = left * keep;
  let at = cut;
  for (const s of starts) {
    for (; at < s; at++) left -= size(convo[at]!);
    if (left <= target) return s;
  }
  return starts.at(-1)!;
}

/** The queries a model wrote; a call ragd cannot read searches with the user's words. */
function queriesOf(args: string, fallback: string): string[] {
  let qs: unknown;
  try {
    const a = JSON.parse(args) as { queries?: unknown; query?: unknown };
    qs = a.queries ?? a.query;
  } catch {
    qs = null;
  }
  const list = (Array.isArray(qs) ? qs : [qs]).filter((q): q is string => typeof q === "string" && q.trim() !== "");
  const out = (list.length ? list : [fallback]).map((q) => q.trim().slice(0, MAX_QUERY_CHARS)).filter(Boolean).slice(0, MAX_QUERIES);
  return out.length ? out : ["*"];
}

function refusedTools(spec: RunSpec, e: ToolsRefused) {
  return fail(
    "model_server_rejected",
    `The model ${spec.model} (model server ${spec.server.name}) does not take tool calls, which function tools need: ${e.message.slice(0, 500)}`,
    "tools",
  );
}

interface Turn {
  text: string | null;
  calls: PendingCall[];
  finish: string | null;
  usage: ChatUsage | null;
}

/** One call to the model server, streamed: text relayed as it comes, tool calls gathered. */
async function runTurn(server: ModelServer, body: Obj, out: OutputWriter, signal: AbortSignal): Promise<Turn> {
  const res = await server.post(body, signal);
  const calls: PendingCall[] = [];
  const byIndex = new Map<number, PendingCall>();
  let finish: string | null = null;
  let usage: ChatUsage | null = null;
  let text: string | null = null;
  const offered = new Set<string>((body.tools ?? []).map((t: ChatTool) => t.function.name));
  // A caller's function call is shown as it streams; ragd's own file_search is not. A call
  // of a tool that was not offered is dropped.
  const announce = (c: PendingCall) => {
    if (c.index === undefined && c.name !== FILE_SEARCH_TOOL && offered.has(c.name)) out.announceCall(c);
  };
  for await (const chunk of server.chunks(res, signal)) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const d = choice.delta ?? {};
    if (typeof d.content === "string" && d.content) {
      text = (text ?? "") + d.content;
      out.text(d.content);
    }
    for (const tc of d.tool_calls ?? []) {
      let c = byIndex.get(tc.index ?? 0);
      if (!c) {
        c = { id: tc.id || newCallId(), name: "", args: "" };
        byIndex.set(tc.index ?? 0, c);
        calls.push(c);
      }
      if (tc.function?.name) c.name += tc.function.name;
      const delta = tc.function?.arguments ?? "";
      c.args += delta;
      // Announced once its arguments start, when its name is surely whole (names may arrive
      // in pieces: "get" before "get_weather").
      if (c.index === undefined) {
        if (c.args) announce(c);
      } else if (delta) out.callArgs(c, delta);
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  out.closeMessage(finish === "length" || finish === "content_filter" ? "incomplete" : "completed");
  const made = calls.filter((c) => offered.has(c.name));
  for (const c of made) {
    announce(c);
    if (c.index !== undefined) out.finishCall(c);
  }
  return { text, calls: made, finish, usage };
}
