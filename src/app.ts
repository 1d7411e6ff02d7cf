import { Elysia } from "elysia";
import type { HttpContext } from "./http/context";
import { requestId } from "./http/edge";
import { fail, internalError, RagdError } from "./errors";
import { errorResponse } from "./http/errors";
import { embeddingsRoutes } from "./http/routes/embeddings";
import { filesRoutes } from "./http/routes/files";
import { vectorStoreRoutes } from "./http/routes/vector-stores";
import { systemRoutes } from "./http/routes/system";
import { isDiskFull, storageFull } from "./storage/disk-space";
import { log } from "./util/log";

/** The HTTP app over the services; main and tests both build it here (http/edge.ts serves it). */
export function buildApp(ctx: HttpContext) {
  return new Elysia()
    .onError({ as: "global" }, ({ code, error, request }) => toErrorResponse(ctx, code, error, request))
    .use(systemRoutes())
    .use(filesRoutes(ctx))
    .use(vectorStoreRoutes(ctx))
    .use(embeddingsRoutes(ctx));
}

function toErrorResponse(ctx: HttpContext, code: string | number, error: unknown, request: Request): Response {
  if (isDiskFull(error)) {
    // Any write can meet a full disk (SQLite's as much as a blob's): stop taking new work, and say so.
    ctx.disk?.exhausted(String((error as Error)?.message ?? error));
    return errorResponse(error instanceof RagdError ? error : storageFull(ctx.config.dataDir));
  }
  if (error instanceof RagdError) return errorResponse(error);
  const url = new URL(request.url);
  switch (code) {
    case "NOT_FOUND":
      return errorResponse(fail("unknown_url", `Invalid URL (${request.method} ${url.pathname})`));
    case "PARSE":
      return errorResponse(fail("invalid_body", "The request body could not be parsed. Send valid JSON with Content-Type: application/json."));
    case "VALIDATION":
      return errorResponse(fail("invalid_value", (error as Error).message));
  }
  log.error("unhandled error", { method: request.method, path: url.pathname, request_id: requestId(request), error: (error as Error)?.stack ?? String(error) });
  return errorResponse(internalError());
}
