import { Elysia } from "elysia";
import type { HttpContext } from "../context";
import { MAX_BODY_WITH_IMAGES } from "../json";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { CreateChatCompletionRequest, CreateChatCompletionResponse } from "../schemas/chat";
import type { ChatInput } from "../../services/chat";

export function chatRoutes(ctx: HttpContext) {
  return new Elysia()
    .use(contract(ctx))
    .post("/v1/chat/completions", ({ principal, body, request }) => ctx.chat.complete(principal.projectId, body as ChatInput, request.signal), route({
      operationId: "createChatCompletion",
      summary: "Passed through to the model server; grounded in vector stores when asked (file_search) or configured (--chat-grounding)",
      auth: "requests",
      body: CreateChatCompletionRequest,
      maxBodyBytes: MAX_BODY_WITH_IMAGES,
      response: CreateChatCompletionResponse,
      events: "With stream: true, the model server's chunks as it sends them, then [DONE]; the first chunk carries `sources` when ragd grounded the request",
      errors: [400, 404, 429, 502, 503, 504],
    }));
}
