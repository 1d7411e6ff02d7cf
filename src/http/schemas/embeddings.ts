import { Type as T } from "@sinclair/typebox";
import { t } from "elysia";
import { named } from "./common";

export const MAX_INPUTS = 2048;

export const CreateEmbeddingRequest = named(
  "CreateEmbeddingRequest",
  T.Object(
    {
      input: T.Union(
        [
          T.String({ minLength: 1 }),
          T.Array(T.String({ minLength: 1 }), { minItems: 1, maxItems: MAX_INPUTS }),
          // (ids are checked by the service, which names the one it does not take)
          T.Array(T.Number(), { minItems: 1 }),
          T.Array(T.Array(T.Number(), { minItems: 1 }), { minItems: 1, maxItems: MAX_INPUTS }),
        ],
        {
          description: "Text to embed: a string, a list of up to 2048, or token ids of cl100k_base (the tokenizer of OpenAI's embedding models; a list of ids is one input, a list of such lists one each), which are read back into their text",
          error: `must be a non-empty string, a list of 1 to ${MAX_INPUTS} non-empty strings, a non-empty list of token ids, or a list of 1 to ${MAX_INPUTS} such lists`,
        },
      ),
      model: T.String({ minLength: 1, description: "The id from GET /v1/models, or `default`" }),
      encoding_format: T.Optional(T.Union([T.Literal("float"), T.Literal("base64")], { default: "float" })),
      dimensions: T.Optional(T.Integer({ minimum: 1, description: "Must equal the model's dimensions: it cannot shorten them" })),
      user: T.Optional(T.String()),
    },
    { additionalProperties: false },
  ),
);

export const CreateEmbeddingResponse = named(
  "CreateEmbeddingResponse",
  T.Object({
    object: T.Literal("list"),
    data: T.Array(T.Object({ object: T.Literal("embedding"), index: T.Integer(), embedding: T.Union([T.Array(T.Number()), T.String({ description: "base64 of little-endian float32" })]) })),
    model: T.String(),
    usage: T.Object({ prompt_tokens: T.Integer(), total_tokens: T.Integer() }),
  }),
);

export const Model = named("Model", T.Object({ id: T.String(), object: T.Literal("model"), created: T.Integer(), owned_by: T.String() }));
export const ListModelsResponse = named("ListModelsResponse", T.Object({ object: T.Literal("list"), data: T.Array(Model) }));
export const ModelParams = t.Object({ model: t.String({ description: "A model id, or `default`" }) });
