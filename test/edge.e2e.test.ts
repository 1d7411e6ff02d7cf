// What every response carries and what the server refuses at its door: request ids, the
// Bearer challenge, CORS without credentials, one server per port and per data directory,
// JSON bodies bounded while they stream, and clients that go silent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import net from "node:net";
import { readFileSync } from "node:fs";
import { cleanup, runCli, startRagd, tempDir, type Ragd } from "./helpers/ragd";
import { join } from "node:path";

/** A request body of spaces that goes on for 512 MB, and how much of it was taken so far. */
function endlessBody() {
  let sent = 0;
  const chunk = new Uint8Array(1 << 20).fill(0x20);
  const body = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      sent += chunk.length;
      if (sent > 512 * 1024 * 1024) return ctrl.close();
      ctrl.enqueue(chunk);
    },
  });
  return { body, sent: () => sent };
}

const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

describe("edge", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd({ args: ["--idle-timeout", "1"], env: { RAGD_LOG_LEVEL: "info" } });
  });
  afterAll(async () => {
    await ragd?.stop();
    cleanup(ragd?.dataDir);
  });

  test("every response has an x-request-id that the SDK exposes and the log names", async () => {
    const { data, response, request_id } = await ragd.client().files.list().withResponse();
    expect(Array.isArray(data.data)).toBe(true);
    expect(request_id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(response.headers.get("x-request-id")).toBe(request_id!);
    // errors and unknown routes too, and an id the client chose is kept
    const missing = await fetch(`${ragd.baseURL}/nothing-here`, { headers: { "x-request-id": "trace-42.abc" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-request-id")).toBe("trace-42.abc");
    const err = await ragd.client().files.retrieve("file-doesnotexist00000000000").catch((e) => e);
    expect(err.status).toBe(404);
    expect(err.requestID ?? err.request_id).toMatch(/^req_/);
    await Bun.sleep(100);
    expect(ragd.stderr()).toContain(`request_id=${request_id}`);
    expect(ragd.stderr()).toContain("request_id=trace-42.abc");
  });

  test("request ids are distinct across the refills of their random pool", async () => {
    // 600 requests: the pool holds 256 ids, so this spans two refills.
    const ids = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const r = await fetch(`${ragd.baseURL}/health`);
      const id = r.headers.get("x-request-id")!;
      expect(id).toMatch(/^req_[0-9a-f]{32}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(600);
  });

  test("an id whose percent-escapes do not decode is named as such, in the envelope", async () => {
    for (const id of ["%zz", "%FF%FE", "%ED%A0%80"]) {
      const r = await fetch(`${ragd.baseURL}/files/${id}`, { headers: { authorization: `Bearer ${ragd.key}` } });
      expect(r.status).toBe(400);
      expect((await r.json()).error).toEqual({ message: "Invalid 'file_id': the URL's path segment is not valid percent-encoded UTF-8.", type: "invalid_request_error", param: "file_id", code: "invalid_value" });
    }
  });

  test("a 401 says which scheme to use", async () => {
    for (const headers of [{}, { authorization: "Bearer sk-wrong-key-0000" }, { authorization: "Basic abc" }] as Record<string, string>[]) {
      const r = await fetch(`${ragd.baseURL}/files`, { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toBe('Bearer realm="ragd"');
      expect((await r.json()).error.type).toBe("authentication_error");
    }
  });

  test("CORS by default: any origin, no credentials, nothing that defeats caching", async () => {
    const pre = await fetch(`${ragd.baseURL}/files`, {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, x-stainless-os" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-credentials")).toBeNull();
    expect(pre.headers.get("access-control-allow-headers")).toBe("authorization, content-type, x-stainless-os");
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    const get = await fetch(`${ragd.baseURL}/files`, { headers: { origin: "https://app.example", authorization: `Bearer ${ragd.key}` } });
    expect(get.headers.get("access-control-allow-origin")).toBe("*");
    expect(get.headers.get("access-control-allow-credentials")).toBeNull();
    expect(get.headers.get("access-control-expose-headers")).toContain("x-request-id");
    expect(get.headers.get("vary") ?? "").not.toContain("*");
  });

  test("a JSON body without Content-Length stops being read at the limit", async () => {
    const before = rss(ragd.proc.pid);
    // An endless chunked body: the answer can only come from a server that stops reading.
    const { body, sent } = endlessBody();
    const r = await fetch(`${ragd.baseURL}/embeddings`, {
      method: "POST",
      body,
      duplex: "half",
      headers: { authorization: `Bearer ${ragd.key}`, "content-type": "application/json" },
    } as RequestInit);
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatchObject({ type: "invalid_request_error", code: "invalid_body" });
    expect(sent()).toBeLessThan(256 * 1024 * 1024);
    expect(rss(ragd.proc.pid) - before).toBeLessThan(128 * 1024 * 1024);
  });

  test("a JSON body from a client without a good key is not read: the 401 comes first", async () => {
    for (const [path, headers] of [
      ["/chat/completions", {}],
      ["/responses", { authorization: "Bearer sk-wrong-key-0000" }],
      ["/vector_stores", {}],
    ] as [string, Record<string, string>][]) {
      // an endless body: the answer comes from a server that does not read it
      const { body, sent } = endlessBody();
      const r = await fetch(`${ragd.baseURL}${path}`, { method: "POST", body, duplex: "half", headers: { ...headers, "content-type": "application/json" } } as RequestInit);
      expect({ path, status: r.status, code: (await r.json()).error.code }).toMatchObject({ path, status: 401 });
      expect(r.headers.get("www-authenticate")).toBe('Bearer realm="ragd"');
      expect(sent()).toBeLessThan(32 * 1024 * 1024);
    }
    // counted under their routes, as a GET's 401 is
    const scraped = await (await fetch(`${ragd.url}/metrics`)).text();
    for (const route of ["/v1/chat/completions", "/v1/responses", "/v1/vector_stores"]) expect(scraped).toMatch(new RegExp(`ragd_http_requests_total\\{[^}]*route="${route}"[^}]*status="401"`));
  });

  test("a client that goes silent mid-request is cut by the idle timeout; a slow answer is not", async () => {
    const port = Number(new URL(ragd.url).port);
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => s.write(`POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ragd.key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"input":`));
      s.on("close", () => resolve());
      s.on("error", () => {});
      s.resume();
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    // Once its body is in, a request may take far longer than the idle timeout to answer.
    const long = Array.from({ length: 40 }, (_, j) => `granite${j} quarry yields`).join(" ");
    const input = Array.from({ length: 2048 }, (_, i) => `${i} ${long}`);
    const t = Date.now();
    const res = await ragd.client(undefined, { timeout: 120_000 }).embeddings.create({ model: "default", input });
    expect(res.data).toHaveLength(2048);
    expect(Date.now() - t).toBeGreaterThan(1500);
  }, 60_000);
});

describe("CORS with listed origins", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd({ args: ["--cors-origins", "https://a.example, https://b.example"] });
  });
  afterAll(async () => {
    await ragd?.stop();
    cleanup(ragd?.dataDir);
  });

  test("a listed origin is echoed with Vary: Origin; another gets no grant", async () => {
    const ok = await fetch(`${ragd.url}/health`, { headers: { origin: "https://b.example" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://b.example");
    expect(ok.headers.get("vary")).toBe("Origin");
    expect(ok.headers.get("access-control-allow-credentials")).toBeNull();
    const other = await fetch(`${ragd.url}/health`, { headers: { origin: "https://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    expect(other.headers.get("vary")).toBe("Origin");
    const pre = await fetch(`${ragd.url}/v1/files`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "GET" } });
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("one server per port and per data directory", () => {
  test("a second server on a busy port, or on a data directory in use, refuses to start", async () => {
    const first = await startRagd();
    try {
      const port = new URL(first.url).port;
      const busyPort = runCli(["serve", "--host", "127.0.0.1", "--port", port, "--data-dir", tempDir()], { RAGD_API_KEY: "sk-test-default-project-key" });
      expect(busyPort.code).not.toBe(0);
      expect(busyPort.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`);
      const sameDir = runCli(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", first.dataDir], { RAGD_API_KEY: "sk-test-default-project-key" });
      expect(sameDir.code).not.toBe(0);
      expect(sameDir.stderr).toContain(`the data directory ${first.dataDir} is in use by another ragd (pid ${first.proc.pid})`);
      // the first one still answers, alone
      expect((await fetch(`${first.url}/health`)).status).toBe(200);
    } finally {
      await first.stop();
      cleanup(first.dataDir);
    }
  }, 60_000);

  test("the lock goes with the process, even after kill -9", async () => {
    const a = await startRagd();
    await a.kill9();
    const b = await startRagd({ dataDir: a.dataDir });
    expect((await fetch(`${b.url}/health`)).status).toBe(200);
    await b.stop();
    cleanup(join(a.dataDir));
  }, 60_000);
});
