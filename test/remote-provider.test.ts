// The openai embedding provider against an endpoint that changes its dimension while ragd
// runs (a model swapped behind the URL): refused with a reason, never stored. The endpoint is
// scripted over real HTTP; a real model cannot change its dimension.
import { afterAll, expect, test } from "bun:test";
import { RemoteProvider } from "../src/embed/remote-provider";
import { EmbedError } from "../src/embed/provider";

let dims = 4;
const upstream = Bun.serve({
  port: 0,
  async fetch(req) {
    const body = (await req.json()) as { input: string[] };
    return Response.json({ object: "list", model: "m", data: body.input.map((_, index) => ({ object: "embedding", index, embedding: Array.from({ length: dims }, (_, j) => j + 1 + index) })), usage: { prompt_tokens: 1, total_tokens: 1 } });
  },
});
afterAll(() => upstream.stop(true));

test("vectors of another dimension than the one probed at start are refused, not stored", async () => {
  const provider = await RemoteProvider.open({ url: `http://127.0.0.1:${upstream.port}/v1`, apiKey: "k", model: "m", maxTokens: 512 });
  expect(provider.model.dims).toBe(4);
  expect((await provider.embed(["a", "b"], "ingest")).vectors.map((v) => v.length)).toEqual([4, 4]);
  dims = 6;
  const failed = await provider.embed(["a"], "ingest").then(() => null, (e) => e);
  expect(failed).toBeInstanceOf(EmbedError);
  expect(String(failed.message)).toContain("returned 6 dimensions, 4 at start");
});
