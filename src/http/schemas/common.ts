// Shapes shared by several routes. Request bodies are plain TypeBox (strict JSON types:
// "5" is not an integer); query and path parameters use Elysia's `t`, which reads numbers
// from query strings. Every schema here is also what /openapi.json documents.
import { OptionalKind, Type as T, type TSchema } from "@sinclair/typebox";
import { t } from "elysia";

const names = new WeakMap<object, string>();

/** A schema documented once under components/schemas/<name> and referred to elsewhere. */
export function named<S extends TSchema>(name: string, schema: S): S {
  names.set(schema, name);
  return schema;
}

export const schemaName = (schema: object) => names.get(schema);

/** Marks a field or parameter ragd has and the OpenAI API does not. */
export const extension = <S extends TSchema>(schema: S, description: string): S =>
  ({ ...schema, description: `ragd extension: ${description}`, "x-ragd-extension": true }) as S;

/** `error`: what a refused value is told it should be (a failure inside a union is reported for the union as a whole). */
export const Nullable = <S extends TSchema>(s: S, error?: string) => T.Union([s, T.Null()], error ? { error } : {});

export const ErrorResponse = named(
  "ErrorResponse",
  T.Object({
    error: T.Object({
      message: T.String(),
      type: T.String(),
      param: Nullable(T.String()),
      code: Nullable(T.String()),
    }),
  }),
);

/** OpenAI's cursor page. */
export const ListPage = (item: TSchema, extra: Record<string, TSchema> = {}) =>
  T.Object({
    object: T.Literal("list"),
    data: T.Array(item),
    first_id: Nullable(T.String()),
    last_id: Nullable(T.String()),
    has_more: T.Boolean(),
    ...extra,
  });

/** Query parameters: each carries its name, which Elysia's check of a number read from the query does not report. */
export function queryParams<P extends Record<string, TSchema>>(props: P) {
  const out: Record<string, TSchema> = {};
  for (const [name, schema] of Object.entries(props)) {
    const error = () => ({ param: name });
    const numeric = (schema.anyOf as Record<string, unknown>[] | undefined)?.find((b) => b.type === "integer");
    // The numeric check is compiled when t.Integer is made, so an integer is made again with its name.
    if (numeric) {
      const { type: _, ...options } = numeric;
      const made = t.Integer({ ...options, description: schema.description, ...(schema["x-ragd-extension"] ? { "x-ragd-extension": true } : {}), error });
      out[name] = OptionalKind in schema ? t.Optional(made) : made;
    } else out[name] = { ...schema, error } as TSchema;
  }
  return t.Object(out as P);
}

export const order = () => t.UnionEnum(["asc", "desc"], { default: "desc", description: "Sort order by creation time" });

/** limit, order, after, before: the paging parameters of the vector store lists (use with queryParams). */
export const pagingQuery = () => ({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, default: 20, description: "Page size" })),
  order: t.Optional(order()),
  after: t.Optional(t.String({ minLength: 1, description: "An id from a previous page: list the objects after it" })),
  before: t.Optional(t.String({ minLength: 1, description: "An id from a previous page: list the objects just before it" })),
});

// At most n characters as OpenAI counts them (code points): a surrogate pair is one. Each
// position has one way to match (a lone high surrogate only when no low one follows), so a
// long string is refused in linear time.
const CHAR = "(?:[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|[^\\uD800-\\uDBFF])";
const atMost = (n: number, char = CHAR) => `^${char}{0,${n}}$`;
/** For attributes, filtered as JSON by PostgreSQL, which holds neither NUL nor a lone surrogate. */
const JSON_CHAR = "(?:[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|[^\\uD800-\\uDFFF\\u0000])";

export const Metadata = named(
  "Metadata",
  Nullable(
    // The key's length is in its pattern, with unmatched keys refused: a Record keeps only
    // its key's pattern, so a longer key went unchecked, its value too.
    T.Record(T.String({ pattern: atMost(64) }), T.String({ pattern: atMost(512) }), {
      maxProperties: 16,
      additionalProperties: false,
      description: "Up to 16 keys of at most 64 characters, with string values of at most 512",
    }),
    "null, or an object of at most 16 keys of at most 64 characters with string values of at most 512 characters",
  ),
);

export const Attributes = named(
  "VectorStoreFileAttributes",
  Nullable(
    // No NUL, no lone surrogate: PostgreSQL's JSON holds neither, and filters compare attributes as JSON.
    T.Record(T.String({ pattern: atMost(64, JSON_CHAR) }), T.Union([T.String({ pattern: atMost(512, JSON_CHAR) }), T.Number(), T.Boolean()]), {
      maxProperties: 16,
      additionalProperties: false,
      description: "Up to 16 keys of at most 64 characters: strings of at most 512 characters, numbers or booleans; filters search on them",
    }),
    "null, or an object of at most 16 keys of at most 64 characters (no NUL, no lone surrogate) with values that are strings of at most 512 characters (no NUL, no lone surrogate), numbers or booleans",
  ),
);

const StaticChunking = named(
  "StaticChunkingStrategy",
  T.Object(
    {
      max_chunk_size_tokens: T.Integer({ minimum: 100, maximum: 4096 }),
      chunk_overlap_tokens: T.Integer({ minimum: 0, description: "At most half of max_chunk_size_tokens" }),
    },
    { additionalProperties: false },
  ),
);

export const ChunkingStrategyRequest = named(
  "ChunkingStrategyRequestParam",
  T.Union(
    [
      named("AutoChunkingStrategyRequestParam", T.Object({ type: T.Literal("auto") }, { additionalProperties: false })),
      named("StaticChunkingStrategyRequestParam", T.Object({ type: T.Literal("static"), static: StaticChunking }, { additionalProperties: false })),
    ],
    {
      description:
        "How files are cut. `auto` is the server's default cut (the model's window); a `static` size the model can read gets its own cut, a larger one is clamped to the window",
      error: `must be {"type":"auto"} or {"type":"static","static":{"max_chunk_size_tokens":100..4096,"chunk_overlap_tokens":...}}`,
    },
  ),
);

export const ChunkingStrategyResponse = named(
  "StaticChunkingStrategyResponseParam",
  T.Object({ type: T.Literal("static"), static: StaticChunking }, { description: "The cut that was applied (sizes past the model's window are clamped to it)" }),
);

export const deleted = (object: string) => T.Object({ id: T.String(), object: T.Literal(object), deleted: T.Boolean() });
