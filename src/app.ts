import { Elysia } from "elysia";
import { unavailableStore } from "./storage/open";
import { fail, internalError, RagdError } from "./errors";
import type { HttpContext } from "./http/context";
import { requestId, routeMatched } from "./http/edge";
import { errorResponse } from "./http/errors";
import { openapiDocument } from "./http/openapi";
import { embeddingsRoutes } from "./http/routes/embeddings";
import { chatRoutes } from "./http/routes/chat";
import { consoleRoutes } from "./http/routes/console";
import { filesRoutes } from "./http/routes/files";
import { uploadsRoutes } from "./http/routes/uploads";
import { modelsRoutes } from "./http/routes/models";
import { responsesRoutes } from "./http/routes/responses";
import { systemRoutes } from "./http/routes/system";
import { vectorStoreRoutes } from "./http/routes/vector-stores";
import { fromValidation } from "./http/validation";
import { isDiskFull, storageFull } from "./storage/disk-space";
import { log } from "./util/log";
import { Cancelled } from "./llm/upstream";

/** The HTTP app over the services; main and tests both build it here (http/edge.ts serves it). */
export function buildApp(ctx: HttpContext) {
  // /openapi.json describes every route, so it is made from the finished app, on first use.
  let routes: () => Parameters<typeof openapiDocument>[0] = () => [];
  let document: object | null = null;
  const app = new Elysia({ normalize: false })
    .onError({ as: "global" }, ({ code, error, request }) => toErrorResponse(ctx, code, error, request))
    .onTransform({ as: "global" }, ({ request, route }) => routeMatched(request, route))
    .use(systemRoutes(() => (document ??= openapiDocument(routes())), { ready: ctx.ready ?? null, metrics: ctx.config.metrics === "on", metricsKey: ctx.config.metricsKey }))
    .use(filesRoutes(ctx))
    .use(uploadsRoutes(ctx))
    .use(vectorStoreRoutes(ctx))
    .use(embeddingsRoutes(ctx))
    .use(modelsRoutes(ctx))
    .use(responsesRoutes(ctx))
    .use(chatRoutes(ctx))
    .use(consoleRoutes(ctx));
  routes = () => app.routes as never;
  return app;
}

function toErrorResponse(ctx: HttpContext, code: string | number, error: unknown, request: Request): Response {
  if (isDiskFull(error)) {
    // Any write can meet a full disk (SQLite's as much as a blob's): stop taking new work, and say so.
    ctx.disk?.exhausted(String((error as Error)?.message ?? error));
    return errorResponse(error instanceof RagdError ? error : storageFull(ctx.config.dataDir));
  }
  if (error instanceof RagdError) return errorResponse(error);
  const unavailable = unavailableStore(error);
  if (unavailable) {
    log.warn(`${unavailable} unavailable`, { method: request.method, path: new URL(request.url).pathname, error: String((error as Error)?.message ?? error) });
    return errorResponse(
      unavailable === "database"
        ? new RagdError("database_unavailable", "The database could not be reached (it may be restarting). Retry in a few seconds.", null, { "retry-after": "2" })
        : new RagdError("file_store_unavailable", "The file store could not be reached. Nothing was stored or changed; retry in a few seconds.", null, { "retry-after": "2" }),
    );
  }
  // The client went away while its answer was being written: nobody reads this.
  if (error instanceof Cancelled) return new Response(null, { status: 499 });
  const url = new URL(request.url);
  switch (code) {
    case "NOT_FOUND":
      return errorResponse(fail("unknown_url", `Invalid URL (${request.method} ${url.pathname})`));
    case "PARSE": {
      // The parse step also checks the key (http/plugins/contract.ts): what it or our body
      // reader threw is answered as itself (a 401, a body too large, a database out of reach,
      // a fault of ours); only the JSON itself is the body's fault.
      const cause = (error as { cause?: unknown })?.cause;
      if (cause !== undefined && !(cause instanceof SyntaxError)) return toErrorResponse(ctx, "UNKNOWN", cause, request);
      return errorResponse(fail("invalid_body", "The request body could not be parsed. Send valid JSON with Content-Type: application/json."));
    }
    case "VALIDATION":
      return errorResponse(fromValidation(error, request));
  }
  log.error("unhandled error", { method: request.method, path: url.pathname, request_id: requestId(request), error: (error as Error)?.stack ?? String(error) });
  return errorResponse(internalError());
}
