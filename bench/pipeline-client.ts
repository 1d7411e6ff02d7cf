// The pipeline bench's client, in its own process as a user's would be: uploads the SciFact
// documents in the JSON file given, 64 at a time, with the official SDK; prints their ids and
// when the first request left (ms since the epoch).
// Usage: bun bench/pipeline-client.ts BASE_URL KEY DOCS.json
import OpenAI from "openai";

const [baseURL, apiKey, docsPath] = process.argv.slice(2) as [string, string, string];
const docs = (await Bun.file(docsPath).json()) as { _id: string; title: string; text: string }[];
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const ids: string[] = [];
const started = Date.now();
for (let i = 0; i < docs.length; i += 64)
  ids.push(...(await Promise.all(docs.slice(i, i + 64).map(async (d) => (await client.files.create({ file: new File([`${d.title}\n\n${d.text}`], `${d._id}.txt`), purpose: "assistants" })).id))));
console.log(JSON.stringify({ started, ids }));
