import { Elysia } from "elysia";
import type { HttpContext } from "../context";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { CreateResponse, DeleteResponseResult, GetResponseQuery, InputItemsQuery, ResponseItemList, ResponseObject, ResponseParams } from "../schemas/responses";
import type { CreateResponseInput } from "../../services/responses";

export function responsesRoutes(ctx: HttpContext) {
  const rs = ctx.responses;
  return new Elysia({ prefix: "/v1/responses" })
    .use(contract(ctx))
    // async, or Elysia (which reads a handler's source to tell) does not await it inside its
    // error handling, and a failure would skip the error envelope's mapping.
    .post("/", async ({ principal, body, request }) => {
      const input = body as CreateResponseInput;
      return input.stream ? rs.createStream(principal.projectId, input, request.signal) : rs.create(principal.projectId, input, request.signal);
    }, route({
      operationId: "createResponse",
      summary: "Answer from the model server, with file_search over the project's vector stores",
      auth: "requests",
      body: CreateResponse,
      tooLarge: "Upload large files (images with purpose 'vision') and name them by file_id.",
      response: ResponseObject,
      events: "With stream: true, the Responses API's server-sent events (response.created ... response.completed), each with sequence_number",
      errors: [400, 404, 429, 502, 503, 504],
    }))
    .get("/:response_id", ({ principal, params, query }) => rs.get(principal.projectId, params.response_id, query.stream), route({
      operationId: "getResponse", summary: "Retrieve a stored response", auth: "requests", params: ResponseParams, query: GetResponseQuery, response: ResponseObject, errors: [400, 404],
    }))
    .delete("/:response_id", ({ principal, params }) => rs.delete(principal.projectId, params.response_id), route({
      operationId: "deleteResponse", summary: "Delete a stored response (a background one still running stops)", auth: "requests", params: ResponseParams, response: DeleteResponseResult, errors: [404],
    }))
    .post("/:response_id/cancel", ({ principal, params }) => rs.cancel(principal.projectId, params.response_id), route({
      operationId: "cancelResponse", summary: "Cancel a background response", auth: "requests", params: ResponseParams, response: ResponseObject, errors: [400, 404],
    }))
    .get("/:response_id/input_items", async ({ principal, params, query }) =>
      rs.inputItems(principal.projectId, params.response_id, { limit: query.limit ?? 20, order: query.order ?? "desc", after: query.after, before: query.before }), route({
      operationId: "listInputItems", summary: "The input items of a stored response", auth: "requests", params: ResponseParams, query: InputItemsQuery, response: ResponseItemList, errors: [400, 404],
    }));
}
