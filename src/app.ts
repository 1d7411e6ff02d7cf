import { cors } from "@elysiajs/cors";
import { Elysia } from "elysia";
import type { HttpContext } from "./http/context";
import { ApiError, errorResponse, fromServiceError, internalError, badRequest } from "./http/errors";
import { embeddingsRoutes } from "./http/routes/embeddings";
import { filesRoutes } from "./http/routes/files";
import { vectorStoreRoutes } from "./http/routes/vector-stores";
import { systemRoutes } from "./http/routes/system";
import { ServiceError } from "./services/errors";
import { log } from "./util/log";

/** The HTTP app over the services; main and tests both build it here. */
export function buildApp(ctx: HttpContext) {
  const origins = ctx.config.corsOrigins === "*" ? true : ctx.config.corsOrigins.split(",").map((s) => s.trim());
  return new Elysia({
    serve: {
      // Bun's own cap answers in plain text; ours answers with the OpenAI envelope, so
      // Bun's is out of the way and the upload stream enforces the limit exactly.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      idleTimeout: 120,
    },
  })
    .use(cors({ origin: origins, exposeHeaders: ["openai-poll-after-ms", "retry-after", "content-disposition", "content-range"] }))
    .onError({ as: "global" }, ({ code, error, request }) => toErrorResponse(code, error, request))
    .use(systemRoutes())
    .use(filesRoutes(ctx))
    .use(vectorStoreRoutes(ctx))
    .use(embeddingsRoutes(ctx));
}

function toErrorResponse(code: string | number, error: unknown, request: Request): Response {
  if (error instanceof ApiError) return errorResponse(error);
  if (error instanceof ServiceError) return errorResponse(fromServiceError(error));
  const url = new URL(request.url);
  switch (code) {
    case "NOT_FOUND":
      return errorResponse(new ApiError(404, "invalid_request_error", `Invalid URL (${request.method} ${url.pathname})`, null, "unknown_url"));
    case "PARSE":
      return errorResponse(badRequest("The request body could not be parsed. Send valid JSON with Content-Type: application/json.", null, "invalid_body"));
    case "VALIDATION":
      return errorResponse(badRequest((error as Error).message, null, "invalid_value"));
  }
  log.error("unhandled error", { method: request.method, path: url.pathname, error: (error as Error)?.stack ?? String(error) });
  return errorResponse(internalError());
}
