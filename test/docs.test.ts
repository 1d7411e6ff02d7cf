import { afterAll, beforeAll, expect, test } from "bun:test";
import { isAsync } from "elysia/compose";
import { buildApp } from "../src/app";
import { loadConfig } from "../src/config";
import { RateLimiter } from "../src/http/rate-limit";
import { openServices } from "../src/server";
import { cleanup, startRagd, tempDir, type Ragd } from "./helpers/ragd";

let ragd: Ragd;
beforeAll(async () => {
  ragd = await startRagd();
});
afterAll(async () => {
  await ragd.stop();
  cleanup(ragd.dataDir);
});

test("health needs no key", async () => {
  const r = await fetch(`${ragd.url}/health`);
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({ status: "ok" });
});

test("the docs page loads every asset from ragd itself, none from a CDN", async () => {
  const r = await fetch(`${ragd.url}/docs`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-security-policy")).toContain("default-src 'self'");
  const html = await r.text();
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  expect(refs.length).toBeGreaterThanOrEqual(4);
  for (const ref of refs) {
    expect(ref).toStartWith("/");
    const a = await fetch(`${ragd.url}${ref}`);
    expect(a.status).toBe(200);
    expect((await a.arrayBuffer()).byteLength).toBeGreaterThan(100);
  }
  const init = await (await fetch(`${ragd.url}/docs/assets/init.js`)).text();
  expect(init).toContain('url: "/openapi.json"');
  expect(init).not.toMatch(/https?:\/\//);
});

test("the OpenAPI document describes every /v1 route the server has", async () => {
  const doc = await (await fetch(`${ragd.url}/openapi.json`)).json();
  expect(doc.openapi).toStartWith("3.");
  const dir = tempDir();
  const config = loadConfig(["--data-dir", dir], {});
  const s = await openServices(config);
  try {
    const app = buildApp({ ...s, config, limiter: new RateLimiter({ uploads: 0, requests: 0 }), disk: null });
    const routes = app.routes.filter((r: { path: string }) => r.path.startsWith("/v1/"));
    expect(routes.length).toBeGreaterThanOrEqual(20);
    // Elysia awaits a handler inside its error handling only when it reads the handler as async
    // (from its source); one it misreads sends its failures past the error envelope's mapping.
    for (const r of app.routes.filter((r: { path: string }) => /^\/(v1|ragd)\//.test(r.path)) as { method: string; path: string; handler: Function }[])
      expect(`${r.method} ${r.path} awaited: ${isAsync(r.handler)}`).toBe(`${r.method} ${r.path} awaited: true`);
    for (const r of routes as { method: string; path: string }[]) {
      const path = r.path.replace(/\/$/, "").replace(/:(\w+)/g, "{$1}");
      const op = doc.paths[path]?.[r.method.toLowerCase()];
      expect(`${r.method} ${path} ${op ? "documented" : "missing"}`).toBe(`${r.method} ${path} documented`);
      // real schemas, not {type: "object"}: every JSON response and body names its fields
      const json = op.responses["200"].content["application/json"]?.schema;
      if (json) expect(`${r.method} ${path} ${Boolean(json.$ref ?? json.properties)}`).toBe(`${r.method} ${path} true`);
      const body = op.requestBody?.content["application/json"]?.schema;
      if (body) expect(body.$ref ?? body.properties).toBeDefined();
    }
  } finally {
    await s.close();
    cleanup(dir);
  }
});
