// Time ragd adds to a grounded answer before its first token: search, prompt assembly and
// the streaming relay. A scripted OpenAI-compatible model server (test/helpers/upstream.ts)
// streams its answer at once, so what is measured is ragd. Each query is asked three ways in
// turn, so drift of a shared machine hits all three alike: straight to the model server, to
// ragd's /v1/chat/completions with file_search, and to ragd's /v1/responses with file_search
// (ragd searching with the user's words, --llm-tools off: one model call, as grounded chat).
// Knowledge base: 1,000 SciFact abstracts (the fixture documents without ../shared).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { startUpstream } from "../test/helpers/upstream";
import { percentile, ROOT, startServer, table } from "./lib";

const SCIFACT = join(ROOT, "../shared/scifact");
const DOCS = 1_000;
const QUERIES = 1_000;
const WARMUP = 50;
const ANSWER = "Grounded answers arrive token by token, each one relayed as it comes.";

export async function answersBench(): Promise<string> {
  const up = await startUpstream();
  const server = await startServer(["--llm-url", up.url, "--llm-model", "bench-model", "--llm-tools", "off"]);
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.key, maxRetries: 0 });
    const direct = new OpenAI({ baseURL: up.url, apiKey: "unused", maxRetries: 0 });
    const { texts, queries, source } = corpus();
    const ids: string[] = [];
    for (let i = 0; i < texts.length; i += 32)
      ids.push(...(await Promise.all(texts.slice(i, i + 32).map(async (t, j) => (await client.files.create({ file: new File([t], `doc-${i + j}.txt`), purpose: "assistants" })).id))));
    const store = await client.vectorStores.create({ name: "bench" });
    for (let i = 0; i < ids.length; i += 500) await client.vectorStores.fileBatches.create(store.id, { file_ids: ids.slice(i, i + 500) });
    for (;;) {
      const s = await client.vectorStores.retrieve(store.id);
      if (s.file_counts.in_progress === 0) break;
      await Bun.sleep(200);
    }
    const chunks = (await client.vectorStores.retrieve(store.id)).file_counts.completed;

    // From sending the request to the first token's arrival (headers wait for the search).
    const firstToken = async (start: () => PromiseLike<unknown>, isToken: (e: any) => boolean) => {
      const t0 = performance.now();
      const stream = (await start()) as AsyncIterable<any>;
      let at = 0;
      for await (const e of stream) if (!at && isToken(e)) at = performance.now() - t0;
      return at;
    };
    const timings = { direct: [] as number[], chat: [] as number[], responses: [] as number[], plain: [] as number[] };
    const ask = async (q: string, record: boolean) => {
      const msgs = [{ role: "user" as const, content: q }];
      const t = {
        direct: await firstToken(() => direct.chat.completions.create({ model: "bench-model", messages: msgs, stream: true }), (c) => !!c.choices[0]?.delta?.content),
        plain: await firstToken(() => client.chat.completions.create({ model: "bench-model", messages: msgs, stream: true }), (c) => !!c.choices[0]?.delta?.content),
        chat: await firstToken(
          () => client.chat.completions.create({ model: "bench-model", messages: msgs, stream: true, file_search: { vector_store_ids: [store.id] } } as never),
          (c) => !!c.choices?.[0]?.delta?.content,
        ),
        responses: await firstToken(
          () => client.responses.create({ model: "bench-model", input: q, stream: true, store: false, tools: [{ type: "file_search", vector_store_ids: [store.id] }] }),
          (e) => e.type === "response.output_text.delta",
        ),
      };
      if (record) for (const k of Object.keys(t) as (keyof typeof t)[]) timings[k].push(t[k]);
    };
    for (let i = 0; i < QUERIES + WARMUP; i++) {
      up.script({ text: ANSWER, pieces: 12 }, { text: ANSWER, pieces: 12 }, { text: ANSWER, pieces: 12 }, { text: ANSWER, pieces: 12 });
      await ask(queries[i % queries.length]!, i >= WARMUP);
    }
    up.reset();

    const row = (name: string, xs: number[]) => {
      const added50 = percentile(xs, 50) - percentile(timings.direct, 50);
      const added99 = percentile(xs, 99) - percentile(timings.direct, 99);
      return [name, percentile(xs, 50).toFixed(2), percentile(xs, 99).toFixed(2), xs === timings.direct ? "" : added50.toFixed(2), xs === timings.direct ? "" : `**${added99.toFixed(2)}**`];
    };
    return [
      `${texts.length} documents (${source}), ${chunks} processed; ${QUERIES} queries, each asked four ways in turn after ${WARMUP} warm-up rounds; one client, streaming.`,
      "",
      table(
        ["time to first token (ms)", "p50", "p99", "added p50", "added p99 (target <= 15)"],
        [
          row("model server directly", timings.direct),
          row("ragd chat completions, not grounded (relay only)", timings.plain),
          row("ragd chat completions + file_search", timings.chat),
          row("ragd /v1/responses + file_search", timings.responses),
        ],
      ),
      "",
      "Added = ragd's percentile minus the direct call's: search (embedding the query, HNSW and BM25), prompt assembly and the relay.",
    ].join("\n");
  } finally {
    await server.stop();
    await up.stop();
  }
}

function corpus(): { texts: string[]; queries: string[]; source: string } {
  if (existsSync(join(SCIFACT, "corpus.jsonl"))) {
    const docs = readFileSync(join(SCIFACT, "corpus.jsonl"), "utf8").split("\n").filter(Boolean).slice(0, DOCS).map((l) => JSON.parse(l) as { title: string; text: string });
    const queries = readFileSync(join(SCIFACT, "queries.train.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { text: string }).text);
    return { texts: docs.map((d) => `${d.title}\n\n${d.text}`), queries, source: "SciFact abstracts" };
  }
  const dir = join(ROOT, "test/fixtures/docs");
  const texts = ["notes.txt", "guide.md", "legacy.txt"].map((f) => readFileSync(join(dir, f), "utf8"));
  return { texts, queries: ["first paragraph", "the guide", "legacy text"], source: "fixture documents" };
}

if (import.meta.main) console.log(await answersBench());
