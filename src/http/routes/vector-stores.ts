import { Elysia } from "elysia";
import type { HttpContext } from "../context";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { pollWhile } from "../poll";
import {
  BatchParams,
  CreateVectorStoreFileBatchRequest,
  CreateVectorStoreFileRequest,
  CreateVectorStoreRequest,
  DeleteVectorStoreFileResponse,
  DeleteVectorStoreResponse,
  ListFilesQuery,
  ListQuery,
  ListVectorStoreFilesResponse,
  ListVectorStoresResponse,
  StoreFileParams,
  StoreParams,
  UpdateVectorStoreFileAttributesRequest,
  UpdateVectorStoreRequest,
  VectorStoreFileBatchObject,
  VectorStoreFileContentResponse,
  VectorStoreFileObject,
  VectorStoreObject,
  VectorStoreSearchRequest,
  VectorStoreSearchResultsPage,
} from "../schemas/vector-stores";

interface Paging {
  limit?: number;
  order?: "asc" | "desc";
  after?: string;
  before?: string;
}
const paging = (q: Paging) => ({ limit: q.limit ?? 20, order: q.order ?? "desc", after: q.after, before: q.before });

export function vectorStoreRoutes(ctx: HttpContext) {
  const vs = ctx.vectorStores;
  return new Elysia({ prefix: "/v1/vector_stores" })
    .use(contract(ctx))
    .post("/", ({ principal, body }) => vs.create(principal.projectId, body), route({
      operationId: "createVectorStore", summary: "Create a vector store", auth: "requests", body: CreateVectorStoreRequest, response: VectorStoreObject, errors: [400, 404],
    }))
    .get("/", ({ principal, query }) => vs.list(principal.projectId, paging(query)), route({
      operationId: "listVectorStores", summary: "List vector stores (the project's knowledge base is always one of them)", auth: "requests", query: ListQuery, response: ListVectorStoresResponse, errors: [400],
    }))
    .get("/:vector_store_id", async ({ principal, params, set }) => {
      const s = await vs.get(principal.projectId, params.vector_store_id);
      pollWhile(set, s.status === "in_progress");
      return s;
    }, route({ operationId: "getVectorStore", summary: "Retrieve a vector store", auth: "requests", params: StoreParams, response: VectorStoreObject, errors: [404] }))
    .post("/:vector_store_id", ({ principal, params, body }) => vs.update(principal.projectId, params.vector_store_id, body), route({
      operationId: "modifyVectorStore", summary: "Modify a vector store", auth: "requests", params: StoreParams, body: UpdateVectorStoreRequest, response: VectorStoreObject, errors: [400, 404],
    }))
    .delete("/:vector_store_id", ({ principal, params }) => vs.delete(principal.projectId, params.vector_store_id), route({
      operationId: "deleteVectorStore", summary: "Delete a vector store (its files stay)", auth: "requests", params: StoreParams, response: DeleteVectorStoreResponse, errors: [400, 404],
    }))
    .post("/:vector_store_id/search", ({ principal, params, body }) => vs.searchStore(principal.projectId, params.vector_store_id, body), route({
      operationId: "searchVectorStore",
      summary: "Hybrid search (vectors + BM25)",
      description: "Each result also carries `location` (ragd extension). `ranking_options.hybrid_search` sets the weights.",
      auth: "requests", params: StoreParams, body: VectorStoreSearchRequest, response: VectorStoreSearchResultsPage, errors: [400, 404, 503],
    }))
    .post("/:vector_store_id/files", ({ principal, params, body }) => vs.attach(principal.projectId, params.vector_store_id, body), route({
      operationId: "createVectorStoreFile", summary: "Attach a file", auth: "requests", params: StoreParams, body: CreateVectorStoreFileRequest, response: VectorStoreFileObject, errors: [400, 404],
    }))
    .get("/:vector_store_id/files", ({ principal, params, query }) => vs.listFiles(principal.projectId, params.vector_store_id, { ...paging(query), filter: query.filter }), route({
      operationId: "listVectorStoreFiles", summary: "List a store's files", auth: "requests", params: StoreParams, query: ListFilesQuery, response: ListVectorStoreFilesResponse, errors: [400, 404],
    }))
    .get("/:vector_store_id/files/:file_id", async ({ principal, params, set }) => {
      const f = await vs.getFile(principal.projectId, params.vector_store_id, params.file_id);
      pollWhile(set, f.status === "in_progress");
      return f;
    }, route({ operationId: "getVectorStoreFile", summary: "Retrieve a vector store file", auth: "requests", params: StoreFileParams, response: VectorStoreFileObject, errors: [404] }))
    .post("/:vector_store_id/files/:file_id", ({ principal, params, body }) => vs.updateFile(principal.projectId, params.vector_store_id, params.file_id, body), route({
      operationId: "updateVectorStoreFileAttributes", summary: "Update a file's attributes", auth: "requests", params: StoreFileParams, body: UpdateVectorStoreFileAttributesRequest, response: VectorStoreFileObject, errors: [400, 404],
    }))
    .delete("/:vector_store_id/files/:file_id", ({ principal, params }) => vs.detach(principal.projectId, params.vector_store_id, params.file_id), route({
      operationId: "deleteVectorStoreFile", summary: "Detach a file (the file itself stays)", auth: "requests", params: StoreFileParams, response: DeleteVectorStoreFileResponse, errors: [404],
    }))
    .get("/:vector_store_id/files/:file_id/content", ({ principal, params }) => vs.fileContent(principal.projectId, params.vector_store_id, params.file_id), route({
      operationId: "retrieveVectorStoreFileContent", summary: "The parsed text of a file", auth: "requests", params: StoreFileParams, response: VectorStoreFileContentResponse, errors: [404],
    }))
    .post("/:vector_store_id/file_batches", ({ principal, params, body }) => vs.createBatch(principal.projectId, params.vector_store_id, body), route({
      operationId: "createVectorStoreFileBatch", summary: "Attach several files", auth: "requests", params: StoreParams, body: CreateVectorStoreFileBatchRequest, response: VectorStoreFileBatchObject, errors: [400, 404],
    }))
    .get("/:vector_store_id/file_batches/:batch_id", async ({ principal, params, set }) => {
      const b = await vs.getBatch(principal.projectId, params.vector_store_id, params.batch_id);
      pollWhile(set, b.status === "in_progress");
      return b;
    }, route({ operationId: "getVectorStoreFileBatch", summary: "Retrieve a file batch", auth: "requests", params: BatchParams, response: VectorStoreFileBatchObject, errors: [404] }))
    .post("/:vector_store_id/file_batches/:batch_id/cancel", ({ principal, params }) => vs.cancelBatch(principal.projectId, params.vector_store_id, params.batch_id), route({
      operationId: "cancelVectorStoreFileBatch", summary: "Cancel a file batch (files still in progress leave the store)", auth: "requests", params: BatchParams, response: VectorStoreFileBatchObject, errors: [404],
    }))
    .get("/:vector_store_id/file_batches/:batch_id/files", async ({ principal, params, query }) =>
      vs.listFiles(principal.projectId, params.vector_store_id, { ...paging(query), filter: query.filter, batchId: params.batch_id }), route({
      operationId: "listFilesInVectorStoreBatch", summary: "List a batch's files", auth: "requests", params: BatchParams, query: ListFilesQuery, response: ListVectorStoreFilesResponse, errors: [400, 404],
    }));
}
