import { chunkingKey, chunkSizeOf, resolveChunking, type ChunkSize } from "../ingest/chunker";
import type { Chunking, FilesRepo, StoreFileRow, StoreFileStatus, StoreRow, StoresRepo } from "../storage/repos";
import { isFileBatchId, isFileId, isVectorStoreId, newFileBatchId, newVectorStoreId } from "../util/ids";
import { nowSeconds } from "../util/time";
import { entry, fail, notFound } from "../errors";
import { EMBEDDABLE, type IngestHooks } from "./files";
import { missingReference } from "../storage/open";
import { parseFilter } from "./filters";
import { listPage } from "./pagination";
import { DEFAULT_EMBEDDING_WEIGHT, type SearchHit, type SearchService } from "./search";
import type { Location } from "../ingest/types";

// What the routes hand over, already checked against their schemas (http/schemas/); the
// rules that a schema cannot state are checked here.
type Attributes = Record<string, string | number | boolean> | null;
export type ChunkingInput = { type: "auto" } | { type: "static"; static: { max_chunk_size_tokens: number; chunk_overlap_tokens: number } };
interface ExpiresAfter {
  anchor: "last_active_at";
  days: number;
}
export interface CreateStoreInput {
  file_ids?: string[];
  name?: string;
  expires_after?: ExpiresAfter;
  chunking_strategy?: ChunkingInput;
  metadata?: Record<string, string> | null;
}
export interface UpdateStoreInput {
  name?: string | null;
  expires_after?: ExpiresAfter | null;
  metadata?: Record<string, string> | null;
}
export interface AttachInput {
  file_id: string;
  chunking_strategy?: ChunkingInput;
  attributes?: Attributes;
}
export interface BatchInput {
  file_ids?: string[];
  files?: AttachInput[];
  chunking_strategy?: ChunkingInput;
  attributes?: Attributes;
}
export interface SearchInput {
  query: string | string[];
  max_num_results?: number;
  filters?: unknown;
  ranking_options?: { ranker?: string; score_threshold?: number; hybrid_search?: { embedding_weight: number; text_weight: number } };
  rewrite_query?: boolean;
}

/** How stale a store's last_active_at may get before a search writes it again. */
const TOUCH_EVERY_S = 60;

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

  async create(projectId: string, body: CreateStoreInput) {
    const fileIds = [...new Set(body.file_ids ?? [])];
    const chunking = this.chunking(body.chunking_strategy);
    if (fileIds.length) await this.requireFiles(projectId, fileIds, "file_ids");
    const now = this.now();
    const row: StoreRow = {
      id: newVectorStoreId(),
      projectId,
      name: body.name ?? null,
      isDefault: 0,
      createdAt: now,
      lastActiveAt: now,
      metadata: JSON.stringify(body.metadata ?? {}),
      expiresDays: body.expires_after?.days ?? null,
      chunking: chunking.json,
    };
    await this.deletedMeanwhile(() => this.stores.create(row, fileIds, "{}", chunking, Date.now()), projectId, null, fileIds, "file_ids");
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

  async update(projectId: string, id: string, body: UpdateStoreInput) {
    const row = await this.store(projectId, id);
    const now = this.now();
    await this.stores.update(row.id, {
      name: body.name,
      metadata: body.metadata === undefined ? undefined : JSON.stringify(body.metadata ?? {}),
      expiresDays: body.expires_after === undefined ? undefined : (body.expires_after?.days ?? null),
      // (as markActive: a new name or metadata does not bring an expired store back; a new
      // expires_after does)
      lastActiveAt: body.expires_after !== undefined || !isExpired(row, now) ? now : undefined,
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

  async attach(projectId: string, storeId: string, body: AttachInput) {
    const store = await this.store(projectId, storeId);
    await this.requireFiles(projectId, [body.file_id], "file_id");
    // attached again without attributes, a file keeps those it has
    const attributes = body.attributes === undefined ? null : JSON.stringify(body.attributes ?? {});
    // A store's own strategy is its files' default (the spec's is auto): a store made to cut
    // its files one way keeps doing so, and re-attaching them does not re-cut them.
    const chunking = this.chunking(body.chunking_strategy ?? JSON.parse(store.chunking));
    const now = this.now();
    await this.deletedMeanwhile(() => this.stores.attach(store.id, [{ id: body.file_id, attributes }], now, chunking, null, Date.now()), projectId, storeId, [body.file_id], "file_id");
    this.ingest?.wake();
    await this.markActive(store);
    // Read back, the membership may be gone already: a detach or delete sent at the same time,
    // committed just after. The attach did happen, so it answers with what it wrote, as if the
    // other request had come after it (a 404 would say it never did).
    const row = await this.stores.getFile(store.id, body.file_id, this.now());
    return this.storeFileObject(
      row ?? { storeId: store.id, fileId: body.file_id, createdAt: now, attributes: attributes ?? "{}", chunking: chunking.json, cut: chunking.cut, batchId: null, status: "in_progress", errorCode: null, error: null, usageBytes: 0 },
    );
  }

  /**
   * A write naming files (and a store) that were there when checked: a delete committed since
   * then makes its insert fail on the foreign key. The delete came first, so the answer is the
   * 404 a request after it gets.
   */
  private async deletedMeanwhile<T>(write: () => Promise<T>, projectId: string, storeId: string | null, fileIds: string[], param: string): Promise<T> {
    try {
      return await write();
    } catch (e) {
      if (!missingReference(e)) throw e;
      if (storeId !== null) await this.store(projectId, storeId);
      await this.requireFiles(projectId, fileIds, param);
      throw e;
    }
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

  async updateFile(projectId: string, storeId: string, fileId: string, body: { attributes: Attributes }) {
    const store = await this.store(projectId, storeId);
    const attributes = JSON.stringify(body.attributes ?? {});
    if (!isFileId(fileId) || !(await this.stores.updateAttributes(store.id, fileId, attributes))) throw notFound("vector store file", fileId, "file_id");
    await this.markActive(store);
    return this.getFile(projectId, storeId, fileId);
  }

  async detach(projectId: string, storeId: string, fileId: string) {
    const store = await this.store(projectId, storeId);
    if (!isFileId(fileId) || !(await this.stores.detach(store.id, fileId))) throw notFound("vector store file", fileId, "file_id");
    await this.markActive(store);
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

  async createBatch(projectId: string, storeId: string, body: BatchInput) {
    const store = await this.store(projectId, storeId);
    if (body.files !== undefined && body.file_ids !== undefined) throw fail("invalid_value", "Pass either file_ids or files, not both.", "files");
    if (body.files === undefined && body.file_ids === undefined) throw fail("missing_required_parameter", "file_ids (or files) is required: the ids of uploaded files", "file_ids");
    const storeDefault = JSON.parse(store.chunking) as ChunkingInput;
    // With `files`, each file carries its own attributes and chunking, and the batch-wide ones
    // are ignored (as OpenAI documents); a file named twice takes its last entry.
    const members = new Map<string, { id: string; attributes: string | null; chunking?: Chunking }>();
    const attributesOf = (a: unknown) => (a === undefined ? null : JSON.stringify(a ?? {}));
    if (body.files)
      body.files.forEach((f, i) =>
        members.set(f.file_id, { id: f.file_id, attributes: attributesOf(f.attributes), chunking: this.chunking(f.chunking_strategy ?? storeDefault, `files[${i}].chunking_strategy`) }),
      );
    else for (const id of body.file_ids!) members.set(id, { id, attributes: attributesOf(body.attributes) });
    const ids = [...members.keys()];
    await this.requireFiles(projectId, ids, body.files !== undefined ? "files" : "file_ids");
    const chunking = this.chunking(body.files ? storeDefault : (body.chunking_strategy ?? storeDefault));
    const batch = { id: newFileBatchId() };
    await this.deletedMeanwhile(() => this.stores.attach(store.id, [...members.values()], this.now(), chunking, batch, Date.now()), projectId, storeId, ids, body.files !== undefined ? "files" : "file_ids");
    this.ingest?.wake();
    await this.markActive(store);
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
    // (a batch whose files have all ended stays as it ended: StoresRepo.cancelBatch)
    await this.stores.cancelBatch(store.id, b.id);
    return this.getBatch(projectId, storeId, batchId);
  }

  // ---- search

  async searchStore(projectId: string, storeId: string, body: SearchInput) {
    const queries = typeof body.query === "string" ? [body.query] : body.query;
    if (queries.some((q) => q.trim() === "")) throw fail("invalid_value", "query must not be blank: send the words to search for", "query");
    const hits = await this.searchStores(projectId, [storeId], queries, body, "vector_store_id");
    return {
      object: "vector_store.search_results.page" as const,
      search_query: queries,
      data: hits.map((h) => ({
        file_id: h.fileId,
        filename: h.filename,
        score: h.score,
        attributes: h.attributes,
        content: [{ type: "text" as const, text: h.text }],
        // where the chunk came from: page(s), slide, sheet and rows, chapter, time range
        location: h.location,
      })),
      has_more: false,
      next_page: null,
    };
  }

  /**
   * The best passages across stores of the project (the file_search tool, grounded chat):
   * each store searched as its own search would be, the hits merged by score, a chunk that
   * two stores share counted once. Another project's store is a 404 naming `param`.
   */
  async searchStores(projectId: string, storeIds: string[], queries: string[], o: Omit<SearchInput, "query">, param = "vector_store_ids") {
    const now = this.now();
    const stores = await this.searchable(projectId, storeIds, param);
    const max = o.max_num_results ?? 10;
    const { scoreThreshold, embeddingWeight } = rankingOptions(o.ranking_options);
    const filter = parseFilter(o.filters);
    const merged = new Map<number, SearchHit>();
    for (const store of stores) {
      for (const h of await this.search.search(store.id, queries, { projectId, maxResults: max, filter, scoreThreshold, embeddingWeight, now }))
        if (!((merged.get(h.id)?.score ?? -1) >= h.score)) merged.set(h.id, h);
      // Activity counts in days: a write (an fsync) per search would only add latency.
      if (now - store.lastActiveAt >= TOUCH_EVERY_S) await this.stores.touch(store.id, now);
    }
    return [...merged.values()]
      .sort((a, b) => b.score - a.score || a.id - b.id)
      .slice(0, max)
      .map((h) => ({
        fileId: h.fileId,
        filename: h.filename,
        score: Math.round(h.score * 1e6) / 1e6,
        attributes: JSON.parse(h.attributes) as Record<string, string | number | boolean>,
        text: h.text,
        location: JSON.parse(h.location) as Location,
      }));
  }

  /** The stores, each of this project and not expired (else a 404 or 400 naming `param`). */
  async searchable(projectId: string, storeIds: string[], param: string): Promise<StoreRow[]> {
    const stores: StoreRow[] = [];
    for (const id of new Set(storeIds)) {
      const store = await this.store(projectId, id, param);
      if (isExpired(store, this.now())) throw fail("vector_store_expired", `Vector store ${store.id} has expired; update its expires_after or create a new one.`, param);
      stores.push(store);
    }
    return stores;
  }

  /** The project's knowledge base (grounded chat without named stores). */
  defaultStore(projectId: string) {
    return this.stores.ensureDefault(projectId, this.now());
  }

  // ---- helpers

  /**
   * A write to a store's files makes it active (its expiry counts from now). An expired store
   * stays expired: a cleanup must not bring it back; updating its expires_after does.
   * (A store deleted meanwhile has no row to touch: nothing happens.)
   */
  private async markActive(store: StoreRow) {
    const now = this.now();
    if (!isExpired(store, now)) await this.stores.touch(store.id, now);
  }

  private async store(projectId: string, id: string, param = "vector_store_id") {
    const row = isVectorStoreId(id) ? await this.stores.get(projectId, id) : null;
    if (!row) throw notFound("vector store", id, param);
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

  /** A requested chunking with the key of the cut it makes (ingest/chunker.ts). */
  private chunking(value: ChunkingInput | undefined | null, param = "chunking_strategy"): Chunking {
    if (!value || value.type === "auto") return { json: `{"type":"auto"}`, cut: chunkingKey(this.auto, this.auto) };
    const { max_chunk_size_tokens: max, chunk_overlap_tokens: overlap } = value.static;
    if (overlap > max / 2)
      throw fail("invalid_value", `chunking_strategy.static.chunk_overlap_tokens must be at most half of max_chunk_size_tokens (${Math.floor(max / 2)}), got ${overlap}`, param);
    return { json: JSON.stringify(value), cut: chunkingKey(resolveChunking(value, this.modelMaxTokens), this.auto) };
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
      // optional in the spec, not nullable: absent when the store does not expire
      ...(row.expiresDays === null ? {} : { expires_after: { anchor: "last_active_at" as const, days: row.expiresDays } }),
      expires_at: row.expiresDays === null ? null : row.lastActiveAt + row.expiresDays * 86400,
      last_active_at: row.lastActiveAt,
      metadata: JSON.parse(row.metadata),
    };
  }
}

const isExpired = (row: StoreRow, now: number) => row.expiresDays !== null && row.lastActiveAt + row.expiresDays * 86400 <= now;

function rankingOptions(o: SearchInput["ranking_options"]): { scoreThreshold: number; embeddingWeight: number } {
  let embeddingWeight = DEFAULT_EMBEDDING_WEIGHT;
  const h = o?.hybrid_search;
  if (h) {
    if (h.embedding_weight + h.text_weight <= 0)
      throw fail("invalid_value", "ranking_options.hybrid_search: embedding_weight and text_weight cannot both be 0", "ranking_options.hybrid_search");
    embeddingWeight = h.embedding_weight / (h.embedding_weight + h.text_weight);
  }
  return { scoreThreshold: o?.score_threshold ?? 0, embeddingWeight };
}
