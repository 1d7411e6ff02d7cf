import { Type as T } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { fail, notFound } from "../../errors";
import { DOCS_ASSETS, DOCS_HTML, DOCS_INIT_JS } from "../docs-assets";
import { route } from "../operation";
import { metrics } from "../../metrics";
import { metricsRefusal } from "../metrics-access";

// Everything on the docs page comes from this origin; the CSP makes that checkable.
const DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'";

/** Readiness: the indexes are loaded and the embedding model answers. */
export type ReadyCheck = () => Promise<{ ready: boolean; checks: Record<string, string> }>;

export function systemRoutes(openapi: () => object, o: { ready: ReadyCheck | null; metrics: boolean; metricsKey: string | null }) {
  const refusal = metricsRefusal(o.metricsKey);
  return new Elysia()
    .get("/health", () => ({ status: "ok" }), route({ operationId: "health", summary: "Liveness", auth: false, response: T.Object({ status: T.Literal("ok") }), errors: [] }))
    .get("/ready", async ({ set }) => {
      const r = o.ready ? await o.ready() : { ready: true, checks: {} };
      if (!r.ready) set.status = 503;
      return { status: r.ready ? ("ready" as const) : ("unavailable" as const), checks: r.checks };
    }, route({
      operationId: "ready",
      summary: "Readiness: 200 once the indexes are loaded and the embedding model answers, else 503",
      auth: false,
      response: T.Object({ status: T.Union([T.Literal("ready"), T.Literal("unavailable")]), checks: T.Record(T.String(), T.String()) }),
      errors: [503],
    }))
    .get("/metrics", async ({ request, set }) => {
      if (!o.metrics) throw fail("unknown_url", "Invalid URL (GET /metrics): metrics are off, or served on their own port (--metrics)");
      const refused = refusal(request);
      if (refused) throw refused;
      set.headers["content-type"] = metrics.contentType;
      return metrics.text();
    })
    .get("/openapi.json", () => openapi())
    .get("/docs", () => new Response(DOCS_HTML, { headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": DOCS_CSP } }))
    .get("/docs/assets/init.js", () => new Response(DOCS_INIT_JS, { headers: { "content-type": "text/javascript; charset=utf-8" } }))
    .get("/docs/assets/:name", ({ params }) => {
      // (an own key only: "constructor" and the like are the object's, not assets)
      const a = Object.hasOwn(DOCS_ASSETS, params.name) ? DOCS_ASSETS[params.name] : undefined;
      if (!a) throw notFound("docs asset", params.name, null);
      return new Response(Bun.file(a.path), { headers: { "content-type": a.type, "cache-control": "public, max-age=86400" } });
    });
}
