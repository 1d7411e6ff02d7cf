import { Elysia } from "elysia";
import { principal, type HttpContext } from "../context";
import { jsonBody } from "../json";

export function embeddingsRoutes(ctx: HttpContext) {
  return new Elysia()
    .post("/v1/embeddings", async ({ request }) => {
      await principal(ctx, request, "requests");
      return ctx.embeddings.create(await jsonBody(request));
    }, { parse: "none" })
    .get("/v1/models", async ({ request }) => {
      await principal(ctx, request, "requests");
      return ctx.embeddings.listModels();
    })
    .get("/v1/models/:id", async ({ request, params }) => {
      await principal(ctx, request, "requests");
      return ctx.embeddings.getModel(params.id);
    });
}
