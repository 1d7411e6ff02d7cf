import { Elysia } from "elysia";
import type { HttpContext } from "../context";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { CreateEmbeddingRequest, CreateEmbeddingResponse } from "../schemas/embeddings";

export function embeddingsRoutes(ctx: HttpContext) {
  return new Elysia()
    .use(contract(ctx))
    .post("/v1/embeddings", ({ body }) => ctx.embeddings.create(body), route({
      operationId: "createEmbedding", summary: "Embed text with the configured model (`default` is an alias)", auth: "requests", body: CreateEmbeddingRequest, response: CreateEmbeddingResponse, errors: [400, 404, 503],
    }));
}
