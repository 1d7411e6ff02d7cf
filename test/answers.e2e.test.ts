// Answers from the knowledge base: /v1/responses (file_search, streaming, conversation state,
// background runs) and /v1/chat/completions (pass-through and grounding), driven by the
// official SDK against the real server, real documents and real search. The model server is
// a scripted OpenAI-compatible one over real HTTP (test/helpers/upstream.ts): what it is sent
// and what it answers are checked against the official spec, as is everything ragd answers.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import OpenAI, { toFile } from "openai";
import { blobFiles, cleanup, createKey, ROOT, startRagd, type Ragd } from "./helpers/ragd";
import { specSchemas } from "./helpers/spec";
import { startUpstream, type Upstream } from "./helpers/upstream";

const MODEL = "llama-3.1-8b";
const POLICY = "Parental leave: every parent receives 26 weeks of paid leave, to be taken within two years of the birth or adoption.";
const TRAVEL = "Travel policy: employees book economy class for flights under six hours and may expense one checked bag.";

/** Problems of a body against the spec's schema; [] when the spec is absent (fresh clone). */
function specProblems(name: string, value: unknown): string[] {
  return specSchemas()?.check(name, JSON.parse(JSON.stringify(value))) ?? [];
}

/** The error a call fails with (the SDK's promises are not native ones, which `rejects` needs). */
const failure = (p: PromiseLike<unknown>): Promise<any> => Promise.resolve(p).then(() => new Error("expected a failure, got success"), (e) => e);

async function until<T>(f: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value ${JSON.stringify(v)?.slice(0, 300)}`);
    await Bun.sleep(50);
  }
}

const messagesOf = (u: Upstream, i: number) => u.received[i]!.body.messages as { role: string; content: any; tool_calls?: any[]; tool_call_id?: string }[];
const allText = (msgs: { content: any }[]) => msgs.map((m) => (typeof m.content === "string" ? m.content : JSON.stringify(m.content))).join("\n");

describe("answers over a model server", () => {
  let up: Upstream;
  let ragd: Ragd;
  let c: OpenAI;
  let store: string;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    up = await startUpstream({ models: [MODEL, "qwen2.5", "meta-llama/Llama-3.1-8B"] });
    ragd = await startRagd({ args: ["--llm-url", up.url, "--llm-model", MODEL, "--llm-timeout", "2"] });
    c = ragd.client();
    files.policy = (await c.files.create({ file: await toFile(Buffer.from(POLICY), "leave-policy.txt"), purpose: "assistants" })).id;
    files.travel = (await c.files.create({ file: await toFile(Buffer.from(TRAVEL), "travel-policy.txt"), purpose: "assistants" })).id;
    files.report = (await c.files.create({ file: await toFile(readFileSync(join(ROOT, "test/fixtures/docs/report.pdf")), "report.pdf"), purpose: "assistants" })).id;
    const created = await c.vectorStores.create({ name: "handbook", file_ids: Object.values(files) });
    const vs = await until(() => c.vectorStores.retrieve(created.id), (v) => v.file_counts.completed === 3);
    store = vs.id;
  });

  afterAll(async () => {
    await ragd?.stop();
    await up?.stop();
    if (ragd) cleanup(ragd.dataDir);
  });

  beforeEach(() => up.reset());

  test("file_search as a tool: the model writes the query, ragd searches, the answer cites real files", async () => {
    up.script({ toolCalls: [{ name: "file_search", arguments: JSON.stringify({ queries: ["parental leave weeks"] }) }] }, { text: "Every parent gets 26 weeks of paid leave [1]." });
    const r = await c.responses.create({
      model: MODEL,
      input: "How long is our parental leave?",
      tools: [{ type: "file_search", vector_store_ids: [store] }],
      include: ["file_search_call.results"],
    });
    // the model was offered ragd's file_search tool, then shown the passages it found
    expect(up.received).toHaveLength(2);
    expect(up.received[0]!.body.tools.map((t: any) => t.function.name)).toEqual(["file_search"]);
    const toolMessage = messagesOf(up, 1).find((m) => m.role === "tool")!;
    expect(toolMessage.tool_call_id).toBe(messagesOf(up, 1).find((m) => m.tool_calls)!.tool_calls![0].id);
    expect(toolMessage.content).toStartWith("[1] leave-policy.txt");
    expect(toolMessage.content).toContain("26 weeks of paid leave");

    expect(r.status).toBe("completed");
    const [call, message] = r.output as any[];
    expect(call.type).toBe("file_search_call");
    expect(call.queries).toEqual(["parental leave weeks"]);
    expect(call.results[0]).toMatchObject({ file_id: files.policy, filename: "leave-policy.txt" });
    expect(call.results[0].text).toContain("26 weeks");
    expect(message.type).toBe("message");
    expect(r.output_text).toBe("Every parent gets 26 weeks of paid leave [1].");
    expect(message.content[0].annotations).toEqual([{ type: "file_citation", file_id: files.policy, filename: "leave-policy.txt", index: r.output_text.indexOf("[1]") }]);
    expect(r.metadata).toEqual({ ragd_file_search: "tool_call" });
    expect(r.usage).toMatchObject({ input_tokens: 22, output_tokens: 14, total_tokens: 36 });
    expect(specProblems("Response", r)).toEqual([]);
    expect(up.problems).toEqual([]);
  });

  test("citations map each [n] to the file of passage n, across two files", async () => {
    up.script(
      { toolCalls: [{ name: "file_search", arguments: JSON.stringify({ queries: ["parental leave", "economy class flights"] }) }] },
      { text: "Leave is 26 weeks [1]; flights under six hours are economy [2]. See also [9]." },
    );
    const r = await c.responses.create({ input: "Leave and travel rules?", tools: [{ type: "file_search", vector_store_ids: [store], max_num_results: 2 }], include: ["file_search_call.results"] });
    const call = r.output[0] as any;
    const shown = messagesOf(up, 1).find((m) => m.role === "tool")!.content as string;
    // passage n in the prompt is result n of the call
    expect(call.results).toHaveLength(2);
    call.results.forEach((res: any, i: number) => expect(shown).toContain(`[${i + 1}] ${res.filename}`));
    const annotations = (r.output[1] as any).content[0].annotations;
    // [9] names no passage and is not a citation
    expect(annotations.map((a: any) => a.file_id)).toEqual([call.results[0].file_id, call.results[1].file_id]);
    expect(new Set(annotations.map((a: any) => a.filename))).toEqual(new Set(["leave-policy.txt", "travel-policy.txt"]));
  });

  test("tool_choice file_search forces the search; filters narrow it; sampling settings reach the model", async () => {
    await c.vectorStores.files.update(files.travel!, { vector_store_id: store, attributes: { topic: "travel" } });
    up.script({ toolCalls: [{ name: "file_search", arguments: '{"queries":["leave and travel"]}' }] }, { text: "Only travel matched [1]." });
    const r = await c.responses.create({
      input: "Tell me about leave and travel",
      tool_choice: { type: "file_search" },
      temperature: 0.3,
      top_p: 0.9,
      text: { format: { type: "json_schema", name: "answer", description: "The answer, as one field", schema: { type: "object", properties: { a: { type: "string" } } } } },
      tools: [{ type: "file_search", vector_store_ids: [store], filters: { type: "eq", key: "topic", value: "travel" }, ranking_options: { score_threshold: 0 } }],
      include: ["file_search_call.results"],
    });
    const first = up.received[0]!.body;
    expect(first.tool_choice).toEqual({ type: "function", function: { name: "file_search" } });
    expect(first).toMatchObject({ temperature: 0.3, top_p: 0.9, response_format: { type: "json_schema", json_schema: { name: "answer", description: "The answer, as one field" } } });
    expect(up.received[1]!.body.tool_choice).toBe("auto"); // forced once, then the model decides
    const results = (r.output[0] as any).results;
    expect(results.map((x: any) => x.file_id)).toEqual([files.travel]);
    expect(results[0].attributes).toEqual({ topic: "travel" });
    expect(r).toMatchObject({ temperature: 0.3, top_p: 0.9, tool_choice: { type: "file_search" } });
    expect(specProblems("Response", r)).toEqual([]);
  });

  test("a model server without tool calls: ragd searches with the user's words and says so", async () => {
    up.script({ status: 400, body: { error: { message: "registry.ollama.ai/library/gemma:2b does not support tools", type: "invalid_request_error" } } }, { text: "Flights under six hours are economy [1]." }, { text: "Still economy [1]." });
    const r = await c.responses.create({ model: "gemma:2b", input: "Which class do we fly on short flights?", tools: [{ type: "file_search", vector_store_ids: [store] }] });
    expect(r.status).toBe("completed");
    expect(r.metadata).toEqual({ ragd_file_search: "user_input" });
    expect(up.received[1]!.body.tools).toBeUndefined();
    const msgs = messagesOf(up, 1);
    const note = msgs[msgs.length - 2]!;
    expect(note.role).toBe("system");
    expect(note.content).toContain("travel-policy.txt");
    expect(note.content).toContain("economy class");
    expect(msgs.at(-1)).toEqual({ role: "user", content: "Which class do we fly on short flights?" });
    expect((r.output[0] as any).queries).toEqual(["Which class do we fly on short flights?"]);
    expect((r.output[1] as any).content[0].annotations[0].file_id).toBe(files.travel);
    // learned: the next request to that model is sent without tools at once
    await c.responses.create({ model: "gemma:2b", input: "And long flights?", tools: [{ type: "file_search", vector_store_ids: [store] }] });
    expect(up.received).toHaveLength(3);
    expect(up.received[2]!.body.tools).toBeUndefined();
  });

  test("streaming: the spec's events in order, each valid, and the SDK's stream helpers work", async () => {
    up.script({ toolCalls: [{ name: "file_search", arguments: '{"queries":["revenue Europe"]}' }] }, { text: "Revenue grew twelve percent in Europe [1].", pieces: 9 });
    const stream = c.responses.stream({ input: "How did revenue do in Europe?", tools: [{ type: "file_search", vector_store_ids: [store] }] });
    const events: any[] = [];
    let deltas = "";
    stream.on("response.output_text.delta", (e) => (deltas += e.delta));
    for await (const e of stream) events.push(e);
    const final = await stream.finalResponse();

    const types = events.map((e) => e.type);
    expect(types.slice(0, 7)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.file_search_call.in_progress",
      "response.file_search_call.searching",
      "response.file_search_call.completed",
      "response.output_item.done",
    ]);
    expect(types.slice(7, 9)).toEqual(["response.output_item.added", "response.content_part.added"]);
    expect(types.filter((t) => t === "response.output_text.delta").length).toBeGreaterThanOrEqual(5);
    expect(types).toContain("response.output_text.annotation.added");
    expect(types.slice(-4)).toEqual(["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const annotation = events.find((e) => e.type === "response.output_text.annotation.added");
    expect(annotation.annotation).toMatchObject({ type: "file_citation", file_id: files.report, filename: "report.pdf" });
    expect(deltas).toBe("Revenue grew twelve percent in Europe [1].");
    expect(final.output_text).toBe(deltas);
    // what is streamed is what is stored
    const stored = await c.responses.retrieve(final.id);
    expect(stored.output.map((o: any) => [o.id, o.type, o.status])).toEqual(final.output.map((o: any) => [o.id, o.type, o.status]));
    expect(stored.output_text).toBe(final.output_text);
    expect((stored.output[1] as any).content[0].annotations).toEqual((final.output[1] as any).content[0].annotations);
    const schemas = specSchemas();
    if (schemas) {
      const problems = events.flatMap((e) => {
        const name = schemas.eventSchema(e.type);
        return name ? schemas.check(name, JSON.parse(JSON.stringify(e))) : [`no schema for ${e.type}`];
      });
      expect(problems).toEqual([]);
    }
  });

  test("streaming a function call and an incomplete answer: argument events, response.incomplete, all valid", async () => {
    const fn = { type: "function" as const, name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } }, strict: false };
    up.script({ toolCalls: [{ name: "lookup", arguments: '{"q":"headcount"}' }] }, { text: "Cut off mid-sen", finish: "length" });
    const s1 = c.responses.stream({ input: "Look it up", tools: [fn] });
    const events: any[] = [];
    for await (const e of s1) events.push(e);
    const final = await s1.finalResponse();
    expect(final.output[0]).toMatchObject({ type: "function_call", name: "lookup", arguments: '{"q":"headcount"}', status: "completed" });
    const args = events.filter((e) => e.type === "response.function_call_arguments.delta").map((e) => e.delta).join("");
    expect(args).toBe('{"q":"headcount"}');
    expect(events.find((e) => e.type === "response.function_call_arguments.done")).toMatchObject({ name: "lookup", arguments: '{"q":"headcount"}' });

    const s2 = c.responses.stream({ input: "Say a lot", max_output_tokens: 16 });
    for await (const e of s2) events.push(e);
    const cut = await s2.finalResponse();
    expect(up.received[1]!.body.max_tokens).toBe(16);
    expect(cut.status).toBe("incomplete");
    expect(cut.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(events.at(-1).type).toBe("response.incomplete");
    const schemas = specSchemas();
    if (schemas) expect(events.flatMap((e) => schemas.check(schemas.eventSchema(e.type) ?? "missing", JSON.parse(JSON.stringify(e))))).toEqual([]);
    // Text before the call: its message item ends before the call's item is added.
    up.script({ toolCalls: [{ name: "lookup", arguments: '{"q":"desks"}' }], text: "Let me check." }, { text: "Forty desks." });
    const order: any[] = [];
    const s3 = c.responses.stream({ input: "How many desks?", tools: [fn] });
    for await (const e of s3) order.push(e);
    const kinds = order.filter((e) => e.type === "response.output_item.added" || e.type === "response.output_item.done").map((e) => `${e.type.split(".").at(-1)} ${e.item.type}`);
    expect(kinds).toEqual(["added message", "done message", "added function_call", "done function_call"]);
    expect((await s3.finalResponse()).output.map((o: any) => o.type)).toEqual(["message", "function_call"]);
    // Two calls in one turn: the first ends before the second is added.
    up.reset();
    up.script({ toolCalls: [{ name: "lookup", arguments: '{"q":"desks"}' }, { name: "lookup", arguments: '{"q":"chairs"}' }] });
    const two: any[] = [];
    const s4 = c.responses.stream({ input: "Desks and chairs?", tools: [fn] });
    for await (const e of s4) two.push(e);
    const ends = two.filter((e) => e.type.startsWith("response.output_item.") || e.type === "response.function_call_arguments.done").map((e) => `${e.type.split(".").at(-1)} ${e.output_index}`);
    expect(ends).toEqual(["added 0", "done 0", "done 0", "added 1", "done 1", "done 1"]);
    expect((await s4.finalResponse()).output.map((o: any) => [o.arguments, o.status])).toEqual([['{"q":"desks"}', "completed"], ['{"q":"chairs"}', "completed"]]);
    if (schemas) expect(two.flatMap((e) => schemas.check(schemas.eventSchema(e.type) ?? "missing", JSON.parse(JSON.stringify(e))))).toEqual([]);
    if (schemas) expect(order.flatMap((e) => schemas.check(schemas.eventSchema(e.type) ?? "missing", JSON.parse(JSON.stringify(e))))).toEqual([]);
  });

  test("max_output_tokens bounds the whole response: each turn gets what the turns before it left", async () => {
    const search = (q: string) => ({ toolCalls: [{ name: "file_search", arguments: JSON.stringify({ queries: [q] }) }] });
    // (the scripted server counts 7 completion tokens a turn)
    up.script(search("leave"), search("travel"), search("bags"), { text: "never asked" });
    const r = await c.responses.create({ model: MODEL, input: "Tell me everything", tools: [{ type: "file_search", vector_store_ids: [store] }], max_output_tokens: 16 });
    expect(up.received.map((x) => x.body.max_tokens)).toEqual([16, 9, 2]);
    expect(r.status).toBe("incomplete");
    expect(r.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(r.usage?.output_tokens).toBe(21);
    expect(specProblems("Response", r)).toEqual([]);
  });

  test("retrieve, input items, delete; store: false keeps nothing", async () => {
    const r = await c.responses.create({ input: [{ role: "user", content: [{ type: "input_text", text: "hello" }] }], instructions: "Be brief.", metadata: { ticket: "42" } });
    expect(r.output_text).toBe("ok");
    expect(up.received[0]!.body.messages).toEqual([{ role: "system", content: "Be brief." }, { role: "user", content: "hello" }]);
    // (`include` as the SDKs send a query array: include[]=...)
    const got = await c.responses.retrieve(r.id, { include: ["file_search_call.results"] });
    expect(got).toMatchObject({ id: r.id, status: "completed", instructions: "Be brief.", metadata: { ticket: "42" }, output: r.output });
    const items = await c.responses.inputItems.list(r.id, { include: ["file_search_call.results", "message.input_image.image_url"] });
    expect(items.data).toHaveLength(1);
    expect(items.data[0]).toMatchObject({ type: "message", role: "user", status: "completed", content: [{ type: "input_text", text: "hello" }] });
    const raw = await (await fetch(`${ragd.baseURL}/responses/${r.id}/input_items`, { headers: { authorization: `Bearer ${ragd.key}` } })).json();
    expect(raw).toMatchObject({ object: "list", first_id: items.data[0]!.id, last_id: items.data[0]!.id, has_more: false });
    expect(specProblems("ResponseItemList", raw)).toEqual([]);
    await c.responses.delete(r.id);
    expect(await failure(c.responses.retrieve(r.id))).toMatchObject({ status: 404 });

    // settings the spec has that change nothing here are taken
    const cached = await c.responses.create({ input: "cache me", prompt_cache_retention: "24h", prompt_cache_options: {}, context_management: [{ type: "compaction", compact_threshold: 1000 }] } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(cached.status).toBe("completed");

    const unstored = await c.responses.create({ input: "not kept", store: false });
    expect((unstored as any).store).toBe(false);
    expect(await failure(c.responses.retrieve(unstored.id))).toMatchObject({ status: 404 });
  });

  test("previous_response_id continues the conversation: earlier turns, passages and citations carry over", async () => {
    up.script({ toolCalls: [{ name: "file_search", arguments: '{"queries":["parental leave"]}' }] }, { text: "26 weeks [1]." }, { text: "Within two years, as passage [1] says." });
    const first = await c.responses.create({ input: "Parental leave length?", instructions: "Answer in one line.", tools: [{ type: "file_search", vector_store_ids: [store] }] });
    const second = await c.responses.create({ input: "By when must it be taken?", previous_response_id: first.id, tools: [{ type: "file_search", vector_store_ids: [store] }] });
    const msgs = messagesOf(up, 2);
    // the first turn, in order: question, tool call, passages, answer; then the new question
    const convo = msgs.filter((m) => m.role !== "system");
    expect(convo.map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant", "user"]);
    expect(convo[2]!.content).toContain("26 weeks of paid leave");
    expect(convo[3]!.content).toBe("26 weeks [1].");
    // instructions belong to their own response
    expect(allText(msgs)).not.toContain("Answer in one line.");
    // [1] in the second answer is the first turn's passage
    expect((second.output[0] as any).content[0].annotations[0].file_id).toBe(files.policy);
    // as OpenAI answers it: clients that see this code send the whole conversation instead
    expect(await failure(c.responses.create({ input: "x", previous_response_id: "resp_" + "0".repeat(40) }))).toMatchObject({ status: 400, code: "previous_response_not_found", param: "previous_response_id" });
  });

  test("input_file: a PDF uploaded for user_data is read, waiting for its ingestion", async () => {
    const pdf = await c.files.create({ file: await toFile(readFileSync(join(ROOT, "test/fixtures/docs/report.pdf")), "q3.pdf"), purpose: "user_data" });
    const r = await c.responses.create({
      input: [{ role: "user", content: [{ type: "input_file", file_id: pdf.id }, { type: "input_text", text: "Summarise the outlook." }] }],
    });
    expect(r.status).toBe("completed");
    const user = messagesOf(up, 0).at(-1)!;
    expect(user.role).toBe("user");
    expect(user.content).toContain('Contents of the file "q3.pdf"');
    expect(user.content).toContain("Revenue grew by twelve percent in Europe.");
    expect(user.content).toContain("the board expects steady growth");
    expect(user.content).toEndWith("Summarise the outlook.");
    const items = await c.responses.inputItems.list(r.id);
    expect((items.data[0] as any).content[0]).toEqual({ type: "input_file", file_id: pdf.id, filename: "q3.pdf" });
    expect(await failure(c.responses.create({ input: [{ role: "user", content: [{ type: "input_file", file_data: "data:application/pdf;base64,AAAA" }] }] }))).toMatchObject({
      status: 400,
      param: "input[0].content[0].file_id",
    });
  });

  test("an input file whose bytes are gone from the file store says so, naming the input part; the model is not asked", async () => {
    const { rmSync } = await import("node:fs");
    const removeBlob = (key: string) => rmSync(join(ragd.dataDir, blobFiles(ragd.dataDir).find((p) => p.endsWith(key))!));
    const notes = await c.files.create({ file: await toFile(Buffer.from('{"note":"kept for a batch"}\n'), "notes.jsonl"), purpose: "batch" });
    const png = await c.files.create({ file: await toFile(Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64"), "dot.png"), purpose: "vision" });
    removeBlob(notes.id);
    removeBlob(png.id);
    const asked = up.received.length;
    const noClientRetries = new OpenAI({ baseURL: ragd.baseURL, apiKey: ragd.key, maxRetries: 0 });
    for (const [part, id] of [[{ type: "input_file", file_id: notes.id }, notes.id], [{ type: "input_image", file_id: png.id, detail: "auto" }, png.id]] as const) {
      const e = await failure(noClientRetries.responses.create({ input: [{ role: "user", content: [{ type: "input_text", text: "Read this." }, part as any] }] }));
      expect([e.status, e.code, e.param]).toEqual([500, "stored_bytes_missing", "input[0].content[1].file_id"]);
      expect(e.message).toContain(id);
    }
    expect(up.received.length).toBe(asked);
  });

  test("function tools go to the model; its calls come back to the caller and their outputs continue the turn", async () => {
    const weather = { type: "function" as const, name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }, strict: true };
    up.script({ toolCalls: [{ name: "get_weather", arguments: '{"city":"Oslo"}' }] }, { text: "It is 3 degrees in Oslo." });
    const r = await c.responses.create({ input: "Weather in Oslo?", tools: [weather] });
    expect(up.received[0]!.body.tools).toEqual([{ type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: weather.parameters, strict: true } }]);
    const call = r.output[0] as any;
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", arguments: '{"city":"Oslo"}', status: "completed" });
    expect(specProblems("Response", r)).toEqual([]);
    const next = await c.responses.create({ previous_response_id: r.id, input: [{ type: "function_call_output", call_id: call.call_id, output: '{"celsius":3}' }], tools: [weather] });
    expect(next.output_text).toBe("It is 3 degrees in Oslo.");
    const msgs = messagesOf(up, 1);
    expect(msgs.slice(-2)).toEqual([
      { role: "assistant", content: null, tool_calls: [{ id: call.call_id, type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }] },
      { role: "tool", tool_call_id: call.call_id, content: '{"celsius":3}' },
    ]);
    expect(up.problems).toEqual([]);
  });

  test("truncation auto: a conversation past the model's context loses its oldest turns until it fits", async () => {
    const tooLong = (code: string | null) => ({ status: 400, body: { error: { message: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.", type: "invalid_request_error", param: "messages", code } } });
    up.script({ text: "First answer." }, { text: "Second answer." });
    const first = await c.responses.create({ input: "First question" });
    const second = await c.responses.create({ input: "Second question", previous_response_id: first.id });
    // OpenAI's code, then a server's words alone (vLLM sends no code): a turn goes each time
    up.script(tooLong("context_length_exceeded"), tooLong(null), { text: "Fits now." });
    const third = await c.responses.create({ input: "Third question", previous_response_id: second.id, truncation: "auto" });
    expect([third.status, third.output_text, third.truncation]).toEqual(["completed", "Fits now.", "auto"]);
    const sent = [2, 3, 4].map((i) => messagesOf(up, i).filter((m) => m.role !== "system").map((m) => m.content));
    expect(sent).toEqual([
      ["First question", "First answer.", "Second question", "Second answer.", "Third question"],
      ["Second question", "Second answer.", "Third question"],
      ["Third question"],
    ]);
    // what is stored keeps the whole conversation: the next turn starts from all of it
    up.script({ text: "Four." });
    await c.responses.create({ input: "Fourth", previous_response_id: third.id });
    expect(messagesOf(up, 5).filter((m) => m.role !== "system")).toHaveLength(7);
    // nothing left to drop, or truncation disabled (the default): the model server's 400
    up.script(tooLong("context_length_exceeded"));
    expect(await failure(c.responses.create({ input: "Alone and too long", truncation: "auto" }))).toMatchObject({ status: 400, code: "context_length_exceeded" });
    up.script(tooLong("context_length_exceeded"));
    expect(await failure(c.responses.create({ input: "Again", previous_response_id: second.id }))).toMatchObject({ status: 400, code: "context_length_exceeded" });
    expect(up.received).toHaveLength(8);
    // a conversation that opens with a developer message: the first retry already drops a turn
    up.script({ text: "Noted." });
    const briefed = await c.responses.create({ input: [{ role: "developer", content: "Old briefing ".repeat(50) }, { role: "user", content: "Q1" }] });
    up.script(tooLong(null), { text: "Short now." });
    const short = await c.responses.create({ input: [{ role: "user", content: "Q2" }], previous_response_id: briefed.id, truncation: "auto" });
    expect(short.output_text).toBe("Short now.");
    expect(up.received.slice(-2).map((r) => r.body.messages.map((m: any) => `${m.role} ${m.content.slice(0, 3)}`))).toEqual([["system Old", "user Q1", "assistant Not", "user Q2"], ["user Q2"]]);
  });

  test("item_reference: a client that keeps only ids (the AI SDK, store: true) sends earlier items by reference", async () => {
    const weather = { type: "function" as const, name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: false };
    up.script({ text: "Which city?" }, { toolCalls: [{ name: "get_weather", arguments: '{"city":"Oslo"}' }] }, { text: "It is 3 degrees in Oslo." });
    const asked = await c.responses.create({ input: "Weather?", tools: [weather] });
    const answer = asked.output[0] as any;
    const callTurn = await c.responses.create({
      input: [{ type: "item_reference", id: (await c.responses.inputItems.list(asked.id)).data[0]!.id }, { id: answer.id } as any, { role: "user", content: "Oslo" }],
      tools: [weather],
    });
    const call = callTurn.output[0] as any;
    const last = await c.responses.create({ input: [{ type: "item_reference", id: call.id }, { type: "function_call_output", call_id: call.call_id, output: '{"celsius":3}' }], tools: [weather] });
    expect(last.output_text).toBe("It is 3 degrees in Oslo.");
    // each reference reached the model as the item it names
    expect(messagesOf(up, 1).filter((m) => m.role !== "system")).toEqual([
      { role: "user", content: "Weather?" },
      { role: "assistant", content: "Which city?" },
      { role: "user", content: "Oslo" },
    ]);
    expect(messagesOf(up, 2).filter((m) => m.role !== "system")).toEqual([
      { role: "assistant", content: null, tool_calls: [{ id: call.call_id, type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } }] },
      { role: "tool", tool_call_id: call.call_id, content: '{"celsius":3}' },
    ]);
    // listed as copies, each under an id of the response that used it
    const listed = (await c.responses.inputItems.list(callTurn.id, { order: "asc" })).data;
    expect(listed.slice(0, 2).map((i: any) => [i.type, i.role, i.content[0].text])).toEqual([
      ["message", "user", "Weather?"],
      ["message", "assistant", "Which city?"],
    ]);
    expect(listed.map((i) => i.id)).not.toContain(answer.id);
    // so a copy outlives the response it came from, and one item referenced twice (type null
    // is the spec's other way to say item_reference) is two items
    await c.responses.delete(asked.id);
    up.script({ text: "Again." });
    const again = await c.responses.create({ input: [{ type: "item_reference", id: listed[1]!.id }, { type: null, id: listed[1]!.id } as any, { role: "user", content: "Once more" }] });
    expect(messagesOf(up, 3).filter((m) => m.role !== "system").map((m) => m.content)).toEqual(["Which city?", "Which city?", "Once more"]);
    const twice = (await c.responses.inputItems.list(again.id, { order: "asc" })).data.map((i) => i.id);
    expect(new Set(twice).size).toBe(3);
    const raw = await fetch(`${ragd.baseURL}/responses/${callTurn.id}/input_items`, { headers: { authorization: `Bearer ${ragd.key}` } });
    expect(specProblems("ResponseItemList", await raw.json())).toEqual([]);
    // an id no stored response of this project holds: refused before the model is asked
    const before = up.received.length;
    const other = ragd.client(await createKey(ragd.dataDir, "refs-other"));
    for (const [client, id] of [[c, "msg_" + "0".repeat(52)], [c, "msg_unknown"], [other, answer.id]] as const) {
      const e = await failure(client.responses.create({ input: [{ type: "item_reference", id }] }));
      expect([e.status, e.code, e.param]).toEqual([400, "invalid_value", "input[0].id"]);
    }
    const unstored = await c.responses.create({ input: "not kept", store: false });
    expect(await failure(c.responses.create({ input: [{ type: "item_reference", id: unstored.output[0]!.id as string }] }))).toMatchObject({ status: 400, param: "input[0].id" });
    expect(up.received.length).toBe(before + 1);
    expect(await failure(c.responses.create({ input: [{ type: "item_reference", id: answer.id }] }))).toMatchObject({ status: 400, param: "input[0].id" }); // its response deleted
  });

  test("another project sees none of it: stores and responses are 404, its conversations not found", async () => {
    const other = ragd.client(await createKey(ragd.dataDir, "answers-other"));
    expect(await failure(other.responses.create({ input: "x", tools: [{ type: "file_search", vector_store_ids: [store] }] }))).toMatchObject({ status: 404 });
    const mine = await c.responses.create({ input: "mine" });
    expect(await failure(other.responses.retrieve(mine.id))).toMatchObject({ status: 404 });
    expect(await failure(other.responses.inputItems.list(mine.id))).toMatchObject({ status: 404 });
    expect(await failure(other.responses.delete(mine.id))).toMatchObject({ status: 404 });
    expect(await failure(other.responses.create({ input: "x", previous_response_id: mine.id }))).toMatchObject({ status: 400, code: "previous_response_not_found" });
    expect(await failure(other.chat.completions.create({ messages: [{ role: "user", content: "x" }], file_search: { vector_store_ids: [store] } } as never))).toMatchObject({ status: 404 });
    expect((await c.responses.retrieve(mine.id)).id).toBe(mine.id);
  });

  test("the model server's failures: 429 passed on with retry-after, 5xx as 502, silence as 504", async () => {
    up.script({ status: 429, headers: { "retry-after": "7" }, body: { error: { message: "slow down", type: "rate_limit_error" } } });
    const limited = await fetch(`${ragd.baseURL}/responses`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" }, body: JSON.stringify({ input: "hi" }) });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
    expect((await limited.json()).error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });

    // the headers the SDKs read first come too
    up.script({ status: 429, headers: { "retry-after-ms": "650", "x-ratelimit-remaining-requests": "0", "x-other": "no" }, body: { error: { message: "slow down" } } });
    const limitedChat = await fetch(`${ragd.baseURL}/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" }, body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }) });
    expect([limitedChat.status, limitedChat.headers.get("retry-after-ms"), limitedChat.headers.get("x-ratelimit-remaining-requests"), limitedChat.headers.get("x-other")]).toEqual([429, "650", "0", null]);

    // a 4xx in OpenAI's envelope keeps its own code and param: a client may act on them
    up.script({ status: 400, body: { error: { message: "This model's maximum context length is 8192 tokens.", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } } });
    const long = await failure(c.chat.completions.create({ messages: [{ role: "user", content: "hi" }] } as never));
    expect(long).toMatchObject({ status: 400, code: "context_length_exceeded", param: "messages", type: "invalid_request_error" });
    expect(long.error.message).toContain("maximum context length");
    expect(specProblems("ErrorResponse", { error: long.error })).toEqual([]);

    // ragd's key refused: a 502 the SDKs are told not to retry (the next try sends the same key)
    up.script({ status: 401, body: { error: { message: "bad key" } } });
    const keyed = await failure(ragd.client(undefined, { maxRetries: 2 }).chat.completions.create({ messages: [{ role: "user", content: "hi" }] } as never));
    expect(keyed).toMatchObject({ status: 502, code: "model_server_unreachable" });
    expect(keyed.headers.get("x-should-retry")).toBe("false");
    expect(up.received).toHaveLength(4);

    // the client's own tools refused by the model: a 400 quoting it, not a 500
    up.script({ status: 400, body: { error: { message: "registry.ollama.ai/library/gemma:2b does not support tools", type: "invalid_request_error" } } });
    const weather = { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: {} } } };
    const noTools = await failure(c.chat.completions.create({ messages: [{ role: "user", content: "weather?" }], tools: [weather] } as never));
    expect(noTools).toMatchObject({ status: 400, code: "model_server_rejected", param: "tools" });
    expect(noTools.error.message).toContain("does not support tools");

    up.script({ status: 503, body: { error: { message: "model loading" } } });
    const e502 = await c.chat.completions.create({ messages: [{ role: "user", content: "hi" }] } as never).catch((e) => e);
    expect(e502.status).toBe(502);
    expect(e502.error).toMatchObject({ type: "api_error", code: "model_server_unreachable" });
    expect(e502.error.message).toContain("model loading");

    up.script({ hang: true });
    const t0 = Date.now();
    const e504 = await c.responses.create({ input: "hi" }).catch((e) => e);
    expect(e504.status).toBe(504);
    expect(e504.error).toMatchObject({ type: "api_error", code: "model_server_timeout" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    // the silent request was dropped, not left open
    await until(() => up.received.at(-1)!.aborted, (a) => a);
    expect(specProblems("ErrorResponse", { error: e504.error })).toEqual([]);

    // silence mid-stream: the stream ends with response.failed
    up.script({ stallAfter: "Partial" });
    const events: any[] = [];
    for await (const e of await c.responses.create({ input: "hi", stream: true })) events.push(e);
    expect(events.at(-1)).toMatchObject({ type: "response.failed", response: { status: "failed", error: { code: "server_error" } } });
    expect(events.at(-1).response.error.message).toContain("--llm-timeout");
  });

  test("the client's disconnect cancels the model server's request, streamed or not", async () => {
    up.script({ hang: true });
    const ac = new AbortController();
    const pending = fetch(`${ragd.baseURL}/responses`, {
      method: "POST",
      headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" },
      body: JSON.stringify({ input: "never answered" }),
      signal: ac.signal,
    }).catch(() => null);
    await until(() => up.received.length, (n) => n === 1);
    ac.abort();
    await pending;
    await until(() => up.received[0]!.aborted, (a) => a, 5_000);

    up.script({ stallAfter: "The first words" });
    const ac2 = new AbortController();
    const stream = await c.chat.completions.create({ messages: [{ role: "user", content: "talk" }], stream: true } as never, { signal: ac2.signal }) as unknown as AsyncIterable<any>;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) break; // leaving the loop closes the stream
    }
    await until(() => up.received[1]!.aborted, (a) => a, 5_000);
    ac2.abort();
  });

  test("chat completions pass through, and ground in named stores when asked", async () => {
    const tools = [{ type: "function" as const, function: { name: "lookup", parameters: { type: "object", properties: {} } } }];
    const plain = await c.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }], temperature: 0.2, tools, user: "u1" });
    expect(up.received[0]!.body).toEqual({ model: MODEL, messages: [{ role: "user", content: "hi" }], temperature: 0.2, tools, user: "u1" });
    expect(plain.choices[0]!.message.content).toBe("ok");
    expect((plain as any).sources).toBeUndefined();
    expect(plain.usage?.total_tokens).toBe(18);

    up.script({ text: "26 weeks [1]." });
    const grounded: any = await c.chat.completions.create({
      model: MODEL,
      messages: [{ role: "system", content: "You are HR." }, { role: "user", content: "How long is parental leave?" }],
      file_search: { vector_store_ids: [store], max_num_results: 1 },
    } as never);
    const sent = messagesOf(up, 1);
    expect(sent.map((m) => m.role)).toEqual(["system", "system", "user"]);
    expect(sent[1]!.content).toContain("[1] leave-policy.txt");
    expect(sent[1]!.content).toContain(POLICY);
    expect(up.received[1]!.body.file_search).toBeUndefined();
    expect(grounded.sources).toEqual([{ index: 1, file_id: files.policy, filename: "leave-policy.txt", score: expect.any(Number), attributes: {} }]);
    const { sources: _, ...completion } = grounded;
    expect(specProblems("CreateChatCompletionResponse", completion)).toEqual([]);

    up.script({ text: "Economy on short flights [1].", pieces: 5 });
    const stream = await c.chat.completions.create({ messages: [{ role: "user", content: "Which class on short flights?" }], stream: true, stream_options: { include_usage: true }, file_search: { vector_store_ids: [store], max_num_results: 1 } } as never);
    const chunks: any[] = [];
    for await (const ch of stream as unknown as AsyncIterable<any>) chunks.push(ch);
    expect(chunks[0].sources[0]).toMatchObject({ index: 1, file_id: files.travel });
    expect(chunks.slice(1).every((ch) => ch.sources === undefined)).toBe(true);
    expect(chunks.map((ch) => ch.choices[0]?.delta?.content ?? "").join("")).toBe("Economy on short flights [1].");
    expect(chunks.at(-1).usage.total_tokens).toBe(18);
    expect(up.received[2]!.body.stream_options).toEqual({ include_usage: true });
    expect(up.problems).toEqual([]);
  });

  test("models: the embedding model and the model server's chat models", async () => {
    const ids = (await c.models.list()).data.map((m) => m.id);
    expect(ids).toContain(MODEL);
    expect(ids).toContain("qwen2.5"); // listed by the model server itself
    expect((await c.models.retrieve(MODEL)).owned_by).toBe("default");
    // an id with a slash, as openai-python sends it (unescaped) and as the Node SDK does (escaped)
    for (const path of ["meta-llama/Llama-3.1-8B", "meta-llama%2FLlama-3.1-8B"]) {
      const r = await fetch(`${ragd.baseURL}/models/${path}`, { headers: { authorization: `Bearer ${ragd.key}` } });
      expect({ status: r.status, id: ((await r.json()) as { id?: string }).id }).toEqual({ status: 200, id: "meta-llama/Llama-3.1-8B" });
    }
    expect((await c.models.retrieve("meta-llama/Llama-3.1-8B")).id).toBe("meta-llama/Llama-3.1-8B");
    expect(await failure(c.models.retrieve("meta-llama/nope"))).toMatchObject({ status: 404, code: "model_not_found" });
  });

  test("background: queued at once, written behind the request, cancellable", async () => {
    up.script({ text: "Done in the background.", delayMs: 100, pieces: 3 });
    const r = await c.responses.create({ input: "slow job", background: true });
    expect(r.status).toBe("queued");
    const done = await until(() => c.responses.retrieve(r.id), (x) => x.status === "completed");
    expect(done.output_text).toBe("Done in the background.");

    up.script({ hang: true });
    const slow = await c.responses.create({ input: "never ends", background: true });
    await until(() => up.received.length, (n) => n === 2);
    const cancelled = await c.responses.cancel(slow.id);
    expect(cancelled.status).toBe("cancelled");
    await until(() => up.received[1]!.aborted, (a) => a, 5_000);
    const plain = await c.responses.create({ input: "x" });
    expect(await failure(c.responses.cancel(plain.id))).toMatchObject({ status: 400 });
  });

  test("however a response ends, its client is told: cancelled, deleted, refused by the model server", async () => {
    const schemas = specSchemas();
    const valid = (events: any[]) => (schemas ? events.flatMap((e) => schemas.check(schemas.eventSchema(e.type) ?? "missing", JSON.parse(JSON.stringify(e)))) : []);
    // A background stream cancelled while it writes ends with the response as it stands.
    up.script({ stallAfter: "Half an answ" });
    const stream = c.responses.stream({ input: "write at length", background: true });
    const events: any[] = [];
    let id = "";
    for await (const e of stream) {
      events.push(e);
      if (e.type === "response.created") id = e.response.id;
      if (e.type === "response.output_text.delta") expect((await c.responses.cancel(id)).status).toBe("cancelled");
    }
    expect(events.slice(0, 3).map((e) => e.type)).toEqual(["response.created", "response.queued", "response.in_progress"]);
    expect(events.at(-1)).toMatchObject({ type: "response.incomplete", response: { status: "cancelled" } });
    // the message being written ends first, with its done events
    expect(events.slice(-4).map((e) => e.type)).toEqual(["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"]);
    expect(events.at(-2).item).toMatchObject({ status: "incomplete", content: [{ text: "Half an answ" }] });
    const final = await stream.finalResponse();
    expect(final.status).toBe("cancelled");
    expect(final.output.map((o: any) => o.status)).toEqual(["incomplete"]);
    expect((await c.responses.retrieve(id)).output.map((o: any) => o.status)).toEqual(["incomplete"]);
    expect(valid(events)).toEqual([]);

    // A JSON answer whose response is deleted while it runs: the response as it ended, not an empty 499.
    up.script({ stallAfter: "Some" });
    const pending = c.responses.create({ input: "never mind" });
    await until(() => up.received.length, (n) => n === 2);
    const db = new Database(join(ragd.dataDir, "ragd.db"), { readonly: true });
    const running = await until(() => db.query(`SELECT id FROM responses WHERE status = 'in_progress'`).get() as { id: string } | null, (r) => r !== null);
    db.close();
    await c.responses.delete(running!.id);
    const ended = await pending;
    expect(ended).toMatchObject({ id: running!.id, status: "cancelled" });
    expect(ended.output.map((o: any) => o.status)).toEqual(["incomplete"]);

    // A stream the model server refuses: response.failed says it was the prompt, in the
    // spec's codes (a JSON answer is the 400 with the model server's own code), and quotes it.
    up.script({ status: 400, body: { error: { message: "This model's maximum context length is 8192 tokens.", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } } });
    const refused: any[] = [];
    for await (const e of await c.responses.create({ input: "too long", stream: true })) refused.push(e);
    expect(refused.at(-1)).toMatchObject({ type: "response.failed", response: { status: "failed", error: { code: "invalid_prompt" } } });
    expect(refused.at(-1).response.error.message).toContain("maximum context length is 8192 tokens");
    expect(valid(refused)).toEqual([]);

    // completed_at is only for completed responses
    up.script({ text: "Cut", finish: "length" });
    expect((await c.responses.create({ input: "cut short" })).completed_at ?? null).toBeNull();
    expect((await c.responses.create({ input: "whole" })).completed_at).toBeGreaterThan(0);
  });

  test("limits: files named too often, tool budgets within a turn, a silent non-streamed answer, tool errors that are not refusals", async () => {
    // one file named thirty times in a 4 MB body: refused before it is read thirty times
    const many = Array.from({ length: 30 }, () => ({ type: "input_file", file_id: files.policy }));
    const tooMany = await failure(c.responses.create({ input: [{ role: "user", content: many }] } as never));
    expect(tooMany).toMatchObject({ status: 400, param: "input[0].content[20].file_id" });
    expect(up.received).toHaveLength(0);

    // three searches at once with max_tool_calls 1: one runs, the others are told why not
    const call = (q: string) => ({ name: "file_search", arguments: JSON.stringify({ queries: [q] }) });
    up.script({ toolCalls: [call("leave"), call("travel"), call("revenue")] }, { text: "One search was enough [1]." });
    const budget = await c.responses.create({ input: "three things", max_tool_calls: 1, tools: [{ type: "file_search", vector_store_ids: [store] }] });
    expect(budget.output.filter((o) => o.type === "file_search_call")).toHaveLength(1);
    const answers = messagesOf(up, 1).filter((m) => m.role === "tool");
    expect(answers).toHaveLength(3);
    expect(answers.slice(1).every((m) => String(m.content).includes("max_tool_calls"))).toBe(true);
    expect(up.received[1]!.body.tools).toBeUndefined(); // no budget left: no search offered

    // a budget past this server's own (20) is accepted and echoed; the searches stop at 20
    up.reset();
    up.script({ toolCalls: Array.from({ length: 21 }, (_, i) => call(`topic ${i}`)) }, { text: "Enough [1]." });
    const wide = await c.responses.create({ input: "everything", max_tool_calls: 50, tools: [{ type: "file_search", vector_store_ids: [store] }] });
    expect(wide.max_tool_calls).toBe(50);
    expect(wide.output.filter((o) => o.type === "file_search_call")).toHaveLength(20);
    expect(messagesOf(up, 1).filter((m) => m.role === "tool" && String(m.content).includes("max_tool_calls"))).toHaveLength(1);

    // a function name streamed in two pieces is announced whole
    up.reset();
    up.script({ toolCalls: [{ name: "get_weather", arguments: '{"city":"Bergen"}' }], splitName: true });
    const fns = [
      { type: "function" as const, name: "get", parameters: { type: "object", properties: {} }, strict: false },
      { type: "function" as const, name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: false },
    ];
    const events: any[] = [];
    for await (const e of await c.responses.create({ input: "weather", tools: fns, stream: true })) events.push(e);
    expect(events.filter((e) => e.type === "response.output_item.added").map((e) => e.item.name)).toEqual(["get_weather"]);

    // headers, then a body that never comes: cut at --llm-timeout
    up.script({ stallBody: true });
    const t0 = Date.now();
    const silent = await failure(c.chat.completions.create({ messages: [{ role: "user", content: "hi" }] } as never));
    expect(silent).toMatchObject({ status: 504 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    await until(() => up.received.at(-1)!.aborted, (a) => a, 5_000);

    // a 400 that mentions tools but is not a refusal of them is passed on, and not learned
    up.script({ status: 400, body: { error: { message: "messages with role 'tool' must be a response to a preceding message with 'tool_calls'" } } });
    const rejected = await failure(c.responses.create({ model: "strict-model", input: "x", tools: [{ type: "file_search", vector_store_ids: [store] }] }));
    expect(rejected).toMatchObject({ status: 400, code: "model_server_rejected" });
    await c.responses.create({ model: "strict-model", input: "x", tools: [{ type: "file_search", vector_store_ids: [store] }] });
    expect(up.received.at(-1)!.body.tools.map((t: any) => t.function.name)).toEqual(["file_search"]);
  });

  test("an image sent inline goes to the model past the 4 MB other bodies take; a body past its limit is told which", async () => {
    // a phone photo as a data URL: about 6 MB of base64
    const photo = `data:image/jpeg;base64,${Buffer.alloc(4_500_000, 7).toString("base64")}`;
    up.script({ text: "A photo." });
    const seen = await c.chat.completions.create({ messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: photo } }] }] } as never);
    expect((seen as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe("A photo.");
    expect(up.received[0]!.body.messages[0].content[1].image_url.url).toBe(photo);
    const post = (path: string, body: string) => fetch(`${ragd.baseURL}${path}`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" }, body });
    const big = await post("/vector_stores", JSON.stringify({ name: "x", metadata: { k: "v".repeat(5_000_000) } }));
    expect({ status: big.status, error: (await big.json()).error }).toMatchObject({ status: 400, error: { code: "invalid_body", message: "The JSON body is larger than the 4 MB this operation takes." } });
    // a stored response keeps its input: its images come by file_id, as it says
    const stored = await post("/responses", JSON.stringify({ input: [{ role: "user", content: [{ type: "input_image", image_url: photo }] }] }));
    expect({ status: stored.status, error: (await stored.json()).error }).toMatchObject({ status: 400, error: { code: "invalid_body", message: "The JSON body is larger than the 4 MB this operation takes. Upload large files (images with purpose 'vision') and name them by file_id." } });
    const huge = await post("/chat/completions", `{"messages":[{"role":"user","content":"${"x".repeat(51 * 1024 * 1024)}"}]}`);
    expect({ status: huge.status, error: (await huge.json()).error }).toMatchObject({ status: 400, error: { code: "invalid_body", message: "The JSON body is larger than the 50 MB this operation takes." } });
    expect(up.received).toHaveLength(1);
  });

  test("a conversation is read back up to 16M characters: past that, its next turn is refused, saying what to do", async () => {
    // (a turn is stored in about three times its input: the request, its items, the conversation)
    const turn = "x".repeat(1_200_000);
    let previous: string | undefined;
    for (let i = 0; i < 5; i++) {
      up.script({ text: `noted ${i}` });
      previous = (await c.responses.create({ input: `${i} ${turn}`, ...(previous ? { previous_response_id: previous } : {}) })).id;
    }
    expect(up.received.at(-1)!.body.messages.length).toBeGreaterThan(8);
    const refused = await failure(c.responses.create({ input: "one more", previous_response_id: previous! }));
    expect(refused).toMatchObject({ status: 400, code: "invalid_value", param: "previous_response_id" });
    expect(refused.error.message).toContain("start a new one");
    expect(up.received).toHaveLength(5);
  }, 60_000);

  test("bad requests get the OpenAI envelope naming the field", async () => {
    const bad = async (body: object) => {
      const res = await fetch(`${ragd.baseURL}/responses`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      return { status: res.status, error: (await res.json()).error };
    };
    expect(await bad({ input: "x", tools: [{ type: "web_search" }] })).toMatchObject({ status: 400, error: { type: "invalid_request_error", param: "tools[0]" } });
    expect(await bad({ input: "x", tools: [{ type: "file_search", vector_store_ids: ["vs_" + "0".repeat(24)] }] })).toMatchObject({ status: 404, error: { param: "tools[0].vector_store_ids" } });
    expect(await bad({ input: [{ role: "robot", content: "x" }] })).toMatchObject({ status: 400, error: { param: "input[0].role" } });
    expect(await bad({ input: "x", tool_choice: { type: "function", name: "nope" } })).toMatchObject({ status: 400, error: { param: "tool_choice" } });
    // what ragd cannot do is refused, saying what to do instead (moderation is not skipped unasked)
    expect(await bad({ input: "x", conversation: "conv_1" })).toMatchObject({ status: 400, error: { code: "invalid_value", param: "conversation" } });
    expect(await bad({ input: "x", prompt: { id: "pmpt_1" } })).toMatchObject({ status: 400, error: { code: "invalid_value", param: "prompt" } });
    expect(await bad({ input: "x", moderation: { model: "omni-moderation-latest" } })).toMatchObject({ status: 400, error: { code: "invalid_value", param: "moderation" } });
    expect(await bad({ input: "x", background: true, store: false })).toMatchObject({ status: 400, error: { param: "background" } });
    expect(await bad({})).toMatchObject({ status: 400, error: { code: "missing_required_parameter", param: "input" } });
    expect(await bad({ input: [] })).toMatchObject({ status: 400, error: { code: "invalid_value", param: "input" } });
    // a filter the search would refuse is refused before anything is written
    expect(await bad({ input: "x", tools: [{ type: "file_search", vector_store_ids: [store], filters: { type: "gt", key: "a", value: true } }] })).toMatchObject({ status: 400, error: { param: "tools[0].filters" } });
    // a query list names the parameter and the value it does not take, however it is sent
    for (const q of ["include=bogus", "include%5B%5D=bogus", "include=file_search_call.results&include=bogus"]) {
      const res = await fetch(`${ragd.baseURL}/responses/resp_${"0".repeat(24)}/input_items?${q}`, { headers: { authorization: `Bearer ${ragd.key}` } });
      const { error } = await res.json();
      expect(res.status).toBe(400);
      expect(error).toMatchObject({ type: "invalid_request_error", code: "invalid_value", param: "include" });
      expect(error.message).toEndWith("got 'bogus'.");
    }
    expect(up.received).toHaveLength(0);
  });
});

describe("several model servers, tools off, and grounding every chat in the knowledge base", () => {
  let up: Upstream;
  let ragd: Ragd;

  beforeAll(async () => {
    up = await startUpstream();
    const upstreams = [{ name: "ollama", url: up.url, models: ["qwen2.5:7b"], tools: "off" }];
    ragd = await startRagd({ args: ["--llm-upstreams", JSON.stringify(upstreams), "--chat-grounding", "knowledge_base"] });
  });
  afterAll(async () => {
    await ragd?.stop();
    await up?.stop();
    if (ragd) cleanup(ragd.dataDir);
  });

  test("models route to their server; tools off means ragd searches; every chat is grounded in the knowledge base", async () => {
    const c = ragd.client();
    const f = await c.files.create({ file: await toFile(Buffer.from(TRAVEL), "travel.txt"), purpose: "knowledge_base" as never });
    await c.files.waitForProcessing(f.id, { pollInterval: 50 });
    expect(await failure(c.responses.create({ model: "gpt-4o", input: "x" }))).toMatchObject({ status: 404, code: "model_not_found" });

    const [kb] = (await c.vectorStores.list()).data;
    const r = await c.responses.create({ input: "Short flight class?", tools: [{ type: "file_search", vector_store_ids: [kb!.id] }] });
    expect(r.model).toBe("qwen2.5:7b"); // the only model served is the default
    expect(r.metadata).toEqual({ ragd_file_search: "user_input" });
    expect(up.received[0]!.body.tools).toBeUndefined();
    expect(allText(messagesOf(up, 0))).toContain("economy class");

    const chat: any = await c.chat.completions.create({ model: "qwen2.5:7b", messages: [{ role: "user", content: "What about checked bags?" }] });
    expect(allText(messagesOf(up, 1))).toContain("one checked bag");
    expect(chat.sources[0]).toMatchObject({ file_id: f.id, filename: "travel.txt" });
  });
});

describe("a model server out of reach, its URL holding a password", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    // (port 9 on loopback: nothing listens)
    ragd = await startRagd({ args: ["--llm-url", "http://svc:S3cretPass@127.0.0.1:9/v1", "--llm-model", "m", "--llm-timeout", "2"] });
  });
  afterAll(async () => {
    await ragd?.stop();
    if (ragd) cleanup(ragd.dataDir);
  });

  test("the 502 names where it is, never the password", async () => {
    const e = await failure(ragd.client(undefined, { maxRetries: 0 }).chat.completions.create({ messages: [{ role: "user", content: "hi" }] } as never));
    expect(e).toMatchObject({ status: 502, code: "model_server_unreachable" });
    expect(e.error.message).toContain("http://***@127.0.0.1:9/v1");
    expect(e.error.message).not.toContain("S3cret");
    const stored = await ragd.client(undefined, { maxRetries: 0 }).responses.create({ input: "hi", background: true });
    const ended = await until(() => ragd.client().responses.retrieve(stored.id), (r) => r.status === "failed", 10_000);
    expect(JSON.stringify(ended)).not.toContain("S3cret");
  });
});

describe("without a model server", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd();
  });
  afterAll(async () => {
    await ragd?.stop();
    if (ragd) cleanup(ragd.dataDir);
  });

  test("answers are a 503 that names the setting; everything else works", async () => {
    const c = ragd.client();
    const e = await c.responses.create({ model: "m", input: "hi" }).catch((x) => x);
    expect(e.status).toBe(503);
    expect(e.error).toMatchObject({ type: "api_error", code: "model_server_not_configured" });
    expect(e.error.message).toContain("--llm-url");
    expect(await failure(c.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }))).toMatchObject({ status: 503 });
    expect((await c.models.list()).data).toHaveLength(1);
    expect((await c.files.list()).data).toEqual([]);
  });
});

describe("responses across a restart", () => {
  let up: Upstream;
  let dataDir: string | null = null;
  beforeAll(async () => {
    up = await startUpstream();
  });
  afterAll(async () => {
    await up?.stop();
    if (dataDir) cleanup(dataDir);
  });

  test("a background response runs again after a stop; one whose client was cut off by the stop ends failed, saying so; a stop does not wait for the model", async () => {
    const args = ["--llm-url", up.url, "--llm-model", "m"];
    let ragd = await startRagd({ args });
    dataDir = ragd.dataDir;
    let c = ragd.client();
    up.script({ hang: true }, { hang: true });
    const bg = await c.responses.create({ input: "a long report", background: true });
    const events: any[] = [];
    const streaming = (async () => {
      for await (const e of await c.responses.create({ input: "streamed", stream: true })) events.push(e);
    })().catch(() => {});
    await until(() => up.received.length, (n) => n === 2);
    const t0 = Date.now();
    await ragd.stop(); // SIGTERM: the hanging model server does not hold the stop
    expect(Date.now() - t0).toBeLessThan(5_000);
    await streaming;
    expect(events.at(-1)).toMatchObject({ type: "response.failed" });
    expect(events.at(-1).response.error.message).toContain("shutting down");
    const streamedId = events[0].response.id;
    await until(() => up.received.every((r) => r.aborted), (all) => all);

    up.script({ text: "The report, finished after the restart." });
    ragd = await startRagd({ args, dataDir });
    c = ragd.client();
    try {
      const done = await until(() => c.responses.retrieve(bg.id), (r) => r.status === "completed");
      expect(done.output_text).toBe("The report, finished after the restart.");
      expect(up.received.at(-1)!.body.messages.at(-1)).toEqual({ role: "user", content: "a long report" });
      // what its client was told is what is kept
      const cut = await c.responses.retrieve(streamedId);
      expect(cut.status).toBe("failed");
      expect(cut.error?.message).toContain("shutting down");

      // killed outright mid-answer: the next start marks it failed, saying why
      up.script({ hang: true });
      const pending = fetch(`${ragd.baseURL}/responses`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" }, body: JSON.stringify({ input: "lost", stream: true }) });
      const res = await pending;
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      const lostId = /"id":"(resp_[^"]+)"/.exec(first)![1]!;
      await ragd.kill9();
      ragd = await startRagd({ args, dataDir });
      c = ragd.client();
      const lost = await c.responses.retrieve(lostId);
      expect(lost.status).toBe("failed");
      expect(lost.error?.message).toContain("stopped while this response was being written");
    } finally {
      await ragd.stop();
    }
  });
});
