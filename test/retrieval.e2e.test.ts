// Retrieval through the official SDK against a live server: the knowledge base, vector
// stores, batches, search with filters and locations, embeddings and models.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { Tiktoken } from "js-tiktoken/lite";
import cl100kRanks from "js-tiktoken/ranks/cl100k_base";
import { fixture } from "./helpers/docs";
import { cleanup, createKey, startRagd, type Ragd } from "./helpers/ragd";

const status = (p: Promise<unknown>) => p.then(() => 200, (e) => (e as { status: number }).status);
const errorOf = (p: Promise<unknown>) => p.then(() => null, (e) => (e as { error: unknown }).error);

describe("retrieval", () => {
  let ragd: Ragd;
  let client: OpenAI;
  let kb: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ragd = await startRagd();
    client = ragd.client();
    for (const name of ["report.pdf", "handbook.docx", "deck.pptx", "sales.xlsx", "talk.srt", "book.epub"]) {
      const f = await client.files.create({ file: fixture(name), purpose: "assistants" });
      ids[name] = f.id;
    }
    for (const id of Object.values(ids)) expect((await client.files.waitForProcessing(id, { pollInterval: 100 })).status).toBe("processed");
    const stores = await client.vectorStores.list();
    kb = stores.data.find((s) => s.name === "knowledge base")!.id;
  });
  afterAll(async () => {
    await ragd?.stop();
    cleanup(ragd?.dataDir);
  });

  test("every upload joins the project's knowledge base, with real counts and usage", async () => {
    const s = await client.vectorStores.retrieve(kb);
    expect(s.file_counts).toEqual({ in_progress: 0, completed: 6, failed: 0, cancelled: 0, total: 6 });
    expect(s.status).toBe("completed");
    expect(s.usage_bytes).toBeGreaterThan(1000);
    const files = await client.vectorStores.files.list(kb);
    expect(files.data.map((f) => f.id).sort()).toEqual(Object.values(ids).sort());
    expect(files.data.every((f) => f.status === "completed" && f.last_error === null)).toBe(true);
  });

  test("search finds the right file first and says where in it", async () => {
    const cases: [string, string, Record<string, unknown>][] = [
      ["how long is parental leave", "handbook.docx", {}],
      ["revenue growth in Europe", "report.pdf", {}],
      ["Berlin office launch roadmap", "deck.pptx", { slide: 1 }],
      ["which manager runs the EU region", "sales.xlsx", { sheet: "Sales" }],
      ["vector search in the talk", "talk.srt", { time: ["00:00:01.000", "00:01:02.000"] }],
    ];
    for (const [query, file, where] of cases) {
      const r = await client.vectorStores.search(kb, { query, max_num_results: 3 });
      expect({ query, file: r.data[0]?.filename }).toEqual({ query, file });
      expect(r.data[0]!.file_id).toBe(ids[file]!);
      expect((r.data[0] as unknown as { location: Record<string, unknown> }).location).toMatchObject(where);
      if (file === "report.pdf") {
        const l = (r.data[0] as unknown as { location: { page?: number; pages?: [number, number] } }).location;
        const [from, to] = l.pages ?? [l.page!, l.page!];
        expect(from <= 2 && 2 <= to).toBe(true);
      }
      expect(r.data[0]!.score).toBeGreaterThan(0);
      expect(r.data[0]!.score).toBeLessThanOrEqual(1);
      expect(r.data[0]!.content[0]!.type).toBe("text");
    }
    const none = await client.vectorStores.search(kb, { query: "parental leave", ranking_options: { score_threshold: 1 } });
    expect(none.data.length).toBeLessThanOrEqual(1);
  });

  test("stores: create with files, attributes and filters, one file in two stores, detach, delete", async () => {
    const a = await client.vectorStores.create({ name: "finance", file_ids: [ids["report.pdf"]!, ids["sales.xlsx"]!], metadata: { team: "fin" } });
    expect(a).toMatchObject({ object: "vector_store", name: "finance", metadata: { team: "fin" } });
    const b = await client.vectorStores.create({ name: "all-hands" });
    const attached = await client.vectorStores.files.createAndPoll(b.id, { file_id: ids["report.pdf"]!, attributes: { year: 2026, kind: "report", public: true } });
    expect(attached).toMatchObject({ id: ids["report.pdf"], status: "completed", attributes: { year: 2026, kind: "report", public: true } });
    await client.vectorStores.files.createAndPoll(b.id, { file_id: ids["deck.pptx"]!, attributes: { year: 2027, kind: "slides", 'odd "key".name': "q" } });
    expect((await client.vectorStores.retrieve(a.id)).file_counts.completed).toBe(2);
    // scoped: the finance store never returns the handbook
    const r = await client.vectorStores.search(a.id, { query: "parental leave" });
    expect(r.data.every((h) => h.file_id !== ids["handbook.docx"])).toBe(true);
    // filters on attributes
    const filtered = async (filters: unknown) =>
      (await client.vectorStores.search(b.id, { query: "Berlin office revenue", filters: filters as never })).data.map((h) => h.filename);
    expect(new Set(await filtered({ type: "eq", key: "kind", value: "slides" }))).toEqual(new Set(["deck.pptx"]));
    expect(new Set(await filtered({ type: "lt", key: "year", value: 2027 }))).toEqual(new Set(["report.pdf"]));
    expect(new Set(await filtered({ type: "in", key: "kind", value: ["report", "slides"] }))).toEqual(new Set(["report.pdf", "deck.pptx"]));
    expect(new Set(await filtered({ type: "and", filters: [{ type: "eq", key: "public", value: true }, { type: "gte", key: "year", value: 2026 }] }))).toEqual(new Set(["report.pdf"]));
    expect(new Set(await filtered({ type: "eq", key: 'odd "key".name', value: "q" }))).toEqual(new Set(["deck.pptx"]));
    expect(new Set(await filtered({ type: "or", filters: [{ type: "eq", key: "kind", value: "none" }, { type: "ne", key: "kind", value: "report" }] }))).toEqual(new Set(["deck.pptx"]));
    // update attributes, list with a status filter, content
    await client.vectorStores.files.update(ids["deck.pptx"]!, { vector_store_id: b.id, attributes: { kind: "deck" } });
    expect(await filtered({ type: "eq", key: "kind", value: "slides" })).toEqual([]);
    expect((await client.vectorStores.files.list(b.id, { filter: "completed" })).data.length).toBe(2);
    const content = await client.vectorStores.files.content(ids["report.pdf"]!, { vector_store_id: b.id });
    const texts: string[] = [];
    for await (const part of content) texts.push(part.text!);
    expect(texts.join("")).toContain("Revenue grew by twelve percent in Europe.");
    // detach: gone from that store only
    await client.vectorStores.files.delete(ids["deck.pptx"]!, { vector_store_id: b.id });
    expect((await client.vectorStores.search(b.id, { query: "Berlin office" })).data.every((h) => h.file_id !== ids["deck.pptx"])).toBe(true);
    expect((await client.vectorStores.search(kb, { query: "Berlin office" })).data[0]!.file_id).toBe(ids["deck.pptx"]!);
    // lifecycle
    const updated = await client.vectorStores.update(b.id, { name: "renamed", expires_after: { anchor: "last_active_at", days: 7 } });
    expect(updated).toMatchObject({ name: "renamed", expires_after: { anchor: "last_active_at", days: 7 } });
    expect(updated.expires_at).toBe(updated.last_active_at! + 7 * 86400);
    expect(await client.vectorStores.delete(b.id)).toEqual({ id: b.id, object: "vector_store.deleted", deleted: true });
    expect(await status(client.vectorStores.retrieve(b.id))).toBe(404);
    expect((await client.files.retrieve(ids["report.pdf"]!)).status).toBe("processed");
    expect(await status(client.vectorStores.delete(kb))).toBe(400);
  });

  test("before returns the page just before the cursor, in the order asked; an unnamed store's name is a string", async () => {
    const c = ragd.client(await createKey(ragd.dataDir, "paging-stores"));
    // the project's knowledge base is made on first use: first in its list
    const kbOf = (await c.vectorStores.list({ order: "asc" })).data[0]!;
    const stores: string[] = [];
    for (let i = 0; i < 7; i++) stores.push((await c.vectorStores.create({ name: `s${i}` })).id);
    expect(kbOf.name).toBe("knowledge base");
    const all = [kbOf.id, ...stores];
    const page = async (q: string) => (await (await fetch(`${ragd.baseURL}/vector_stores?${q}`, { headers: { authorization: `Bearer ${c.apiKey}` } })).json()) as { data: { id: string }[]; has_more: boolean; first_id: string; last_id: string };
    // asc: the two stores just before s5 are s3, s4
    const a = await page(`order=asc&limit=2&before=${stores[5]}`);
    expect(a.data.map((s) => s.id)).toEqual([stores[3]!, stores[4]!]);
    expect(a).toMatchObject({ first_id: stores[3], last_id: stores[4], has_more: true });
    // desc: the list is s6..s0, kb; the two just before s2 are s4, s3
    const d = await page(`order=desc&limit=2&before=${stores[2]}`);
    expect(d.data.map((s) => s.id)).toEqual([stores[4]!, stores[3]!]);
    // at the start of the list there is nothing more before
    const start = await page(`order=asc&limit=5&before=${stores[1]}`);
    expect(start.data.map((s) => s.id)).toEqual(all.slice(0, 2));
    expect(start.has_more).toBe(false);
    // store files page the same way
    const s = await c.vectorStores.create({});
    expect(s.name).toBe("");
    expect((await c.vectorStores.retrieve(s.id)).name).toBe("");
    const f: string[] = [];
    for (let i = 0; i < 4; i++) {
      const file = await c.files.create({ file: new File([`note ${i} about quarries`], `n${i}.txt`), purpose: "user_data" });
      await c.vectorStores.files.create(s.id, { file_id: file.id });
      f.push(file.id);
    }
    const files = await (await fetch(`${ragd.baseURL}/vector_stores/${s.id}/files?order=asc&limit=2&before=${f[3]}`, { headers: { authorization: `Bearer ${c.apiKey}` } })).json();
    expect(files.data.map((x: { id: string }) => x.id)).toEqual([f[1]!, f[2]!]);
  });

  test("file batches: uploadAndPoll, list the batch's files, cancel", async () => {
    const s = await client.vectorStores.create({ name: "batch" });
    const batch = await client.vectorStores.fileBatches.uploadAndPoll(s.id, { files: [fixture("guide.md"), fixture("notes.txt")] });
    expect(batch).toMatchObject({ object: "vector_store.files_batch", status: "completed", vector_store_id: s.id });
    expect(batch.file_counts).toMatchObject({ completed: 2, total: 2 });
    const listed = await client.vectorStores.fileBatches.listFiles(batch.id, { vector_store_id: s.id });
    expect(listed.data.length).toBe(2);
    // a batch of a file still being parsed can be cancelled; the file itself carries on
    const { bigPdf } = await import("./helpers/docs");
    const big = await client.files.create({ file: new File([await bigPdf(60)], "big.pdf"), purpose: "assistants" });
    const pending = await client.vectorStores.fileBatches.create(s.id, { file_ids: [big.id] });
    const cancelled = await client.vectorStores.fileBatches.cancel(pending.id, { vector_store_id: s.id });
    expect(cancelled.status).toBe("cancelled");
    expect((await client.files.waitForProcessing(big.id, { pollInterval: 100 })).status).toBe("processed");
    expect((await client.vectorStores.files.retrieve(big.id, { vector_store_id: s.id })).status).toBe("cancelled");
    expect((await client.vectorStores.search(s.id, { query: "page" })).data.every((h) => h.file_id !== big.id)).toBe(true);
  });

  test("uploadAndPoll into a store; deleting the file removes it from every store", async () => {
    const s = await client.vectorStores.create({ name: "temp" });
    const vf = await client.vectorStores.files.uploadAndPoll(s.id, new File(["The secret launch code word is periwinkle."], "secret.txt"));
    expect(vf.status).toBe("completed");
    expect((await client.vectorStores.search(s.id, { query: "launch code word" })).data[0]!.file_id).toBe(vf.id);
    expect((await client.vectorStores.search(kb, { query: "launch code word periwinkle" })).data[0]!.file_id).toBe(vf.id);
    await client.files.delete(vf.id);
    for (const store of [s.id, kb]) expect((await client.vectorStores.search(store, { query: "launch code word periwinkle" })).data.every((h) => h.file_id !== vf.id)).toBe(true);
    expect(await status(client.vectorStores.files.retrieve(vf.id, { vector_store_id: s.id }))).toBe(404);
    expect((await client.vectorStores.retrieve(s.id)).file_counts.total).toBe(0);
  });

  test("a store's own chunk size: the file is cut again for it, shared by stores of that size, dropped when none uses it", async () => {
    const topics = ["glaciers", "volcanoes", "tides", "deserts", "monsoons", "rivers", "forests", "reefs"];
    const text = topics
      .flatMap((t, i) => Array.from({ length: 12 }, (_, j) => `Field note ${i}.${j} on ${t}: observers logged how ${t} changed over season ${j} and why it mattered.`))
      .join(" ")
      .replace("Field note 5.7 on rivers:", "Field note 5.7 on rivers: the gauge at Kestrel Ford read exactly 4.2 metres.");
    const small = { type: "static" as const, static: { max_chunk_size_tokens: 100, chunk_overlap_tokens: 50 } };
    const file = await client.files.create({ file: new File([text], "notes.txt"), purpose: "assistants" });
    // attached while the file is still being read: its own cut starts at once, beside the default one
    const s1 = await client.vectorStores.create({ name: "small chunks", file_ids: [file.id], chunking_strategy: small });
    const vf1 = await client.vectorStores.files.poll(s1.id, file.id, { pollIntervalMs: 100 });
    expect(vf1.status).toBe("completed");
    expect(vf1.chunking_strategy).toEqual(small);
    const inKb = await client.vectorStores.files.retrieve(file.id, { vector_store_id: kb });
    expect(inKb.status).toBe("completed");
    expect(inKb.chunking_strategy).toEqual({ type: "static", static: { max_chunk_size_tokens: 128, chunk_overlap_tokens: 32 } });
    // half of every chunk repeats the previous one: more chunks, more bytes than the default cut
    expect(vf1.usage_bytes).toBeGreaterThan(inKb.usage_bytes * 1.2);

    const query = "gauge reading at Kestrel Ford";
    const [hitSmall, hitKb] = await Promise.all([s1.id, kb].map(async (id) => (await client.vectorStores.search(id, { query, max_num_results: 50 })).data));
    expect(hitSmall![0]!.file_id).toBe(file.id);
    expect(hitSmall![0]!.content[0]!.text).toContain("Kestrel Ford");
    expect(hitKb![0]!.content[0]!.text).toContain("Kestrel Ford");
    // each store sees only its own cut of the file
    const small1 = new Set(hitSmall!.filter((h) => h.file_id === file.id).map((h) => h.content[0]!.text));
    const auto1 = new Set(hitKb!.filter((h) => h.file_id === file.id).map((h) => h.content[0]!.text));
    expect([...small1].some((t) => auto1.has(t))).toBe(false);
    for (const t of [...small1, ...auto1]) expect(text).toContain(t);

    // a second store of the same size shares the chunks: completed at once, same usage
    const s2 = await client.vectorStores.create({ name: "same size" });
    const vf2 = await client.vectorStores.files.create(s2.id, { file_id: file.id, chunking_strategy: small });
    expect(vf2.status).toBe("completed");
    expect(vf2.usage_bytes).toBe(vf1.usage_bytes);

    const db = new Database(join(ragd.dataDir, "ragd.db"), { readonly: true });
    const sets = () => db.query(`SELECT cut, COUNT(*) AS n FROM chunks WHERE file_id = $id GROUP BY 1 ORDER BY 1`).all({ id: file.id }) as { cut: string; n: number }[];
    try {
      expect(sets().map((r) => r.cut)).toEqual(["auto", "static:100:50"]);
      await client.vectorStores.files.delete(file.id, { vector_store_id: s1.id });
      expect(sets().length).toBe(2);
      await client.vectorStores.delete(s2.id);
      expect(sets().map((r) => r.cut)).toEqual(["auto"]);
      expect((await client.vectorStores.search(kb, { query })).data[0]!.content[0]!.text).toContain("Kestrel Ford");
      await client.files.delete(file.id);
      expect(sets()).toEqual([]);
    } finally {
      db.close();
    }
  });

  test("bad requests get OpenAI error envelopes", async () => {
    expect(await status(client.vectorStores.search("vs_000000000000000000000000", { query: "x" }))).toBe(404);
    expect(await status(client.vectorStores.search("nope", { query: "x" }))).toBe(404);
    expect(await errorOf(client.vectorStores.search(kb, { query: "x", max_num_results: 51 }))).toMatchObject({ type: "invalid_request_error", param: "max_num_results" });
    expect(await status(client.vectorStores.search(kb, { query: "x", max_num_results: 0 }))).toBe(400);
    expect(await status(client.vectorStores.search(kb, { query: "" }))).toBe(400);
    for (const filters of [{ type: "eq", key: "k" }, { type: "like", key: "k", value: 1 }, { type: "and", filters: [] }, { type: "in", key: "k", value: "x" }, "x"])
      expect(await errorOf(client.vectorStores.search(kb, { query: "x", filters: filters as never }))).toMatchObject({ type: "invalid_request_error", param: "filters" });
    expect(await status(client.vectorStores.files.create(kb, { file_id: "file-000000000000000000000000" }))).toBe(404);
    expect(await status(client.vectorStores.create({ file_ids: ["file-000000000000000000000000"] }))).toBe(404);
    expect(await status(client.vectorStores.create({ chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 50, chunk_overlap_tokens: 0 } } }))).toBe(400);
    expect(await errorOf(client.vectorStores.files.create(kb, { file_id: ids["report.pdf"]!, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 200, chunk_overlap_tokens: 101 } } }))).toMatchObject({
      type: "invalid_request_error",
      param: "chunking_strategy",
      code: "invalid_value",
    });
    expect(await errorOf(client.vectorStores.files.create(kb, { file_id: ids["report.pdf"]!, chunking_strategy: { type: "other" } as never }))).toMatchObject({ param: "chunking_strategy" });
    // a size past the model's window is clamped to it and reported as applied
    const clamped = await client.vectorStores.create({ file_ids: [ids["report.pdf"]!], chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 800, chunk_overlap_tokens: 400 } } });
    expect((await client.vectorStores.files.retrieve(ids["report.pdf"]!, { vector_store_id: clamped.id })).chunking_strategy).toEqual({
      type: "static",
      static: { max_chunk_size_tokens: 128, chunk_overlap_tokens: 32 },
    });
    expect(await status(client.vectorStores.files.create(kb, { file_id: ids["report.pdf"]!, attributes: { x: { nested: 1 } } as never }))).toBe(400);
    const res = await fetch(`${ragd.url}/v1/vector_stores/${kb}/search`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" }, body: "{not json" });
    expect(res.status).toBe(400);
    expect(Object.keys((await res.json()).error).sort()).toEqual(["code", "message", "param", "type"]);
  });

  test("another project cannot see this project's stores (404)", async () => {
    const other = new OpenAI({ baseURL: `${ragd.url}/v1`, apiKey: await createKey(ragd.dataDir, "other") });
    expect(await status(other.vectorStores.retrieve(kb))).toBe(404);
    expect(await status(other.vectorStores.search(kb, { query: "parental leave" }))).toBe(404);
    const own = await other.vectorStores.list();
    expect(own.data.map((s) => s.id)).not.toContain(kb);
  });

  test("embeddings (float and base64) and models", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["use-lite-int8"]);
    expect((await client.models.retrieve("default")).id).toBe("use-lite-int8");
    const e = await client.embeddings.create({ model: "use-lite-int8", input: ["parental leave", "maternity leave", "quarterly revenue"] });
    expect(e.data.length).toBe(3);
    expect(e.usage.prompt_tokens).toBeGreaterThan(3);
    const [a, b, c] = e.data.map((d) => d.embedding);
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    expect(dot(a!, a!)).toBeCloseTo(1, 3);
    expect(dot(a!, b!)).toBeGreaterThan(dot(a!, c!));
    // the SDK asks for base64 by default and decodes it
    const viaSdk = await client.embeddings.create({ model: "default", input: "parental leave" });
    expect(dot(viaSdk.data[0]!.embedding, a!)).toBeGreaterThan(0.995);
    const raw = await fetch(`${ragd.url}/v1/embeddings`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}` }, body: JSON.stringify({ model: "default", input: "x", encoding_format: "base64" }) });
    expect(typeof (await raw.json()).data[0].embedding).toBe("string");
    expect(await errorOf(client.embeddings.create({ model: "text-embedding-3-small", input: "x" }))).toMatchObject({ code: "model_not_found" });
    expect(await status(client.embeddings.create({ model: "default", input: [] }))).toBe(400);
  });

  test("token ids of cl100k_base (as LangChain's OpenAIEmbeddings sends its inputs) embed as the text they stand for", async () => {
    // ids from js-tiktoken's encoder, an implementation apart from the server's decoder
    const cl100k = new Tiktoken(cl100kRanks);
    const texts = ["Parental leave is sixteen weeks.", "Ünïcödé façade — 東京 🚀"];
    const [one, two] = texts.map((t) => cl100k.encode(t));
    const asText = await client.embeddings.create({ model: "default", input: texts, encoding_format: "float" });
    const asIds = await client.embeddings.create({ model: "default", input: [one!, two!], encoding_format: "float" });
    expect(asIds.data.map((d) => d.index)).toEqual([0, 1]);
    expect(asIds.data.map((d) => d.embedding)).toEqual(asText.data.map((d) => d.embedding));
    expect(asIds.usage).toEqual(asText.usage);
    // one list of ids is one input
    const single = await client.embeddings.create({ model: "default", input: one!, encoding_format: "float" });
    expect(single.data.map((d) => d.embedding)).toEqual([asText.data[0]!.embedding]);
    // an id that is no text token is named, with where it is
    const bad: [number[] | number[][], string][] = [[[...one!.slice(0, 2), 100257], "input[2]"], [[one!, [5, -1]], "input[1][1]"], [[[100_256]], "input[0][0]"]];
    for (const [input, where] of bad) {
      const err = await errorOf(client.embeddings.create({ model: "default", input }));
      expect(err).toMatchObject({ type: "invalid_request_error", code: "invalid_value", param: "input" });
      expect((err as { message: string }).message).toStartWith(`${where} is `);
    }
    expect(await status(client.embeddings.create({ model: "default", input: [[]] }))).toBe(400);
    const said = async (input: unknown) => ((await errorOf(client.embeddings.create({ model: "default", input: input as number[] }))) as { message: string }).message;
    expect(await said([1.5])).toStartWith("input[0] is 1.5, which is not a text token");
    // one input takes 8191 ids, as OpenAI's models do (not the 2048 inputs a request takes)
    const ids = Array.from({ length: 8191 }, (_, i) => 1000 + (i % 5000));
    expect((await client.embeddings.create({ model: "default", input: ids })).data).toHaveLength(1);
    expect(await said([...ids, 5])).toBe("input holds 8192 token ids; an input takes at most 8191, as OpenAI's embedding models do");
    expect(await said(Array.from({ length: 37 }, () => ids))).toStartWith("input holds 303067 token ids in all; a request takes at most 300000");
  });
});

describe("search over the HNSW index (more vectors than exact search handles)", () => {
  test("dense-only search finds the right chunk among thousands, in the shared index and in a small store with a filter", async () => {
    const ragd = await startRagd();
    try {
      const client = ragd.client();
      const { bigPdf } = await import("./helpers/docs");
      const big = await client.files.create({ file: new File([await bigPdf(220)], "filler.pdf"), purpose: "assistants" });
      const small = await client.vectorStores.create({ name: "small" });
      const policy = await client.vectorStores.files.uploadAndPoll(small.id, new File(["Employees may take sixteen weeks of paid parental leave after a birth or adoption."], "policy.txt"));
      await client.vectorStores.files.update(policy.id, { vector_store_id: small.id, attributes: { team: "hr" } });
      expect((await client.files.waitForProcessing(big.id, { pollInterval: 200, maxWait: 110_000 })).status).toBe("processed");
      const kb = (await client.vectorStores.list()).data.find((s) => s.name === "knowledge base")!.id;
      const dense = { ranking_options: { hybrid_search: { embedding_weight: 1, text_weight: 0 } } } as never;
      const query = "How many weeks of maternity and paternity leave do staff get?";
      // no shared keywords with "parental leave ... birth": only the vectors can find it
      expect((await client.vectorStores.search(kb, { query, max_num_results: 3, ...(dense as object) })).data[0]!.file_id).toBe(policy.id);
      const filtered = await client.vectorStores.search(small.id, { query, filters: { type: "eq", key: "team", value: "hr" }, ...(dense as object) });
      expect(filtered.data.map((h) => h.file_id)).toEqual([policy.id]);
      expect((await client.vectorStores.search(small.id, { query, filters: { type: "eq", key: "team", value: "it" }, ...(dense as object) })).data).toEqual([]);
      // keywords every filler chunk shares: the small store's one match still comes back
      const boats = await client.vectorStores.files.uploadAndPoll(small.id, new File(["Boats moor by the river bank in summer."], "boats.txt"));
      const keywords = { ranking_options: { hybrid_search: { embedding_weight: 0, text_weight: 1 } } } as never;
      const inSmall = await client.vectorStores.search(small.id, { query: "river bank", ...(keywords as object) });
      expect(inSmall.data.map((h) => h.file_id)).toEqual([boats.id]);
      const inKb = await client.vectorStores.search(kb, { query: "river bank", max_num_results: 50, ...(keywords as object) });
      expect(inKb.data).toHaveLength(50);
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
    }
  }, 150_000);
});

describe("the vector index and the model across restarts", () => {
  test("a corrupted index file is rebuilt from SQLite; another model is refused until `ragd reindex`", async () => {
    let ragd = await startRagd();
    const dataDir = ragd.dataDir;
    try {
      const client = ragd.client();
      const f = await client.files.create({ file: fixture("handbook.docx"), purpose: "assistants" });
      await client.files.waitForProcessing(f.id, { pollInterval: 100 });
      const kb = (await client.vectorStores.list()).data[0]!.id;
      await ragd.stop();
      const dir = join(dataDir, "vectors");
      const index = readdirSync(dir).find((n) => n.endsWith(".usearch"))!;
      writeFileSync(join(dir, index), "garbage");
      ragd = await startRagd({ dataDir });
      expect(ragd.stderr()).toContain("building the vector index from SQLite");
      expect((await ragd.client().vectorStores.search(kb, { query: "parental leave" })).data[0]!.file_id).toBe(f.id);
      await ragd.stop();
      // fp32 is another model: refused with a message that names the fix
      const refused = await startRagd({ dataDir, args: ["--embed-precision", "fp32"] }).then(() => null, (e) => String(e));
      expect(refused).toContain("ragd reindex");
      const { runCli } = await import("./helpers/ragd");
      const out = runCli(["reindex", "--data-dir", dataDir, "--embed-precision", "fp32"]);
      expect(out.code).toBe(0);
      expect(out.stdout).toContain("use-lite-fp32");
      ragd = await startRagd({ dataDir, args: ["--embed-precision", "fp32"] });
      expect((await ragd.client().vectorStores.search(kb, { query: "parental leave" })).data[0]!.file_id).toBe(f.id);
      expect((await ragd.client().models.list()).data[0]!.id).toBe("use-lite-fp32");
    } finally {
      await ragd.stop();
      cleanup(dataDir);
    }
  });

  test("the keyword index: changes after its last save are replayed after kill -9; a torn segment is rebuilt; deleted files never come back", async () => {
    let ragd = await startRagd();
    const dataDir = ragd.dataDir;
    const keywordOnly = (query: string) => ({ query, ranking_options: { hybrid_search: { embedding_weight: 0, text_weight: 1 } } }) as never;
    try {
      let client = ragd.client();
      const kb = (await client.vectorStores.list()).data[0]!.id;
      const first = await client.files.create({ file: fixture("handbook.docx"), purpose: "assistants" });
      await client.files.waitForProcessing(first.id, { pollInterval: 100 });
      // A clean stop saves the index and prunes the change log it reflects.
      await ragd.stop();
      const db = new Database(join(dataDir, "ragd.db"), { readonly: true });
      expect((db.query("SELECT COUNT(*) AS n FROM chunk_changes").get() as { n: number }).n).toBe(0);
      db.close();
      ragd = await startRagd({ dataDir });
      expect(ragd.stderr()).not.toContain("building the keyword index");
      client = ragd.client();
      // Committed after the save; the process then dies before the next one.
      const second = await client.files.create({ file: fixture("guide.md"), purpose: "assistants" });
      await client.files.waitForProcessing(second.id, { pollInterval: 100 });
      await client.files.delete(first.id);
      await ragd.kill9();
      ragd = await startRagd({ dataDir });
      expect(ragd.stderr()).not.toContain("building the keyword index");
      client = ragd.client();
      const guideWords = (await client.vectorStores.search(kb, keywordOnly("install on linux"))).data;
      expect(guideWords.length).toBeGreaterThan(0);
      expect(guideWords.every((r) => r.file_id === second.id)).toBe(true);
      expect((await client.vectorStores.search(kb, keywordOnly("parental leave"))).data.filter((r) => r.file_id === first.id)).toEqual([]);
      await ragd.stop();
      // A torn segment file: rebuilt from the chunks table, same answers.
      const dir = join(dataDir, "keyword");
      const seg = readdirSync(dir).find((n) => n.endsWith(".seg"))!;
      writeFileSync(join(dir, seg), "torn");
      ragd = await startRagd({ dataDir });
      expect(ragd.stderr()).toContain("building the keyword index from SQLite");
      expect((await ragd.client().vectorStores.search(kb, keywordOnly("install on linux"))).data.map((r) => r.file_id)).toEqual(guideWords.map((r) => r.file_id));
    } finally {
      await ragd.stop();
      cleanup(dataDir);
    }
  });

  test("the openai provider embeds through another OpenAI-compatible server", async () => {
    const upstream = await startRagd();
    const ragd = await startRagd({ args: ["--embed-provider", "openai", "--embed-url", `${upstream.url}/v1`, "--embed-api-key", upstream.key, "--embed-model", "use-lite-int8"] });
    try {
      const client = ragd.client();
      const f = await client.files.create({ file: fixture("handbook.docx"), purpose: "assistants" });
      expect((await client.files.waitForProcessing(f.id, { pollInterval: 100 })).status).toBe("processed");
      const kb = (await client.vectorStores.list()).data[0]!.id;
      expect((await client.vectorStores.search(kb, { query: "parental leave weeks" })).data[0]!.file_id).toBe(f.id);
      expect((await client.models.list()).data[0]).toMatchObject({ id: "use-lite-int8" });
      // the remote API goes away: search answers 503 with a reason, ingestion retries later
      await upstream.stop();
      const res = await fetch(`${ragd.url}/v1/vector_stores/${kb}/search`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}` }, body: JSON.stringify({ query: "leave" }) });
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.error).toMatchObject({ type: "api_error", code: "embedding_unavailable" });
      expect(body.error.message).toContain("could not embed");
      const later = await client.files.create({ file: fixture("notes.txt"), purpose: "assistants" });
      await Bun.sleep(1500);
      expect((await client.files.retrieve(later.id)).status).toBe("uploaded");
    } finally {
      await ragd.stop();
      await upstream.stop();
      cleanup(ragd.dataDir);
      cleanup(upstream.dataDir);
    }
  });
});
