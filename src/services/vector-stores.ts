import { chunkingKey, chunkSizeOf, resolveChunking, type ChunkSize } from "../ingest/chunker";
import type { Chunking, FilesRepo, StoreFileRow, StoreFileStatus, StoreRow, StoresRepo } from "../storage/repos";
import { isFileBatchId, isFileId, isVectorStoreId, newFileBatchId, newVectorStoreId } from "../util/ids";
import { nowSeconds } from "../util/time";
import { entry, fail, notFound } from "../errors";
import { EMBEDDABLE, type IngestHooks } from "./files";
import { compileFilter, validateAttributes } from "./filters";
import { listPage } from "./pagination";
import { DEFAULT_EMBEDDING_WEIGHT, type SearchService } from "./search";

type Json = Record<string, unknown>;


export interface ListParams {
  limit: number;
  order: "asc" | "desc";
  after?: string;
  before?: string;
}

/** Vector stores, their files and file batches, and search: the rules; storage is SQL only. */
export class VectorStoresService {
  /** How every file is cut (`auto` clamped to what the model reads); other sizes are cut again per store. */
  private readonly auto: ChunkSize;
  private ingest: Pick<IngestHooks, "wake"> | null = null;

  constructor(
    private readonly stores: StoresRepo,
    private readonly files: FilesRepo,
    private readonly search: SearchService,
    private readonly modelMaxTokens: number,
    private readonly now: () => number = nowSeconds,
  ) {
    this.auto = resolveChunking({ type: "auto" }, modelMaxTokens);
  }

  /** Attaching with a chunking other than `auto` queues work: the pipeline hears of it at once. */
  attachIngest(hooks: Pick<IngestHooks, "wake">) {
    this.ingest = hooks;
  }

  // ---- stores

  async create(projectId: string, body: Json) {
    allowOnly(body, ["name", "file_ids", "expires_after", "chunking_strategy", "metadata"]);
    const fileIds = optionalIds(body.file_ids, "file_ids", 500);
    const chunking = this.chunking(body.chunking_strategy, "chunking_strategy");
    if (fileIds.length) await this.requireFiles(projectId, fileIds, "file_ids");
    const now = this.now();
    const row: StoreRow = {
      id: newVectorStoreId(),
      projectId,
      name: optionalString(body.name, "name", 256),
      isDefault: 0,
      createdAt: now,
      lastActiveAt: now,
      metadata: JSON.stringify(metadata(body.metadata)),
      expiresDays: expiresAfter(body.expires_after),
      chunking: chunking.json,
    };
    await this.stores.create(row, fileIds, "{}", chunking, Date.now());
    if (fileIds.length) this.ingest?.wake();
    return this.storeObject(row);
  }

  async list(projectId: string, p: ListParams) {
    const afterSeq = p.after !== undefined ? await this.storeCursor(projectId, p.after, "after") : undefined;
    const beforeSeq = p.before !== undefined ? await this.storeCursor(projectId, p.before, "before") : undefined;
    await this.stores.ensureDefault(projectId, this.now());
    const { rows, hasMore } = await this.stores.list(projectId, { afterSeq, beforeSeq, limit: p.limit, order: p.order });
    return listPage(await Promise.all(rows.map((r) => this.storeObject(r))), hasMore);
  }

  async get(projectId: string, id: string) {
    return this.storeObject(await this.store(projectId, id));
  }

  async update(projectId: string, id: string, body: Json) {
    allowOnly(body, ["name", "expires_after", "metadata"]);
    const row = await this.store(projectId, id);
    await this.stores.update(row.id, {
      name: body.name === undefined ? undefined : optionalString(body.name, "name", 256),
      metadata: body.metadata === undefined ? undefined : JSON.stringify(metadata(body.metadata)),
      expiresDays: body.expires_after === undefined ? undefined : expiresAfter(body.expires_after),
      lastActiveAt: this.now(),
    });
    return this.get(projectId, id);
  }

  async delete(projectId: string, id: string) {
    const row = await this.store(projectId, id);
    if (row.isDefault)
      throw fail("default_vector_store", `Vector store ${id} is this project's knowledge base, which every upload joins; it cannot be deleted. Delete or detach its files instead.`, "vector_store_id");
    await this.stores.remove(row.id);
    return { id: row.id, object: "vector_store.deleted" as const, deleted: true as const };
  }

  // ---- store files

  async attach(projectId: string, storeId: string, body: Json) {
    allowOnly(body, ["file_id", "attributes", "chunking_strategy"]);
    const store = await this.store(projectId, storeId);
    if (typeof body.file_id !== "string" || body.file_id === "") throw fail("missing_required_parameter", "file_id is required: the id of an uploaded file", "file_id");
    await this.requireFiles(projectId, [body.file_id], "file_id");
    const attributes = JSON.stringify(validateAttributes(body.attributes));
    const chunking = this.chunking(body.chunking_strategy ?? JSON.parse(store.chunking), "chunking_strategy");
    await this.stores.attach(store.id, [body.file_id], this.now(), () => attributes, chunking, null, Date.now());
    this.ingest?.wake();
    await this.stores.touch(store.id, this.now());
    return this.getFile(projectId, storeId, body.file_id);
  }

  async getFile(projectId: string, storeId: string, fileId: string) {
    const store = await this.store(projectId, storeId);
    const row = isFileId(fileId) ? await this.stores.getFile(store.id, fileId, this.now()) : null;
    if (!row) throw notFound("vector store file", fileId, "file_id");
    return this.storeFileObject(row);
  }

  async listFiles(projectId: string, storeId: string, p: ListParams & { filter?: StoreFileStatus; batchId?: string }) {
    const store = await this.store(projectId, storeId);
    if (p.batchId !== undefined) await this.batch(store.id, p.batchId);
    const afterSeq = p.after !== undefined ? await this.fileCursor(store.id, p.after, "after") : undefined;
    const beforeSeq = p.before !== undefined ? await this.fileCursor(store.id, p.before, "before") : undefined;
    const { rows, hasMore } = await this.stores.listFiles(store.id, { afterSeq, beforeSeq, limit: p.limit, order: p.order, status: p.filter, batchId: p.batchId }, this.now());
    return listPage(rows.map((r) => this.storeFileObject(r)), hasMore);
  }

  async updateFile(projectId: string, storeId: string, fileId: string, body: Json) {
    allowOnly(body, ["attributes"]);
    const store = await this.store(projectId, storeId);
    if (body.attributes === undefined) throw fail("missing_required_parameter", "attributes is required", "attributes");
    const attributes = JSON.stringify(validateAttributes(body.attributes));
    if (!isFileId(fileId) || !(await this.stores.updateAttributes(store.id, fileId, attributes))) throw notFound("vector store file", fileId, "file_id");
    return this.getFile(projectId, storeId, fileId);
  }

  async detach(projectId: string, storeId: string, fileId: string) {
    const store = await this.store(projectId, storeId);
    if (!isFileId(fileId) || !(await this.stores.detach(store.id, fileId))) throw notFound("vector store file", fileId, "file_id");
    return { id: fileId, object: "vector_store.file.deleted" as const, deleted: true as const };
  }

  async fileContent(projectId: string, storeId: string, fileId: string) {
    const file = await this.getFile(projectId, storeId, fileId);
    const text = file.status === "completed" ? await this.stores.documentText(fileId) : null;
    return {
      object: "vector_store.file_content.page" as const,
      data: text === null ? [] : [{ type: "text" as const, text }],
      has_more: false,
      next_page: null,
    };
  }

  // ---- batches

  async createBatch(projectId: string, storeId: string, body: Json) {
    allowOnly(body, ["file_ids", "files", "attributes", "chunking_strategy"]);
    const store = await this.store(projectId, storeId);
    const sharedAttributes = validateAttributes(body.attributes);
    const perFile = new Map<string, string>();
    let ids: string[];
    if (body.files !== undefined) {
      if (body.file_ids !== undefined) throw fail("invalid_value", "Pass either file_ids or files, not both", "files");
      if (!Array.isArray(body.files) || body.files.length === 0 || body.files.length > 2000) throw fail("invalid_value", "files must be a list of 1 to 2000 {file_id, attributes}", "files");
      ids = body.files.map((f, i) => {
        if (typeof f !== "object" || f === null || typeof (f as Json).file_id !== "string") throw fail("invalid_value", `files[${i}].file_id is required`, "files");
        const o = f as Json;
        perFile.set(o.file_id as string, JSON.stringify(validateAttributes(o.attributes ?? sharedAttributes, `files[${i}].attributes`)));
        return o.file_id as string;
      });
    } else {
      ids = optionalIds(body.file_ids, "file_ids", 2000);
      if (ids.length === 0) throw fail("missing_required_parameter", "file_ids must list at least one file id", "file_ids");
    }
    ids = [...new Set(ids)];
    await this.requireFiles(projectId, ids, body.files !== undefined ? "files" : "file_ids");
    const chunking = this.chunking(body.chunking_strategy ?? JSON.parse(store.chunking), "chunking_strategy");
    const batch = { id: newFileBatchId() };
    const shared = JSON.stringify(sharedAttributes);
    await this.stores.attach(store.id, ids, this.now(), (id) => perFile.get(id) ?? shared, chunking, batch, Date.now());
    this.ingest?.wake();
    return this.getBatch(projectId, storeId, batch.id);
  }

  async getBatch(projectId: string, storeId: string, batchId: string) {
    const store = await this.store(projectId, storeId);
    const b = await this.batch(store.id, batchId);
    const counts = await this.stores.fileCounts(store.id, this.now(), b.id);
    const status = b.cancelled ? "cancelled" : counts.in_progress > 0 ? "in_progress" : counts.failed > 0 && counts.completed === 0 ? "failed" : "completed";
    return { id: b.id, object: "vector_store.files_batch" as const, created_at: b.createdAt, vector_store_id: store.id, status, file_counts: counts };
  }

  async cancelBatch(projectId: string, storeId: string, batchId: string) {
    const store = await this.store(projectId, storeId);
    const b = await this.batch(store.id, batchId);
    await this.stores.cancelBatch(store.id, b.id);
    return this.getBatch(projectId, storeId, batchId);
  }

  // ---- search

  async searchStore(projectId: string, storeId: string, body: Json) {
    allowOnly(body, ["query", "max_num_results", "filters", "ranking_options", "rewrite_query"]);
    const store = await this.store(projectId, storeId);
    if (isExpired(store, this.now())) throw fail("vector_store_expired", `Vector store ${store.id} has expired; update its expires_after or create a new one.`, "vector_store_id");
    const queries = typeof body.query === "string" ? [body.query] : body.query;
    if (!Array.isArray(queries) || queries.length === 0 || queries.length > 10 || !queries.every((q) => typeof q === "string" && q.trim() !== "" && q.length <= 4096))
      throw fail("invalid_value", "query must be a non-empty string or a list of 1 to 10 non-empty strings (at most 4096 characters each)", "query");
    const max = body.max_num_results ?? 10;
    if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > 50)
      throw fail("invalid_value", `max_num_results must be an integer between 1 and 50, got ${JSON.stringify(max)}`, "max_num_results");
    if (body.rewrite_query !== undefined && typeof body.rewrite_query !== "boolean") throw fail("invalid_value", "rewrite_query must be a boolean", "rewrite_query");
    const { scoreThreshold, embeddingWeight } = rankingOptions(body.ranking_options);
    const filter = compileFilter(body.filters);
    const hits = await this.search.search(store.id, queries as string[], { maxResults: max, filter, scoreThreshold, embeddingWeight, now: this.now() });
    await this.stores.touch(store.id, this.now());
    return {
      object: "vector_store.search_results.page" as const,
      search_query: queries,
      data: hits.map((h) => ({
        file_id: h.fileId,
        filename: h.filename,
        score: Math.round(h.score * 1e6) / 1e6,
        attributes: JSON.parse(h.attributes),
        content: [{ type: "text" as const, text: h.text }],
        // where the chunk came from: page(s), slide, sheet and rows, chapter, time range
        location: JSON.parse(h.location),
      })),
      has_more: false,
      next_page: null,
    };
  }

  // ---- helpers

  private async store(projectId: string, id: string) {
    const row = isVectorStoreId(id) ? await this.stores.get(projectId, id) : null;
    if (!row) throw notFound("vector store", id, "vector_store_id");
    return row;
  }

  private async batch(storeId: string, id: string) {
    const b = isFileBatchId(id) ? await this.stores.getBatch(storeId, id) : null;
    if (!b) throw notFound("file batch", id, "batch_id");
    return b;
  }

  private async storeCursor(projectId: string, id: string, param: string) {
    const seq = isVectorStoreId(id) ? await this.stores.seq(projectId, id) : null;
    if (seq === null) throw fail("invalid_cursor", `No vector store with id '${id}' to list ${param}.`, param);
    return seq;
  }

  private async fileCursor(storeId: string, id: string, param: string) {
    const seq = isFileId(id) ? await this.stores.fileSeq(storeId, id) : null;
    if (seq === null) throw fail("invalid_cursor", `No file with id '${id}' in this vector store to list ${param}.`, param);
    return seq;
  }

  private async requireFiles(projectId: string, ids: string[], param: string) {
    const now = this.now();
    for (const id of ids) {
      const f = isFileId(id) ? await this.files.get(projectId, id, now) : null;
      if (!f) throw notFound("File object", id, param);
      if (!EMBEDDABLE.has(f.purpose))
        throw fail("invalid_file", `File ${id} was uploaded with purpose '${f.purpose}', which is not indexed; upload it with purpose 'assistants', 'knowledge_base' or 'user_data'.`, param);
    }
  }

  /** A requested chunking, validated, with the key of the size it cuts at (ingest/chunker.ts). */
  private chunking(value: unknown, param: string): Chunking {
    if (value === undefined || value === null) return { json: `{"type":"auto"}`, cut: chunkingKey(this.auto, this.auto) };
    const o = value as Json;
    if (typeof o !== "object" || Array.isArray(o)) throw fail("invalid_value", `${param} must be {"type":"auto"} or {"type":"static","static":{...}}`, param);
    if (o.type === "auto") return this.chunking(undefined, param);
    if (o.type !== "static" || typeof o.static !== "object" || o.static === null)
      throw fail("invalid_value", `${param}.type must be "auto" or "static" (with a "static" object)`, param);
    const s = o.static as Json;
    const max = s.max_chunk_size_tokens;
    const overlap = s.chunk_overlap_tokens;
    if (typeof max !== "number" || !Number.isInteger(max) || max < 100 || max > 4096)
      throw fail("invalid_value", `${param}.static.max_chunk_size_tokens must be an integer between 100 and 4096`, param);
    if (typeof overlap !== "number" || !Number.isInteger(overlap) || overlap < 0 || overlap > max / 2)
      throw fail("invalid_value", `${param}.static.chunk_overlap_tokens must be an integer from 0 to half of max_chunk_size_tokens`, param);
    const strategy = { type: "static" as const, static: { max_chunk_size_tokens: max, chunk_overlap_tokens: overlap } };
    return { json: JSON.stringify(strategy), cut: chunkingKey(resolveChunking(strategy, this.modelMaxTokens), this.auto) };
  }

  private storeFileObject(r: StoreFileRow) {
    // What the chunks were actually cut with (a size past the model's window is clamped).
    const size = chunkSizeOf(r.cut, this.auto);
    return {
      id: r.fileId,
      object: "vector_store.file" as const,
      usage_bytes: r.usageBytes,
      created_at: r.createdAt,
      vector_store_id: r.storeId,
      status: r.status,
      last_error: r.status === "failed" ? { code: entry(r.errorCode ?? "server_error").lastError ?? "server_error", message: r.error ?? "processing failed" } : null,
      chunking_strategy: { type: "static" as const, static: { max_chunk_size_tokens: size.max, chunk_overlap_tokens: size.overlap } },
      attributes: JSON.parse(r.attributes),
    };
  }

  private async storeObject(row: StoreRow) {
    const now = this.now();
    const [counts, usage] = await Promise.all([this.stores.fileCounts(row.id, now), this.stores.usageBytes(row.id, now)]);
    return {
      id: row.id,
      object: "vector_store" as const,
      created_at: row.createdAt,
      // The spec makes it a required string: typed clients (Go, Java, .NET) fail on null.
      name: row.name ?? "",
      usage_bytes: usage,
      file_counts: counts,
      status: isExpired(row, now) ? ("expired" as const) : counts.in_progress > 0 ? ("in_progress" as const) : ("completed" as const),
      expires_after: row.expiresDays === null ? null : { anchor: "last_active_at" as const, days: row.expiresDays },
      expires_at: row.expiresDays === null ? null : row.lastActiveAt + row.expiresDays * 86400,
      last_active_at: row.lastActiveAt,
      metadata: JSON.parse(row.metadata),
    };
  }
}

const isExpired = (row: StoreRow, now: number) => row.expiresDays !== null && row.lastActiveAt + row.expiresDays * 86400 <= now;

function allowOnly(body: Json, keys: string[]) {
  for (const k of Object.keys(body)) if (!keys.includes(k)) throw fail("unknown_parameter", `Unrecognized request argument supplied: ${k}`, k);
}

function optionalString(v: unknown, param: string, max: number): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string" || v.length > max) throw fail("invalid_value", `${param} must be a string of at most ${max} characters`, param);
  return v;
}

function optionalIds(v: unknown, param: string, max: number): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > max || !v.every((x) => typeof x === "string"))
    throw fail("invalid_value", `${param} must be a list of at most ${max} file ids`, param);
  return [...new Set(v as string[])];
}

function metadata(v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw fail("invalid_value", "metadata must be an object of string values", "metadata");
  const entries = Object.entries(v as Json);
  if (entries.length > 16) throw fail("invalid_value", "metadata holds at most 16 keys", "metadata");
  for (const [k, val] of entries)
    if (k.length > 64 || typeof val !== "string" || val.length > 512)
      throw fail("invalid_value", `metadata.${k.slice(0, 64)}: keys are at most 64 characters and values strings of at most 512`, "metadata");
  return v as Record<string, string>;
}

function expiresAfter(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  const o = v as Json;
  if (typeof o !== "object" || o.anchor !== "last_active_at" || typeof o.days !== "number" || !Number.isInteger(o.days) || o.days < 1 || o.days > 365)
    throw fail("invalid_value", `expires_after must be {"anchor":"last_active_at","days":1..365}`, "expires_after");
  return o.days;
}

function rankingOptions(v: unknown): { scoreThreshold: number; embeddingWeight: number } {
  if (v === undefined || v === null) return { scoreThreshold: 0, embeddingWeight: DEFAULT_EMBEDDING_WEIGHT };
  if (typeof v !== "object" || Array.isArray(v)) throw fail("invalid_value", "ranking_options must be an object", "ranking_options");
  const o = v as Json;
  allowOnly(o, ["ranker", "score_threshold", "hybrid_search"]);
  if (o.ranker !== undefined && !["none", "auto", "default-2024-11-15"].includes(o.ranker as string))
    throw fail("invalid_value", `ranking_options.ranker must be one of none, auto, default-2024-11-15`, "ranking_options.ranker");
  const t = o.score_threshold ?? 0;
  if (typeof t !== "number" || !(t >= 0 && t <= 1)) throw fail("invalid_value", "ranking_options.score_threshold must be a number from 0 to 1", "ranking_options.score_threshold");
  let embeddingWeight = DEFAULT_EMBEDDING_WEIGHT;
  if (o.hybrid_search !== undefined) {
    const h = o.hybrid_search as Json;
    const ew = h?.embedding_weight;
    const tw = h?.text_weight;
    if (typeof ew !== "number" || typeof tw !== "number" || ew < 0 || tw < 0 || ew + tw <= 0)
      throw fail("invalid_value", "ranking_options.hybrid_search needs non-negative embedding_weight and text_weight, not both 0", "ranking_options.hybrid_search");
    embeddingWeight = ew / (ew + tw);
  }
  return { scoreThreshold: t, embeddingWeight };
}
