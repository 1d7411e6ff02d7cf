import { Elysia } from "elysia";
import type { HttpContext } from "./http/context";
import { requestId } from "./http/edge";
import { ApiError, errorResponse, fromServiceError, internalError, badRequest, storageFull } from "./http/errors";
import { embeddingsRoutes } from "./http/routes/embeddings";
import { filesRoutes } from "./http/routes/files";
import { vectorStoreRoutes } from "./http/routes/vector-stores";
import { systemRoutes } from "./http/routes/system";
import { ServiceError } from "./services/errors";
import { isDiskFull } from "./storage/disk-space";
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
  if (error instanceof ApiError) return errorResponse(error);
  if (error instanceof ServiceError) return errorResponse(fromServiceError(error));
  if (isDiskFull(error)) {
    // Any write can meet a full disk (SQLite's as much as a blob's): release the reserve so
    // deletes work, and say so.
    ctx.disk?.exhausted(String((error as Error)?.message ?? error));
    return errorResponse(storageFull(ctx.config.dataDir));
  }
  const url = new URL(request.url);
  switch (code) {
    case "NOT_FOUND":
      return errorResponse(new ApiError(404, "invalid_request_error", `Invalid URL (${request.method} ${url.pathname})`, null, "unknown_url"));
    case "PARSE":
      return errorResponse(badRequest("The request body could not be parsed. Send valid JSON with Content-Type: application/json.", null, "invalid_body"));
    case "VALIDATION":
      return errorResponse(badRequest((error as Error).message, null, "invalid_value"));
  }
  log.error("unhandled error", { method: request.method, path: url.pathname, request_id: requestId(request), error: (error as Error)?.stack ?? String(error) });
  return errorResponse(internalError());
}
