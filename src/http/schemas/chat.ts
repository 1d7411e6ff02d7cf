// /v1/chat/completions: passed through to the model server, so the body is checked only as
// far as ragd reads it; every other field goes to the model server as sent.
import { Type as T } from "@sinclair/typebox";
import { extension, named, Nullable } from "./common";
import { Filters, RankingOptions } from "./vector-stores";

const FileSearch = extension(
  T.Object(
    {
      vector_store_ids: T.Optional(T.Array(T.String(), { minItems: 1, maxItems: 10, description: "Stores to search; the project's knowledge base when absent" })),
      max_num_results: T.Optional(T.Integer({ minimum: 1, maximum: 50 })),
      filters: T.Optional(Nullable(Filters)),
      ranking_options: T.Optional(RankingOptions),
    },
    { additionalProperties: false },
  ),
  "ground this request: ragd searches these stores with the last user message and puts the passages before it, numbered; `sources` in the answer lists them",
);

export const CreateChatCompletionRequest = named(
  "CreateChatCompletionRequest",
  T.Object(
    {
      model: extension(T.Optional(T.String({ minLength: 1 })), "optional: the server's --llm-model answers when absent"),
      messages: T.Array(T.Record(T.String(), T.Unknown()), { minItems: 1, description: "Passed to the model server as sent" }),
      stream: T.Optional(Nullable(T.Boolean())),
      file_search: T.Optional(Nullable(FileSearch)),
    },
    { additionalProperties: true, description: "Every other Chat Completions field is passed to the model server unchanged" },
  ),
);

const Source = T.Object({
  index: T.Integer({ description: "The passage's number, [n], in the system message ragd added" }),
  file_id: T.String(),
  filename: T.String(),
  score: T.Number(),
  attributes: T.Record(T.String(), T.Unknown()),
});

export const CreateChatCompletionResponse = named(
  "CreateChatCompletionResponse",
  T.Object({
    id: T.String(),
    object: T.Literal("chat.completion"),
    created: T.Integer(),
    model: T.String(),
    choices: T.Array(
      T.Object({
        index: T.Integer(),
        message: T.Object({ role: T.Literal("assistant"), content: Nullable(T.String()), refusal: Nullable(T.String()) }, { additionalProperties: true }),
        finish_reason: literals(["stop", "length", "tool_calls", "content_filter", "function_call"]),
        logprobs: Nullable(T.Unknown()),
      }),
    ),
    usage: T.Optional(T.Record(T.String(), T.Unknown())),
    sources: T.Optional(extension(T.Array(Source), "the passages ragd put before the last user message, when it grounded the request (on the first chunk when streaming)")),
  }),
);

function literals(xs: string[]) {
  return T.Union(xs.map((x) => T.Literal(x)));
}
