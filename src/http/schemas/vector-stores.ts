import { Type as T, type TSchema } from "@sinclair/typebox";
import { t } from "elysia";
import { Attributes, ChunkingStrategyRequest, ChunkingStrategyResponse, deleted, extension, ListPage, Metadata, named, Nullable, pagingQuery, queryParams } from "./common";

const FileCounts = T.Object({ in_progress: T.Integer(), completed: T.Integer(), failed: T.Integer(), cancelled: T.Integer(), total: T.Integer() });

const ExpiresAfter = named(
  "VectorStoreExpirationAfter",
  T.Object(
    { anchor: T.Literal("last_active_at"), days: T.Integer({ minimum: 1, maximum: 365 }) },
    { additionalProperties: false, error: `must be {"anchor":"last_active_at","days":1..365}` },
  ),
);

export const VectorStoreObject = named(
  "VectorStoreObject",
  T.Object({
    id: T.String(),
    object: T.Literal("vector_store"),
    created_at: T.Integer(),
    name: T.String({ description: "Every project has one store named `knowledge base`, which every indexed upload joins" }),
    usage_bytes: T.Integer(),
    file_counts: FileCounts,
    status: T.Union([T.Literal("expired"), T.Literal("in_progress"), T.Literal("completed")]),
    expires_after: T.Optional(ExpiresAfter),
    expires_at: Nullable(T.Integer()),
    last_active_at: Nullable(T.Integer()),
    metadata: Metadata,
  }),
);

export const CreateVectorStoreRequest = named(
  "CreateVectorStoreRequest",
  T.Object(
    {
      file_ids: T.Optional(T.Array(T.String(), { maxItems: 500 })),
      name: T.Optional(T.String({ maxLength: 256 })),
      // OpenAI takes it on create and returns it nowhere (no vector store object carries it).
      description: T.Optional(T.String({ maxLength: 4096, description: "Accepted as OpenAI accepts it; like OpenAI, no vector store object returns it" })),
      expires_after: T.Optional(ExpiresAfter),
      chunking_strategy: T.Optional(ChunkingStrategyRequest),
      metadata: T.Optional(Metadata),
    },
    { additionalProperties: false },
  ),
);

export const UpdateVectorStoreRequest = named(
  "UpdateVectorStoreRequest",
  T.Object(
    { name: T.Optional(Nullable(T.String({ maxLength: 256 }))), expires_after: T.Optional(Nullable(ExpiresAfter)), metadata: T.Optional(Metadata) },
    { additionalProperties: false },
  ),
);

const LastError = T.Object({
  code: T.Union([T.Literal("server_error"), T.Literal("unsupported_file"), T.Literal("invalid_file")]),
  message: T.String(),
});

export const VectorStoreFileObject = named(
  "VectorStoreFileObject",
  T.Object({
    id: T.String(),
    object: T.Literal("vector_store.file"),
    usage_bytes: T.Integer(),
    created_at: T.Integer(),
    vector_store_id: T.String(),
    status: T.Union([T.Literal("in_progress"), T.Literal("completed"), T.Literal("cancelled"), T.Literal("failed")]),
    last_error: Nullable(LastError),
    chunking_strategy: ChunkingStrategyResponse,
    attributes: Attributes,
  }),
);

export const CreateVectorStoreFileRequest = named(
  "CreateVectorStoreFileRequest",
  T.Object({ file_id: T.String({ minLength: 1 }), chunking_strategy: T.Optional(ChunkingStrategyRequest), attributes: T.Optional(Attributes) }, { additionalProperties: false }),
);

export const UpdateVectorStoreFileAttributesRequest = named("UpdateVectorStoreFileAttributesRequest", T.Object({ attributes: Attributes }, { additionalProperties: false }));

export const CreateVectorStoreFileBatchRequest = named(
  "CreateVectorStoreFileBatchRequest",
  T.Object(
    {
      file_ids: T.Optional(T.Array(T.String(), { minItems: 1, maxItems: 2000 })),
      files: T.Optional(T.Array(CreateVectorStoreFileRequest, { minItems: 1, maxItems: 2000 })),
      chunking_strategy: T.Optional(ChunkingStrategyRequest),
      attributes: T.Optional(Attributes),
    },
    { additionalProperties: false, description: "file_ids, or files with attributes of their own; not both" },
  ),
);

export const VectorStoreFileBatchObject = named(
  "VectorStoreFileBatchObject",
  T.Object({
    id: T.String(),
    object: T.Literal("vector_store.files_batch"),
    created_at: T.Integer(),
    vector_store_id: T.String(),
    status: T.Union([T.Literal("in_progress"), T.Literal("completed"), T.Literal("cancelled"), T.Literal("failed")]),
    file_counts: FileCounts,
  }),
);

// OpenAI's attribute filters: a comparison, or and/or over further filters.
const Scalar = T.Union([T.String(), T.Number(), T.Boolean()]);
const ComparisonFilter = named(
  "ComparisonFilter",
  T.Object(
    {
      type: T.Union(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"].map((x) => T.Literal(x))),
      key: T.String({ maxLength: 64 }),
      value: T.Union([Scalar, T.Array(Scalar)], { description: "A list for `in` and `nin`" }),
    },
    { additionalProperties: false },
  ),
);
const Filter = T.Recursive((Self) =>
  T.Union([ComparisonFilter, T.Object({ type: T.Union([T.Literal("and"), T.Literal("or")]), filters: T.Array(Self, { minItems: 1 }) }, { additionalProperties: false })]),
);
export const Filters = named("Filters", { ...Filter, description: "A comparison ({type, key, value}) or a compound filter ({type: and|or, filters})", error: "must be a comparison {\"type\":\"eq\",\"key\":...,\"value\":...} or {\"type\":\"and\"|\"or\",\"filters\":[...]}" } as TSchema);

export const RankingOptions = T.Object(
  {
    ranker: T.Optional(T.Union([T.Literal("none"), T.Literal("auto"), T.Literal("default-2024-11-15")])),
    score_threshold: T.Optional(T.Number({ minimum: 0, maximum: 1 })),
    hybrid_search: T.Optional(
      extension(
        T.Object({ embedding_weight: T.Number({ minimum: 0 }), text_weight: T.Number({ minimum: 0 }) }, { additionalProperties: false }),
        "the mix of the dense (embedding) and keyword (BM25) scores; default 0.4 / 0.6, chosen on SciFact",
      ),
    ),
  },
  { additionalProperties: false },
);

export const VectorStoreSearchRequest = named(
  "VectorStoreSearchRequest",
  T.Object(
    {
      query: T.Union([T.String({ minLength: 1, maxLength: 4096 }), T.Array(T.String({ minLength: 1, maxLength: 4096 }), { minItems: 1, maxItems: 10 })], {
        error: "must be a non-empty string or a list of 1 to 10 non-empty strings (at most 4096 characters each)",
      }),
      max_num_results: T.Optional(T.Integer({ minimum: 1, maximum: 50, default: 10 })),
      filters: T.Optional(Filters),
      ranking_options: T.Optional(RankingOptions),
      rewrite_query: T.Optional(T.Boolean({ description: "Accepted; ragd does not rewrite queries" })),
    },
    { additionalProperties: false },
  ),
);

const Location = T.Object(
  {
    page: T.Optional(T.Integer()),
    pages: T.Optional(T.Tuple([T.Integer(), T.Integer()])),
    slide: T.Optional(T.Integer()),
    sheet: T.Optional(T.String()),
    rows: T.Optional(T.Tuple([T.Integer(), T.Integer()])),
    lines: T.Optional(T.Tuple([T.Integer(), T.Integer()])),
    headings: T.Optional(T.Array(T.String())),
    chapter: T.Optional(T.String()),
    time: T.Optional(T.Tuple([T.String(), T.String()])),
  },
  { description: "Where in the file the chunk came from" },
);

export const VectorStoreSearchResultsPage = named(
  "VectorStoreSearchResultsPage",
  T.Object({
    object: T.Literal("vector_store.search_results.page"),
    search_query: T.Array(T.String()),
    data: T.Array(
      T.Object({
        file_id: T.String(),
        filename: T.String(),
        score: T.Number({ minimum: 0, maximum: 1 }),
        attributes: Attributes,
        content: T.Array(T.Object({ type: T.Literal("text"), text: T.String() })),
        location: extension(Location, "page(s), slide, sheet and rows, chapter, lines or time range of the chunk"),
      }),
    ),
    has_more: T.Boolean(),
    next_page: Nullable(T.String()),
  }),
);

export const VectorStoreFileContentResponse = named(
  "VectorStoreFileContentResponse",
  T.Object({
    object: T.Literal("vector_store.file_content.page"),
    data: T.Array(T.Object({ type: T.Literal("text"), text: T.String() })),
    has_more: T.Boolean(),
    next_page: Nullable(T.String()),
  }),
);

export const ListVectorStoresResponse = named("ListVectorStoresResponse", ListPage(VectorStoreObject));
export const ListVectorStoreFilesResponse = named("ListVectorStoreFilesResponse", ListPage(VectorStoreFileObject));
export const DeleteVectorStoreResponse = named("DeleteVectorStoreResponse", deleted("vector_store.deleted"));
export const DeleteVectorStoreFileResponse = named("DeleteVectorStoreFileResponse", deleted("vector_store.file.deleted"));

const StoreFilter = t.Optional(t.Union(["in_progress", "completed", "failed", "cancelled"].map((x) => t.Literal(x)), { description: "Only files with this status" }));
export const ListQuery = queryParams(pagingQuery());
export const ListFilesQuery = queryParams({ ...pagingQuery(), filter: StoreFilter });

const storeId = t.String({ description: "A vector store id, `vs_` and 24 characters" });
const fileId = t.String({ description: "A file id" });
const batchId = t.String({ description: "A file batch id, `vsfb_` and 24 characters" });
export const StoreParams = t.Object({ vector_store_id: storeId });
export const StoreFileParams = t.Object({ vector_store_id: storeId, file_id: fileId });
export const BatchParams = t.Object({ vector_store_id: storeId, batch_id: batchId });
