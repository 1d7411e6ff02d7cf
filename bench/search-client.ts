// The scale bench's search client, in its own process as a user's would be, so the server's
// event loop does not also parse the client's responses: runs the timed passes over the
// queries in the JSON file given and prints their times (ms) and rates.
// Usage: bun bench/search-client.ts BASE_URL KEY STORE_ID QUERIES.json
const [baseURL, apiKey, storeId, queriesPath] = process.argv.slice(2) as [string, string, string, string];
const qs = (await Bun.file(queriesPath).json()) as string[];

const ask = async (q: string, weight?: number) => {
  const t = performance.now();
  const body = { query: q, ...(weight === undefined ? {} : { ranking_options: { hybrid_search: { embedding_weight: weight, text_weight: 1 - weight } } }) };
  const res = await fetch(`${baseURL}/v1/vector_stores/${storeId}/search`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`search failed: ${res.status} ${await res.text()}`);
  await res.json();
  return performance.now() - t;
};

// The server caches query vectors: the first pass pays for embedding, as users do the first
// time they ask; the passes after it measure the indexes.
const first: number[] = [];
const t0 = performance.now();
for (const q of qs) first.push(await ask(q));
const qps = qs.length / ((performance.now() - t0) / 1000);
const cached: number[] = [];
for (const q of qs) cached.push(await ask(q));
const keywordOnly: number[] = [];
const vectorOnly: number[] = [];
for (const q of qs) {
  keywordOnly.push(await ask(q, 0));
  vectorOnly.push(await ask(q, 1));
}
// 8 clients at once, each through its own share of the queries, hybrid.
const c0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < qs.length * 2) await ask(qs[next++ % qs.length]!);
  }),
);
const qps8 = (qs.length * 2) / ((performance.now() - c0) / 1000);
console.log(JSON.stringify({ first, cached, keywordOnly, vectorOnly, qps, qps8 }));
export {};
