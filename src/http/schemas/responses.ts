// The Responses API (/v1/responses) as ragd takes and answers it. Requests are checked here
// as far as a schema can say; input items and tools are read in services/responses.ts and
// answers/input.ts, which name the exact field that is wrong.
import { Type as T, type TSchema } from "@sinclair/typebox";
import { t } from "elysia";
import { extension, Metadata, named, Nullable, pagingQuery, queryParams } from "./common";
import { Filters, RankingOptions } from "./vector-stores";

const INCLUDE = [
  "file_search_call.results",
  "web_search_call.results",
  "web_search_call.action.sources",
  "message.input_image.image_url",
  "computer_call_output.output.image_url",
  "code_interpreter_call.outputs",
  "reasoning.encrypted_content",
  "message.output_text.logprobs",
];
const literals = (xs: string[], o: object = {}) => T.Union(xs.map((x) => T.Literal(x)), o);
const Include = named("IncludeEnum", literals(INCLUDE, { description: "file_search_call.results adds the passages to file_search_call items; the others are accepted and have nothing to add" }));

const FileSearchTool = named(
  "FileSearchTool",
  T.Object(
    {
      type: T.Literal("file_search"),
      vector_store_ids: T.Array(T.String(), { minItems: 1, maxItems: 10, description: "The stores to search (of this project)" }),
      max_num_results: T.Optional(T.Integer({ minimum: 1, maximum: 50, description: "Passages per search; default --answer-max-results" })),
      ranking_options: T.Optional(RankingOptions),
      filters: T.Optional(Nullable(Filters)),
    },
    { additionalProperties: false },
  ),
);

const FunctionTool = named(
  "FunctionTool",
  T.Object(
    {
      type: T.Literal("function"),
      name: T.String({ minLength: 1, maxLength: 64 }),
      description: T.Optional(Nullable(T.String())),
      parameters: T.Optional(Nullable(T.Record(T.String(), T.Unknown()))),
      strict: T.Optional(Nullable(T.Boolean())),
    },
    { additionalProperties: true, description: "Passed to the model; its calls come back to the caller as function_call items" },
  ),
);

const Tool = T.Union([FileSearchTool, FunctionTool], {
  error: "each tool must be {\"type\":\"file_search\",\"vector_store_ids\":[...]} or {\"type\":\"function\",\"name\":...,\"parameters\":{...}}: ragd runs file_search itself and passes function tools to the model",
});

const ToolChoice = T.Union(
  [
    literals(["none", "auto", "required"]),
    T.Object({ type: T.Literal("file_search") }, { additionalProperties: false }),
    T.Object({ type: T.Literal("function"), name: T.String() }, { additionalProperties: false }),
  ],
  { error: 'must be "auto", "none", "required", {"type":"file_search"} or {"type":"function","name":...}' },
);

const TextFormat = T.Union(
  [
    T.Object({ type: T.Literal("text") }, { additionalProperties: false }),
    T.Object({ type: T.Literal("json_object") }, { additionalProperties: false }),
    T.Object(
      {
        type: T.Literal("json_schema"),
        name: T.String({ minLength: 1, maxLength: 64 }),
        schema: T.Record(T.String(), T.Unknown()),
        description: T.Optional(T.String()),
        strict: T.Optional(Nullable(T.Boolean())),
      },
      { additionalProperties: false },
    ),
  ],
  { error: 'must be {"type":"text"}, {"type":"json_object"} or {"type":"json_schema","name":...,"schema":{...}}' },
);

const TextParam = T.Object({ format: T.Optional(TextFormat), verbosity: T.Optional(Nullable(literals(["low", "medium", "high"]))) }, { additionalProperties: false });

const InputItem = T.Record(T.String(), T.Unknown(), {
  description: "A message ({role, content}: input_text, input_file by file_id, input_image), a function_call, a function_call_output, an item_reference (or {id} alone) to an item of a stored response, or a file_search_call or reasoning item passed back (listed, not sent to the model)",
});

const accepted = (s: TSchema) => T.Optional({ ...s, description: "Accepted; it changes nothing on this server" } as TSchema);

export const CreateResponse = named(
  "CreateResponse",
  T.Object(
    {
      model: T.Optional(T.String({ minLength: 1, description: "A chat model from GET /v1/models; default --llm-model" })),
      input: T.Optional(T.Union([T.String(), T.Array(InputItem)], { error: "must be a string or a list of input items" })),
      instructions: T.Optional(Nullable(T.String({ description: "A system message for this response (not carried to the next)" }))),
      tools: T.Optional(T.Array(Tool)),
      tool_choice: T.Optional(ToolChoice),
      include: T.Optional(Nullable(T.Array(Include))),
      previous_response_id: T.Optional(Nullable(T.String({ description: "Continue that response's conversation" }))),
      store: T.Optional(Nullable(T.Boolean({ default: true }))),
      stream: T.Optional(Nullable(T.Boolean({ default: false }))),
      background: T.Optional(Nullable(T.Boolean({ default: false, description: "Answer at once with status queued; the response is written in the background (and again after a restart)" }))),
      temperature: T.Optional(Nullable(T.Number({ minimum: 0, maximum: 2 }))),
      top_p: T.Optional(Nullable(T.Number({ minimum: 0, maximum: 1 }))),
      max_output_tokens: T.Optional(Nullable(T.Integer({ minimum: 16 }))),
      max_tool_calls: T.Optional(Nullable(T.Integer({ minimum: 0, description: "file_search calls the model may make (default 4); calls past it, or past 20 whatever it says, are answered without a search" }))),
      metadata: T.Optional(Metadata),
      text: T.Optional(TextParam),
      parallel_tool_calls: T.Optional(Nullable(T.Boolean())),
      reasoning: T.Optional(Nullable(T.Record(T.String(), T.Unknown(), { description: "effort is passed to the model server as reasoning_effort" }))),
      truncation: T.Optional(Nullable(literals(["auto", "disabled"]))),
      user: T.Optional(T.String()),
      safety_identifier: accepted(Nullable(T.String())),
      prompt_cache_key: accepted(Nullable(T.String())),
      service_tier: accepted(Nullable(literals(["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"]))),
      top_logprobs: accepted(Nullable(T.Integer({ minimum: 0, maximum: 20 }))),
      stream_options: accepted(Nullable(T.Object({ include_obfuscation: T.Optional(T.Boolean()) }))),
      prompt_cache_retention: accepted(Nullable(literals(["in_memory", "24h"]))),
      prompt_cache_options: accepted(Nullable(T.Record(T.String(), T.Unknown()))),
      context_management: accepted(Nullable(T.Array(T.Record(T.String(), T.Unknown()), { minItems: 1 }))),
      // Taken so the service can say what to do instead (services/responses.ts prepare).
      conversation: T.Optional(T.Unknown({ description: "Not supported: continue a conversation with previous_response_id" })),
      prompt: T.Optional(T.Unknown({ description: "Not supported: send the instructions and input themselves" })),
      moderation: T.Optional(T.Unknown({ description: "Not supported: ragd runs no moderation (refused rather than skipped)" })),
    },
    { additionalProperties: false },
  ),
);

const OutputText = T.Object({
  type: T.Literal("output_text"),
  text: T.String(),
  annotations: T.Array(
    named(
      "FileCitationBody",
      T.Object({ type: T.Literal("file_citation"), file_id: T.String(), filename: T.String(), index: T.Integer({ description: "Where in the text the citation stands (its [n] marker)" }) }),
    ),
  ),
  logprobs: T.Array(T.Unknown()),
});

const OutputItem = T.Union([
  named("OutputMessage", T.Object({ id: T.String(), type: T.Literal("message"), role: T.Literal("assistant"), status: literals(["in_progress", "completed", "incomplete"]), content: T.Array(OutputText) })),
  named(
    "FileSearchToolCall",
    T.Object({
      id: T.String(),
      type: T.Literal("file_search_call"),
      status: literals(["in_progress", "searching", "completed", "incomplete", "failed"]),
      queries: T.Array(T.String()),
      results: Nullable(T.Array(T.Object({ file_id: T.String(), filename: T.String(), score: T.Number(), text: T.String(), attributes: T.Unknown() }))),
    }),
  ),
  named(
    "FunctionToolCall",
    T.Object({ id: T.String(), type: T.Literal("function_call"), status: literals(["in_progress", "completed", "incomplete"]), call_id: T.String(), name: T.String(), arguments: T.String() }),
  ),
]);

const Usage = named(
  "ResponseUsage",
  T.Object({
    input_tokens: T.Integer(),
    input_tokens_details: T.Object({ cached_tokens: T.Integer(), cache_write_tokens: T.Integer() }),
    output_tokens: T.Integer(),
    output_tokens_details: T.Object({ reasoning_tokens: T.Integer() }),
    total_tokens: T.Integer(),
  }, { description: "As the model server reported it, summed over the turns of the response; absent when it reported none" }),
);

export const ResponseObject = named(
  "Response",
  T.Object({
    id: T.String(),
    object: T.Literal("response"),
    created_at: T.Integer(),
    status: literals(["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]),
    background: T.Boolean(),
    completed_at: Nullable(T.Integer()),
    error: Nullable(T.Object({ code: T.String(), message: T.String() })),
    incomplete_details: Nullable(T.Object({ reason: literals(["max_output_tokens", "content_filter"]) })),
    instructions: Nullable(T.String()),
    max_output_tokens: Nullable(T.Integer()),
    max_tool_calls: Nullable(T.Integer()),
    model: T.String(),
    output: T.Array(OutputItem),
    parallel_tool_calls: T.Boolean(),
    previous_response_id: Nullable(T.String()),
    reasoning: Nullable(T.Unknown()),
    store: extension(T.Boolean(), "whether the response is kept for retrieval and previous_response_id (OpenAI's answers have it; its spec leaves it out)"),
    temperature: Nullable(T.Number()),
    text: T.Object({ format: T.Unknown() }),
    tool_choice: T.Unknown(),
    tools: T.Array(T.Unknown()),
    top_p: Nullable(T.Number()),
    truncation: Nullable(literals(["auto", "disabled"])),
    usage: T.Optional(Usage),
    user: T.Optional(T.String()),
    metadata: Metadata,
  }, { description: "metadata.ragd_file_search says how file_search ran: tool_call (the model wrote the queries) or user_input (ragd searched with the user's message)" }),
);

export const DeleteResponseResult = T.Object({ id: T.String(), object: T.Literal("response"), deleted: T.Boolean() });

export const ResponseParams = t.Object({ response_id: t.String({ description: "A response id" }) });

export const GetResponseQuery = queryParams({
  include: t.Optional(t.Array(t.UnionEnum(INCLUDE as [string, ...string[]]), { description: "Accepted; a stored response keeps what its create asked for" })),
  stream: t.Optional(t.Boolean({ description: "Not supported: ragd does not replay a response's events" })),
  starting_after: t.Optional(t.Integer({ description: "With stream; not supported" })),
  include_obfuscation: t.Optional(t.Boolean({ description: "Accepted" })),
});

const { before: _before, ...inputPaging } = pagingQuery();
export const InputItemsQuery = queryParams({
  ...inputPaging,
  before: t.Optional(extension(t.String({ minLength: 1 }), "an item id: list the items just before it")),
  include: t.Optional(t.Array(t.UnionEnum(INCLUDE as [string, ...string[]]), { description: "Accepted" })),
});

export const ResponseItemList = named(
  "ResponseItemList",
  T.Object({
    object: T.Literal("list"),
    data: T.Array(T.Record(T.String(), T.Unknown(), { description: "Input items with their ids: messages, function calls and their outputs" })),
    first_id: Nullable(T.String()),
    last_id: Nullable(T.String()),
    has_more: T.Boolean(),
  }),
);
