import { Elysia } from "elysia";
import type { HttpContext } from "../context";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { CreateEmbeddingRequest, CreateEmbeddingResponse, ListModelsResponse, Model, ModelParams } from "../schemas/embeddings";

export function embeddingsRoutes(ctx: HttpContext) {
  return new Elysia()
    .use(contract(ctx))
    .post("/v1/embeddings", ({ body }) => ctx.embeddings.create(body), route({
      operationId: "createEmbedding", summary: "Embed text with the configured model (`default` is an alias)", auth: "requests", body: CreateEmbeddingRequest, response: CreateEmbeddingResponse, errors: [400, 404, 503],
    }))
    .get("/v1/models", () => ctx.embeddings.listModels(), route({
      operationId: "listModels", summary: "The embedding model this server serves", auth: "requests", response: ListModelsResponse, errors: [],
    }))
    .get("/v1/models/:model", ({ params }) => ctx.embeddings.getModel(params.model), route({
      operationId: "retrieveModel", summary: "Retrieve a model", auth: "requests", params: ModelParams, response: Model, errors: [404],
    }));
}
