import { Type as T } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { notFound } from "../../errors";
import { DOCS_ASSETS, DOCS_HTML, DOCS_INIT_JS } from "../docs-assets";
import { route } from "../operation";

// Everything on the docs page comes from this origin; the CSP makes that checkable.
const DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'";

export function systemRoutes(openapi: () => object) {
  return new Elysia()
    .get("/health", () => ({ status: "ok" }), route({ operationId: "health", summary: "Liveness", auth: false, response: T.Object({ status: T.Literal("ok") }), errors: [] }))
    .get("/openapi.json", () => openapi())
    .get("/docs", () => new Response(DOCS_HTML, { headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": DOCS_CSP } }))
    .get("/docs/assets/init.js", () => new Response(DOCS_INIT_JS, { headers: { "content-type": "text/javascript; charset=utf-8" } }))
    .get("/docs/assets/:name", ({ params }) => {
      const a = DOCS_ASSETS[params.name];
      if (!a) throw notFound("docs asset", params.name, null);
      return new Response(Bun.file(a.path), { headers: { "content-type": a.type, "cache-control": "public, max-age=86400" } });
    });
}
