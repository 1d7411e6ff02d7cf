import pkg from "../../package.json";

// The contract as served at /openapi.json. Shapes follow the official OpenAI spec; the
// extensions (purpose knowledge_base, offset) are marked in their descriptions.
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: ERROR_TEXT[c], content: json(ref("ErrorResponse")) }]));
const ERROR_TEXT: Record<number, string> = {
  400: "Invalid request",
  401: "Missing or wrong API key",
  404: "No such object in this project",
  413: "File too large or project quota exceeded",
  416: "Range not satisfiable",
  429: "Rate limit reached; see retry-after",
};
const fileId = { name: "file_id", in: "path", required: true, schema: { type: "string" }, description: "A file id, `file-` and 24 characters" };

export const openapiDocument = {
  openapi: "3.1.0",
  info: {
    title: "ragd",
    version: pkg.version,
    description: "A self-hosted, OpenAI-compatible Files API and knowledge base. Authenticate with `Authorization: Bearer sk-...`.",
  },
  servers: [{ url: "/" }],
  security: [{ bearer: [] }],
  paths: {
    "/v1/files": {
      post: {
        summary: "Upload a file",
        operationId: "createFile",
        requestBody: {
          required: true,
          content: {
            "multipart/form-data": {
              schema: {
                type: "object",
                required: ["file"],
                properties: {
                  file: { type: "string", format: "binary" },
                  purpose: {
                    type: "string",
                    enum: ["knowledge_base", "assistants", "user_data", "batch", "fine-tune", "evals", "vision"],
                    default: "knowledge_base",
                    description: "`knowledge_base` (a ragd extension) and `assistants` mean the same. `batch`, `fine-tune` and `evals` need a .jsonl file of JSON objects; `vision` an image.",
                  },
                  "expires_after[anchor]": { type: "string", enum: ["created_at"] },
                  "expires_after[seconds]": { type: "integer", minimum: 3600, maximum: 2592000 },
                },
              },
            },
          },
        },
        responses: { "200": { description: "The file object", content: json(ref("OpenAIFile")) }, ...errors(400, 401, 413, 429) },
      },
      get: {
        summary: "List files",
        operationId: "listFiles",
        parameters: [
          { name: "purpose", in: "query", schema: { type: "string" } },
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 10000, default: 10000 } },
          { name: "order", in: "query", schema: { type: "string", enum: ["asc", "desc"], default: "desc" } },
          { name: "after", in: "query", schema: { type: "string" }, description: "A file id: list the files after it" },
          { name: "offset", in: "query", schema: { type: "integer", minimum: 0 }, description: "ragd extension; applies to the first page only (ignored with `after`)" },
        ],
        responses: { "200": { description: "A page of files", content: json(ref("ListFilesResponse")) }, ...errors(400, 401, 429) },
      },
    },
    "/v1/files/{file_id}": {
      get: {
        summary: "Retrieve a file",
        operationId: "retrieveFile",
        parameters: [fileId],
        responses: { "200": { description: "The file object", content: json(ref("OpenAIFile")) }, ...errors(401, 404, 429) },
      },
      delete: {
        summary: "Delete a file, its bytes and everything derived from it",
        operationId: "deleteFile",
        parameters: [fileId],
        responses: { "200": { description: "Deleted", content: json(ref("DeleteFileResponse")) }, ...errors(401, 404, 429) },
      },
    },
    "/v1/files/{file_id}/content": {
      get: {
        summary: "Download a file's exact bytes (supports Range)",
        operationId: "downloadFile",
        parameters: [fileId, { name: "Range", in: "header", schema: { type: "string" }, example: "bytes=0-1023" }],
        responses: {
          "200": { description: "The bytes", content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
          "206": { description: "The requested range" },
          ...errors(401, 404, 416, 429),
        },
      },
    },
    ...retrievalPaths(),
    "/health": {
      get: { summary: "Liveness", security: [], responses: { "200": { description: "ok", content: json({ type: "object", properties: { status: { type: "string" } } }) } } },
    },
  },
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    schemas: {
      OpenAIFile: {
        type: "object",
        required: ["id", "object", "bytes", "created_at", "filename", "purpose", "status"],
        properties: {
          id: { type: "string" },
          object: { type: "string", enum: ["file"] },
          bytes: { type: "integer" },
          created_at: { type: "integer" },
          expires_at: { type: ["integer", "null"] },
          filename: { type: "string" },
          purpose: { type: "string" },
          status: { type: "string", enum: ["uploaded", "processed", "error"] },
          status_details: { type: ["string", "null"] },
        },
      },
      ListFilesResponse: {
        type: "object",
        required: ["object", "data", "first_id", "last_id", "has_more"],
        properties: {
          object: { type: "string", enum: ["list"] },
          data: { type: "array", items: ref("OpenAIFile") },
          first_id: { type: ["string", "null"] },
          last_id: { type: ["string", "null"] },
          has_more: { type: "boolean" },
        },
      },
      DeleteFileResponse: {
        type: "object",
        required: ["id", "object", "deleted"],
        properties: { id: { type: "string" }, object: { type: "string", enum: ["file"] }, deleted: { type: "boolean" } },
      },
      ErrorResponse: {
        type: "object",
        required: ["error"],
        properties: {
          error: {
            type: "object",
            required: ["message", "type", "param", "code"],
            properties: {
              message: { type: "string" },
              type: { type: "string" },
              param: { type: ["string", "null"] },
              code: { type: ["string", "null"] },
            },
          },
        },
      },
    },
  },
};

// Vector stores, embeddings and models: the shapes are OpenAI's (see its spec for every
// field); ragd's extras are named in the descriptions.
function retrievalPaths() {
  const store = { name: "vector_store_id", in: "path", required: true, schema: { type: "string" } };
  const file = { name: "file_id", in: "path", required: true, schema: { type: "string" } };
  const batch = { name: "batch_id", in: "path", required: true, schema: { type: "string" } };
  const list = [
    { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 100, default: 20 } },
    { name: "order", in: "query", schema: { type: "string", enum: ["asc", "desc"], default: "desc" } },
    { name: "after", in: "query", schema: { type: "string" } },
    { name: "before", in: "query", schema: { type: "string" } },
  ];
  const filter = { name: "filter", in: "query", schema: { type: "string", enum: ["in_progress", "completed", "failed", "cancelled"] } };
  const obj = (description: string) => ({ "200": { description, content: json({ type: "object" }) }, ...errors(400, 401, 404, 429) });
  const body = (description: string) => ({ required: true, description, content: json({ type: "object" }) });
  return {
    "/v1/vector_stores": {
      post: { summary: "Create a vector store", operationId: "createVectorStore", requestBody: body("name, file_ids, expires_after, chunking_strategy, metadata"), responses: obj("The vector store") },
      get: { summary: "List vector stores (the project's knowledge base is always one of them)", operationId: "listVectorStores", parameters: list, responses: obj("A page of vector stores") },
    },
    "/v1/vector_stores/{vector_store_id}": {
      get: { summary: "Retrieve a vector store", operationId: "getVectorStore", parameters: [store], responses: obj("The vector store") },
      post: { summary: "Modify a vector store", operationId: "modifyVectorStore", parameters: [store], requestBody: body("name, expires_after, metadata"), responses: obj("The vector store") },
      delete: { summary: "Delete a vector store (its files stay)", operationId: "deleteVectorStore", parameters: [store], responses: obj("Deleted") },
    },
    "/v1/vector_stores/{vector_store_id}/search": {
      post: {
        summary: "Hybrid search (vectors + BM25)",
        description: "Each result also carries `location` (ragd extension): page(s), slide, sheet and rows, chapter, lines or time range. `ranking_options.hybrid_search` sets the weights.",
        operationId: "searchVectorStore",
        parameters: [store],
        requestBody: body("query, max_num_results, filters, ranking_options, rewrite_query"),
        responses: obj("vector_store.search_results.page"),
      },
    },
    "/v1/vector_stores/{vector_store_id}/files": {
      post: { summary: "Attach a file", operationId: "createVectorStoreFile", parameters: [store], requestBody: body("file_id, attributes, chunking_strategy"), responses: obj("The vector store file") },
      get: { summary: "List a store's files", operationId: "listVectorStoreFiles", parameters: [store, ...list, filter], responses: obj("A page of vector store files") },
    },
    "/v1/vector_stores/{vector_store_id}/files/{file_id}": {
      get: { summary: "Retrieve a vector store file", operationId: "getVectorStoreFile", parameters: [store, file], responses: obj("The vector store file") },
      post: { summary: "Update a file's attributes", operationId: "updateVectorStoreFileAttributes", parameters: [store, file], requestBody: body("attributes"), responses: obj("The vector store file") },
      delete: { summary: "Detach a file (the file itself stays)", operationId: "deleteVectorStoreFile", parameters: [store, file], responses: obj("Deleted") },
    },
    "/v1/vector_stores/{vector_store_id}/files/{file_id}/content": {
      get: { summary: "The parsed text of a file", operationId: "retrieveVectorStoreFileContent", parameters: [store, file], responses: obj("vector_store.file_content.page") },
    },
    "/v1/vector_stores/{vector_store_id}/file_batches": {
      post: { summary: "Attach several files", operationId: "createVectorStoreFileBatch", parameters: [store], requestBody: body("file_ids or files, attributes, chunking_strategy"), responses: obj("The batch") },
    },
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}": {
      get: { summary: "Retrieve a file batch", operationId: "getVectorStoreFileBatch", parameters: [store, batch], responses: obj("The batch") },
    },
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel": {
      post: { summary: "Cancel a file batch (files still in progress leave the store)", operationId: "cancelVectorStoreFileBatch", parameters: [store, batch], responses: obj("The batch") },
    },
    "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files": {
      get: { summary: "List a batch's files", operationId: "listFilesInVectorStoreBatch", parameters: [store, batch, ...list, filter], responses: obj("A page of vector store files") },
    },
    "/v1/embeddings": {
      post: { summary: "Embed text with the configured model (`default` is an alias)", operationId: "createEmbedding", requestBody: body("input, model, encoding_format"), responses: obj("A list of embeddings") },
    },
    "/v1/models": { get: { summary: "The embedding model this server serves", operationId: "listModels", responses: obj("A list of models") } },
    "/v1/models/{model}": {
      get: { summary: "Retrieve a model", operationId: "retrieveModel", parameters: [{ name: "model", in: "path", required: true, schema: { type: "string" } }], responses: obj("The model") },
    },
  };
}
