// What operators see: /metrics in the Prometheus text format, moving as requests, ingestion
// and searches happen; /ready; request ids in JSON log lines; metrics off or on their own port.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { toFile } from "openai";
import { cleanup, ROOT, runCli, startRagd, tempDir, type Ragd } from "./helpers/ragd";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The exposition format, parsed: every sample line, with HELP and TYPE checked to precede it. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    const meta = /^# (HELP|TYPE) (\w+) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") {
        expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(meta[3]!);
        typed.add(meta[2]!);
      }
      continue;
    }
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? "";
    while (rest) {
      const l = /^(\w+)="((?:[^"\\]|\\.)*)"(,|$)/.exec(rest);
      if (!l) throw new Error(`malformed labels in: ${line}`);
      labels[l[1]!] = l[2]!;
      rest = rest.slice(l[0].length);
    }
    const family = m[1]!.replace(/_(bucket|sum|count|total)$/, "");
    if (!typed.has(m[1]!) && !typed.has(family)) throw new Error(`${m[1]} has no TYPE line before it`);
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

describe("metrics, readiness and logs", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd({ env: { RAGD_LOG_LEVEL: "info" }, args: ["--log-format", "json"] });
  });
  afterAll(async () => {
    await ragd?.stop();
    if (ragd) cleanup(ragd.dataDir);
  });

  const scrape = async () => {
    const res = await fetch(`${ragd.url}/metrics`); // no key: Prometheus scrapes without one
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    return parseMetrics(await res.text());
  };

  test("metrics move with requests, ingestion (parse, embed, OCR) and search", async () => {
    const before = await scrape();
    const c = ragd.client();
    const pdf = await c.files.create({ file: await toFile(readFileSync(join(ROOT, "test/fixtures/docs/report.pdf")), "report.pdf"), purpose: "assistants" });
    const scan = await c.files.create({ file: await toFile(readFileSync(join(ROOT, "test/fixtures/images/receipt.jpg")), "receipt.jpg"), purpose: "assistants" });
    await c.files.waitForProcessing(pdf.id, { pollInterval: 50 });
    await c.files.waitForProcessing(scan.id, { pollInterval: 50 });
    const kb = (await c.vectorStores.list()).data[0]!;
    await c.vectorStores.search(kb.id, { query: "revenue in Europe" });
    await c.vectorStores.search(kb.id, { query: "pretzels", ranking_options: { hybrid_search: { embedding_weight: 0, text_weight: 1 } } } as never);
    await c.files.retrieve("file-000000000000000000000000").catch(() => {});
    await Bun.sleep(1_100); // the exposition is made at most once a second
    const after = await scrape();

    const grew = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    expect(grew("ragd_http_requests_total", { method: "POST", route: "/v1/files", status: "200" })).toBe(2);
    // by route template, not by id: one series for every file id
    expect(grew("ragd_http_requests_total", { method: "GET", route: "/v1/files/{file_id}", status: "404" })).toBe(1);
    expect(after.some((s) => s.labels.route?.includes("file-"))).toBe(false);
    expect(grew("ragd_http_request_duration_seconds_count", { method: "POST", route: "/v1/files" })).toBe(2);
    expect(grew("ragd_ingest_documents_total", { outcome: "processed" })).toBe(2);
    expect(grew("ragd_ingest_parse_duration_seconds_count", { format: "pdf" })).toBe(1);
    expect(grew("ragd_ingest_parse_duration_seconds_count", { format: "image" })).toBe(1);
    expect(grew("ragd_ingest_embed_duration_seconds_count", { format: "pdf" })).toBe(1);
    expect(grew("ragd_ingest_chunks_embedded_total")).toBeGreaterThanOrEqual(3);
    expect(grew("ragd_ocr_pages_total")).toBe(1);
    expect(grew("ragd_search_duration_seconds_count", { kind: "hybrid" })).toBe(1);
    expect(grew("ragd_search_duration_seconds_count", { kind: "keyword" })).toBe(1);
    expect(value(after, "ragd_ingest_jobs", { state: "done" })).toBeGreaterThanOrEqual(2);
    expect(value(after, "ragd_ingest_queue_depth")).toBe(0);
    expect(value(after, "ragd_vector_index_vectors")).toBe(value(after, "ragd_keyword_index_chunks"));
    expect(value(after, "ragd_vector_index_vectors")).toBeGreaterThanOrEqual(3);
    const stored = readFileSync(join(ROOT, "test/fixtures/docs/report.pdf")).length + readFileSync(join(ROOT, "test/fixtures/images/receipt.jpg")).length;
    // labelled by project id, not name: /metrics needs no key
    const me = await (await fetch(`${ragd.url}/ragd/whoami`, { headers: { authorization: `Bearer ${ragd.key}` } })).json();
    expect(value(after, "ragd_project_stored_bytes", { project: me.project.id })).toBe(stored);
    expect(after.some((s) => s.labels.project === "default")).toBe(false);
    expect(value(after, "process_resident_memory_bytes")).toBeGreaterThan(10e6);
    expect(after.some((s) => s.name === "nodejs_eventloop_lag_seconds")).toBe(true);
  });

  test("a queued backlog shows as queue depth and the age of its oldest job", async () => {
    const c = ragd.client();
    // scans to OCR, more at once than there are parse slots: some wait while others are read
    const scan = readFileSync(join(ROOT, "test/fixtures/images/receipt.jpg"));
    await Promise.all(Array.from({ length: 16 }, async (_, i) => c.files.create({ file: await toFile(scan, `scan-${i}.jpg`), purpose: "assistants" })));
    await Bun.sleep(1_100);
    const during = await scrape();
    expect(value(during, "ragd_ingest_queue_depth")).toBeGreaterThan(0);
    expect(value(during, "ragd_ingest_oldest_job_age_seconds")).toBeGreaterThanOrEqual(0);
    for (let i = 0; i < 300 && value(await scrape(), "ragd_ingest_queue_depth") > 0; i++) await Bun.sleep(100);
    await Bun.sleep(1_100);
    const done = await scrape();
    expect(value(done, "ragd_ingest_queue_depth")).toBe(0);
    expect(value(done, "ragd_ingest_oldest_job_age_seconds")).toBe(0);
  });

  test("/ready says what it checked; /health stays liveness", async () => {
    const res = await fetch(`${ragd.url}/ready`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.status).toBe("ready");
    expect(body.checks.embedder).toStartWith("answers");
    expect(body.checks.vector_index).toStartWith("loaded");
    expect(await (await fetch(`${ragd.url}/health`)).json()).toEqual({ status: "ok" });
  });

  test("the request id round-trips, and the JSON log line of that request carries it", async () => {
    const res = await fetch(`${ragd.url}/v1/files`, { headers: { authorization: `Bearer ${ragd.key}`, "x-request-id": "trace-4f2a-observability" } });
    expect(res.headers.get("x-request-id")).toBe("trace-4f2a-observability");
    const sdk = await ragd.client().files.list().withResponse();
    expect(sdk.request_id).toMatch(/^req_[0-9a-f]{32}$/);
    await Bun.sleep(100);
    const lines = ragd
      .stderr()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    expect(lines.find((l) => l.request_id === "trace-4f2a-observability")).toMatchObject({ level: "info", msg: "request", method: "GET", path: "/v1/files", status: 200 });
    expect(lines.find((l) => l.request_id === sdk.request_id)).toBeDefined();
    expect(lines.every((l) => typeof l.time === "string" && typeof l.msg === "string")).toBe(true);
  });
});

describe("readiness with a failing embedder", () => {
  test("/ready is 503 naming the embedder while it fails, and 200 again once it answers", async () => {
    let down = false;
    const embeddings = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        if (down) return new Response("overloaded", { status: 503 });
        const body = await req.json();
        const input: string[] = Array.isArray(body.input) ? body.input : [body.input];
        return Response.json({ object: "list", data: input.map((_, index) => ({ object: "embedding", index, embedding: [0.6, 0.8, 0, 0] })), model: body.model, usage: { prompt_tokens: 1, total_tokens: 1 } });
      },
    });
    const ragd = await startRagd({ args: ["--embed-provider", "openai", "--embed-url", `http://127.0.0.1:${embeddings.port}/v1`, "--embed-model", "tiny", "--embed-api-key", "k"] });
    try {
      down = true;
      const res = await fetch(`${ragd.url}/ready`);
      expect(res.status).toBe(503);
      const body = await res.json();
      expect(body.status).toBe("unavailable");
      expect(body.checks.embedder).toStartWith("failing");
      expect((await fetch(`${ragd.url}/health`)).status).toBe(200);
      down = false;
      await Bun.sleep(1_100); // a failed check is cached for 1 s
      expect((await fetch(`${ragd.url}/ready`)).status).toBe(200);
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
      embeddings.stop(true);
    }
  });
});

describe("metrics off, or on their own port", () => {
  test("off: no /metrics; HOST:PORT: served there, not on the API's port", async () => {
    const off = await startRagd({ args: ["--metrics", "off"] });
    try {
      expect((await fetch(`${off.url}/metrics`)).status).toBe(404);
    } finally {
      await off.stop();
      cleanup(off.dataDir);
    }
    const port = 20000 + Math.floor(Math.random() * 20000);
    const apart = await startRagd({ args: ["--metrics", `127.0.0.1:${port}`] });
    try {
      expect((await fetch(`${apart.url}/metrics`)).status).toBe(404);
      await apart.client().files.list();
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(value(parseMetrics(text), "ragd_http_requests_total", { route: "/v1/files", method: "GET" })).toBe(1);
      expect((await fetch(`http://127.0.0.1:${port}/v1/files`)).status).toBe(404);
    } finally {
      await apart.stop();
      cleanup(apart.dataDir);
    }
  });

  test("--metrics-key: /metrics answers only the scraper that sends it, on either port", async () => {
    const key = "metrics-key-0123456789";
    const port = 20000 + Math.floor(Math.random() * 20000);
    for (const args of [["--metrics-key", key], ["--metrics", `127.0.0.1:${port}`, "--metrics-key", key]]) {
      const r = await startRagd({ args });
      try {
        const url = args.length === 2 ? `${r.url}/metrics` : `http://127.0.0.1:${port}/metrics`;
        const none = await fetch(url);
        expect([none.status, none.headers.get("www-authenticate")]).toEqual([401, 'Bearer realm="ragd metrics"']);
        expect((await none.json()).error).toMatchObject({ type: "authentication_error", code: null });
        // the header is read as an API key's is: any case, any spaces; a wrong key is told so
        const wrong = await fetch(url, { headers: { authorization: `Bearer ${key}x` } });
        const told = (await wrong.json()).error;
        expect([wrong.status, told.code]).toEqual([401, "invalid_api_key"]);
        expect(told.message).toContain("Incorrect metrics key");
        const basic = await fetch(url, { headers: { authorization: `Basic ${key}` } });
        expect([basic.status, (await basic.json()).error.code]).toEqual([401, "invalid_authorization_header"]);
        expect((await fetch(url, { headers: { authorization: `bearer   ${key}` } })).status).toBe(200);
        // an API key is not the metrics key
        expect((await fetch(url, { headers: { authorization: `Bearer ${r.key}` } })).status).toBe(401);
        const ok = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
        expect(ok.status).toBe(200);
        expect(await ok.text()).toContain("ragd_http_requests_total");
      } finally {
        await r.stop();
        cleanup(r.dataDir);
      }
    }
    // too short to be a secret, or holding a space (a header arrives trimmed): refused at start
    const dir = tempDir();
    try {
      for (const bad of ["short", " metrics-key-0123456789 "]) {
        const r = runCli(["--metrics-key", bad, "--port", "0", "--data-dir", dir], {}, 20_000);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain("--metrics-key");
      }
    } finally {
      cleanup(dir);
    }
  });

  test("the parser above can fail: a malformed line is refused", () => {
    expect(() => parseMetrics("# TYPE a counter\na{x=1} 2\n")).toThrow();
    expect(() => parseMetrics("b 1\n")).toThrow();
  });
});
