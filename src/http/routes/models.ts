import { Elysia } from "elysia";
import type { HttpContext } from "../context";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { ListModelsResponse, Model, ModelParams } from "../schemas/embeddings";

export function modelsRoutes(ctx: HttpContext) {
  return new Elysia()
    .use(contract(ctx))
    .get("/v1/models", () => ctx.models.list(), route({
      operationId: "listModels", summary: "The embedding model, and the chat models of the configured model servers", auth: "requests", response: ListModelsResponse, errors: [],
    }))
    .get("/v1/models/:model", ({ params }) => ctx.models.get(params.model), route({
      operationId: "retrieveModel", summary: "Retrieve a model", auth: "requests", params: ModelParams, response: Model, errors: [404],
    }));
}
