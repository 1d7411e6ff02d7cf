import { existsSync, readdirSync } from "node:fs";
import { waitAtMost } from "../util/time";
import { join } from "node:path";
import type { EmbeddingProvider } from "../embed/provider";
import type { ChunkHit, ChunksRepo, IngestionRepo, Scored, AttributeFilter } from "../storage/repos";
import { encodeVector, dotEncoded } from "../storage/vector-codec";
import { discardIndex, type VectorIndex } from "../storage/vectors";
import { VectorIndexThread, VectorIndexUnavailable } from "../storage/vector-thread";
import { RagdError } from "../errors";
import { coalesced } from "../util/coalesce";
import { log } from "../util/log";
import { metrics } from "../metrics";
import { embedOrUnavailable } from "./embeddings";
import { KeywordSearch } from "../search/keyword-search";
import { visibleByPlace } from "../search/chunk-places";
import { idRangesOf } from "../search/keyword-index";
import { ExactVectors, idsIn } from "../search/exact-vectors";

/**
 * Hybrid ranking: both lists are min-max normalised over the candidates and summed with
 * these weights. Tuned on SciFact's train queries (bench/retrieval.ts): with the bundled
 * model, dense retrieval alone is far below BM25 and reciprocal-rank fusion falls below
 * BM25 too, so the default leans on keywords.
 */
export const DEFAULT_EMBEDDING_WEIGHT = 0.4;
// Up to this many vectors in all, exact search is as fast as HNSW and exact.
const EXACT_LIMIT = 2_000;
// A store or filter seeing up to this many chunks is searched exactly, over its vectors held
// in memory (search/exact-vectors.ts): about 2 ms at 100,000 (int8-dot.c, one core), where
// the graph, which spans every store, would be asked for many times the results. At most
// half of what the bound below holds, so two such stores stay held (a model of many
// dimensions lowers it).
const EXACT_IN_MEMORY = 100_000;
// What those vectors may take (524 bytes each at 512 dimensions: about 256,000).
const EXACT_MEMORY_BYTES = 128 * 2 ** 20;
// Stores (and filters) whose chunks were last counted, by how many there were.
const STORE_SIZES = 4096;
const CATCH_UP_BATCH = 2_000;
// Before the server serves (nobody searches): fewer, larger inserts, each spread over every core.
const START_BATCH = 10_000;
// How long a search waits for the indexes to take in recent commits (keyword-search.ts too).
const FRESH_WAIT_MS = 250;
// Up to this many changes behind, a search waits for all of them (milliseconds of work).
const FRESH_ALWAYS_CHANGES = 5_000;
const FRESH_MAX_WAIT_MS = 2_000;
// How often the indexes look for commits made elsewhere.
const FOLLOW_MS = 5_000;
// Commits that land within this long of each other are taken into the indexes together.
const CATCH_UP_DELAY_MS = 100;
// SQLite holds every vector, and start-up adds what a saved index lacks, so saving is only
// about start-up time; the native write holds the index thread (searches wait), so it is
// done rarely.
const SAVE_DELAY_MS = 60_000;
// Query vectors kept (2 KB each at 512 dimensions): the last few thousand distinct queries.
// Each project has its own entries: a shared one would let a search's timing tell a project
// what another asked lately.
const QUERY_CACHE = 4096;

export interface SearchOptions {
  /** Whose search it is: the query-vector cache is kept per project. */
  projectId: string;
  maxResults: number;
  filter: AttributeFilter | null;
  scoreThreshold: number;
  embeddingWeight: number;
  now: number;
}

export interface SearchHit extends ChunkHit {
  score: number;
}

export class ModelMismatchError extends Error {}

// (project ids hold no NUL)
const queryKey = (projectId: string, text: string) => `${projectId}\u0000${text}`;

/** What one search may see: its store and filter, and their chunks, worked out once when first needed. */
interface Scope {
  storeId: string;
  filter: AttributeFilter | null;
  now: number;
  /** The chunks the store and filter saw when a search last counted them. */
  seen: number | undefined;
  /** Their chunks as id ranges (see storeChunks). */
  ranges(): Promise<Float64Array>;
}

export class SearchService {
  private index!: VectorIndex;
  readonly keywords: KeywordSearch;
  private readonly queryVectors = new Map<string, Float32Array>();
  private readonly exactVectors: ExactVectors;
  /** EXACT_IN_MEMORY, or less for a model of many dimensions; and how many vectors the bound holds. */
  private readonly exactMost: number;
  private readonly exactHolds: number;
  private readonly storeSizes = new Map<string, number>();
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private followTimer: ReturnType<typeof setInterval> | null = null;
  private catchUpTimer: ReturnType<typeof setTimeout> | null = null;
  private saving: Promise<void> | null = null;
  private dirty = false;
  /** The chunk change log's sequence the vector index has taken in everything up to. */
  private vectorSeq = 0;
  private stopped = false;
  private serving = false;
  /** When the index was last saved, for /metrics. */
  lastSaveMs: number | null = null;

  /** Narrow stores' vectors held for exact search, for /metrics. */
  get exactVectorBytes() {
    return this.exactVectors.heldBytes;
  }

  /** Vectors in the index, for /metrics. */
  get vectorCount() {
    return this.index?.size() ?? 0;
  }

  constructor(
    private readonly chunks: ChunksRepo,
    /** Writes vectors for chunks stored without them (older data, `ragd reindex`). */
    private readonly ingestion: IngestionRepo,
    private readonly embedder: EmbeddingProvider,
    private readonly indexDir: string,
    keywordDir: string,
    /** usearch's addon for the index thread (the binary's extracted copy; npm's from source). */
    private readonly usearchAddon?: string,
  ) {
    this.keywords = new KeywordSearch(chunks, keywordDir);
    this.exactVectors = new ExactVectors((ranges) => chunks.embeddingsIn(ranges), embedder.model.dims, EXACT_MEMORY_BYTES);
    this.exactHolds = Math.floor(EXACT_MEMORY_BYTES / ExactVectors.bytesPerVector(embedder.model.dims));
    this.exactMost = Math.min(EXACT_IN_MEMORY, Math.floor(this.exactHolds / 2));
  }

  get indexPath() {
    return join(this.indexDir, `${this.embedder.model.id.replace(/[^A-Za-z0-9._-]/g, "_")}.usearch`);
  }

  /** Refuses vectors written by another model; loads or rebuilds the index; embeds chunks stored without vectors. */
  async start() {
    const m = this.embedder.model;
    const stored = await this.chunks.getMeta("embedding_model");
    const current = JSON.stringify({ id: m.id, dims: m.dims });
    if (stored && stored !== current) {
      const was = JSON.parse(stored) as { id: string; dims: number };
      throw new ModelMismatchError(
        `the data directory's vectors were made by the embedding model ${was.id} (${was.dims} dimensions), but this server is configured with ${m.id} (${m.dims} dimensions); ` +
          `start with the previous model settings, or run \`ragd reindex\` with the new settings to re-embed every chunk`,
      );
    }
    if (!stored) await this.chunks.setMeta("embedding_model", current);
    // The vector index loads (or builds) on its own thread while the keyword index loads here.
    const vectors = (async () => {
      let { index, loaded, reason } = await VectorIndexThread.open(this.indexPath, m.id, m.dims, this.usearchAddon);
      // A saved vector past the last chunk id SQLite issued belongs to a chunk the database no
      // longer has: restored from an older backup, or commits lost with the power (the index
      // was saved between a commit and its sync, writer-worker.ts). SQLite gives those ids out
      // again, and the index would answer for the new chunks with the lost ones' vectors.
      if (loaded && index.maxId > (await this.chunks.chunkIdsIssued())) {
        await index.close();
        discardIndex(this.indexPath);
        ({ index, loaded } = await VectorIndexThread.open(this.indexPath, m.id, m.dims, this.usearchAddon));
        reason = "the saved index holds chunks the database does not (restored from a backup, or commits lost with the power)";
      }
      this.index = index;
      if (!loaded) (reason === "no saved index" ? log.info : log.warn)("building the vector index from SQLite", { reason });
      await this.vectorCatchUp();
      log.info("vector index ready", { vectors: this.index.size(), loaded });
    })();
    // The first failure ends the start: the vector index closes (its catch-up then fails),
    // and the server does not wait for the other side's build.
    await Promise.all([vectors, this.keywords.start()]).catch(async (e) => {
      await this.index?.close().catch(() => {});
      throw e;
    });
    if (this.keywords.dirty) this.scheduleSave(false);
    this.serving = true;
    // Other processes sharing the database commit chunks this one hears nothing about: look
    // every few seconds, so the indexes stay close behind even with no searches (a lag past
    // the shared log's retention would cost a rebuild).
    this.followTimer = setInterval(() => void this.catchUp().catch((e) => log.warn("index catch-up failed; the next look retries", { error: String(e) })), FOLLOW_MS);
    this.followTimer.unref?.();
    // A failure here (a remote API down) must not take the server with it; the next start retries.
    this.backfill().catch((e) => log.error("could not embed chunks stored without vectors; the next start retries", { error: String(e) }));
  }

  async stop() {
    this.stopped = true;
    if (this.followTimer) clearInterval(this.followTimer);
    if (this.catchUpTimer) clearTimeout(this.catchUpTimer);
    if (this.saveTimer) clearTimeout(this.saveTimer);
    await this.catchUp();
    await this.saving;
    // a start that failed has nothing of its own to save (its vector index may be closed)
    if (this.serving && (this.dirty || this.keywords.dirty)) await this.saveNow();
    await this.index?.close();
  }

  /**
   * After a commit: the indexes take it in a moment later, one catch-up for the commits of
   * that moment (a search does not wait for this: it catches up first).
   */
  catchUpSoon() {
    if (this.catchUpTimer || this.stopped) return;
    this.catchUpTimer = setTimeout(() => {
      this.catchUpTimer = null;
      this.catchUp().catch((e) => log.error("index update failed; the next commit or search retries", { error: String(e) }));
    }, CATCH_UP_DELAY_MS);
  }

  /** Brings both indexes up to the last commit. */
  readonly catchUp = async () => {
    await Promise.all([this.vectorCatchUp(), this.keywords.catchUp().then(() => this.keywords.dirty && this.scheduleSave(false))]);
  };

  /**
   * Adds every committed vector the index has not seen (in id order). The next batch is read
   * from SQLite while the index thread adds the one before: a start-up build of 1M vectors in
   * batches of 2,000 read and added in turn took 150 s, where usearch alone took 123 s.
   */
  private readonly vectorCatchUp = coalesced(async () => {
    const seq = await this.chunks.lastChange();
    const batch = this.serving ? CATCH_UP_BATCH : START_BATCH;
    for (let generation = this.index.generation, rows = await this.chunks.embeddedAfter(this.index.maxId, batch); rows.length; ) {
      // the index fell back to its saved state while SQLite was read: read again from there
      if (generation !== this.index.generation) {
        generation = this.index.generation;
        rows = await this.chunks.embeddedAfter(this.index.maxId, batch);
        continue;
      }
      const adding = this.addInSlices(rows.map((r) => r.id), rows.map((r) => r.embedding));
      adding.catch(() => {}); // awaited below, after the next read
      const next = await this.chunks.embeddedAfter(rows[rows.length - 1]!.id, batch);
      await adding;
      this.scheduleSave();
      rows = next;
    }
    this.vectorSeq = Math.max(this.vectorSeq, seq);
  });

  /**
   * Adds what was committed since the last look, by this process or another sharing the
   * database, so a file processed before the search began is found. Waits at most
   * FRESH_MAX_WAIT_MS (FRESH_WAIT_MS behind a large backlog), as the keyword index does.
   */
  private async vectorFreshen(waiting = () => {}) {
    const lag = (await this.chunks.lastChange()) - this.vectorSeq;
    if (lag <= 0) return;
    waiting();
    // Settles with the catch-up's error (never rejects: a run outlasting the wait below must
    // not leave a rejection nobody handles).
    const catchUp = this.vectorCatchUp().then(
      () => null,
      (e: unknown) => e,
    );
    // Commits that keep arriving extend a catch-up run: bounded all the same.
    const wait = lag <= FRESH_ALWAYS_CHANGES ? FRESH_MAX_WAIT_MS : FRESH_WAIT_MS;
    const failed = await waitAtMost(catchUp, wait);
    // A thread replaced during the catch-up ends it; the search answers from the index as it
    // is (the search itself says so if the thread is still away), and the next catch-up adds the rest.
    if (failed instanceof VectorIndexUnavailable) log.warn("the vector index thread was replaced during a catch-up; the next one adds the rest", { error: failed.message });
    else if (failed) throw failed;
  }

  /**
   * Once the server serves, the index thread adds vectors a few milliseconds at a time and
   * answers searches in between; before (start-up's build or catch-up) nobody waits, and
   * whole batches go in on every core.
   */
  private addInSlices(ids: number[], stored: Uint8Array[]) {
    // A vector of another dimension (written by an endpoint that changed its model before
    // ragd checked) would fail every catch-up, and with it every search: it is left out, as
    // the exact search leaves it out, and the log says how to mend it.
    const size = 4 + this.embedder.model.dims;
    if (stored.some((v) => v.length !== size)) {
      const bad = ids.filter((_, i) => stored[i]!.length !== size);
      log.warn("chunks whose stored vectors have another dimension are left out of vector search; run `ragd reindex` to embed them again", { chunks: bad.length, first_chunk_id: bad[0] });
      ids = ids.filter((_, i) => stored[i]!.length === size);
      stored = stored.filter((v) => v.length === size);
    }
    return this.index.add(ids, stored, !this.serving);
  }

  /** `ragd reindex`: drops every vector and index, records the configured model, embeds every chunk again. */
  async reindex(onProgress: (done: number, total: number) => void) {
    const m = this.embedder.model;
    await this.ingestion.clearEmbeddings(JSON.stringify({ id: m.id, dims: m.dims }));
    const total = await this.chunks.chunkCount();
    if (existsSync(this.indexDir))
      for (const f of readdirSync(this.indexDir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith(".usearch")))
      discardIndex(join(this.indexDir, f.name));
    await this.index?.close();
    this.index = (await VectorIndexThread.open(this.indexPath, m.id, m.dims, this.usearchAddon)).index;
    this.queryVectors.clear();
    this.exactVectors.clear();
    const done = await this.backfill((n) => onProgress(n, total));
    await this.saveNow();
    return done;
  }

  /** Chunks stored before vectors existed, or after `ragd reindex`, get embedded in the background. */
  async backfill(onProgress?: (done: number) => void) {
    let done = 0;
    for (;;) {
      if (this.stopped) return done;
      const rows = await this.ingestion.missingEmbeddings(256);
      if (rows.length === 0) break;
      const { vectors } = await this.embedder.embed(rows.map((r) => r.text), "ingest");
      const encoded = vectors.map(encodeVector);
      await this.ingestion.setEmbeddings(rows.map((r, i) => ({ id: r.id, embedding: encoded[i]! })));
      // ids below the index's high-water mark are not picked up by catchUp
      await this.addInSlices(rows.map((r) => r.id), encoded);
      this.scheduleSave();
      done += rows.length;
      onProgress?.(done);
    }
    if (done) log.info("embedded chunks that had no vector", { chunks: done });
    return done;
  }

  /** Saves the indexes a while later; `vectors` false when only the keyword index changed. */
  private scheduleSave(vectors = true) {
    if (vectors) this.dirty = true;
    if (this.saveTimer || this.stopped) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.saving = this.saveNow();
    }, SAVE_DELAY_MS);
    this.saveTimer.unref?.();
  }

  private async saveNow() {
    const vectors = this.dirty;
    this.dirty = false;
    try {
      if (vectors) await this.index.save();
      this.lastSaveMs = Date.now();
    } catch (e) {
      // tried again with the next save
      if (vectors) this.dirty = true;
      log.error("could not save the vector index; the last saved one stays, and start-up adds what it lacks from SQLite", { error: String(e) });
    }
    await this.keywords.save().catch((e) => log.error("could not save the keyword index; the next start replays or rebuilds it", { error: String(e) }));
  }

  /** A project's query vector if it is kept, now the most recently used. */
  private cachedQueryVector(projectId: string, text: string) {
    const key = queryKey(projectId, text);
    const hit = this.queryVectors.get(key);
    if (hit) {
      this.queryVectors.delete(key);
      this.queryVectors.set(key, hit);
    }
    return hit;
  }

  /** A query a project asks again (a retry, a popular question, each turn of a chat) is not embedded again. */
  async embedQuery(projectId: string, text: string) {
    const hit = this.cachedQueryVector(projectId, text);
    if (hit) return hit;
    const vector = (await embedOrUnavailable(this.embedder, [text])).vectors[0]!;
    this.queryVectors.set(queryKey(projectId, text), vector);
    if (this.queryVectors.size > QUERY_CACHE) this.queryVectors.delete(this.queryVectors.keys().next().value!);
    return vector;
  }

  async search(storeId: string, queries: string[], o: SearchOptions): Promise<SearchHit[]> {
    const started = performance.now();
    const hits = await this.searchUntimed(storeId, queries, o);
    metrics.searched(o.embeddingWeight >= 1 ? "vector" : o.embeddingWeight <= 0 ? "keyword" : "hybrid", (performance.now() - started) / 1000);
    return hits;
  }

  private async searchUntimed(storeId: string, queries: string[], o: SearchOptions): Promise<SearchHit[]> {
    const candidates = Math.max(100, o.maxResults * 5);
    const best = new Map<number, number>();
    for (const q of queries) {
      const fused = await this.searchOne(storeId, q, o, candidates);
      for (const s of fused) if (!((best.get(s.id) ?? -1) >= s.score)) best.set(s.id, s.score);
    }
    const ranked = [...best.entries()]
      .map(([id, score]) => ({ id, score }))
      .filter((s) => s.score >= o.scoreThreshold)
      .sort((a, b) => b.score - a.score || a.id - b.id)
      .slice(0, o.maxResults);
    const hits = await this.chunks.hits(storeId, ranked.map((r) => r.id), o.filter);
    return ranked.flatMap((r) => {
      const h = hits.get(r.id);
      return h ? [{ ...h, score: r.score }] : [];
    });
  }

  private async searchOne(storeId: string, query: string, o: SearchOptions, n: number): Promise<Scored[]> {
    const c = await this.candidates(storeId, query, o, n);
    return fuse(c.dense, c.keyword, o.embeddingWeight, c.cosines);
  }

  /** Both candidate lists for one query, before fusion (`bench/` fuses them with several weights). */
  async candidates(storeId: string, query: string, o: Pick<SearchOptions, "projectId" | "filter" | "now" | "embeddingWeight">, n: number) {
    const scope = this.scope(storeId, o.filter, o.now);
    // The HNSW search runs on its thread while BM25 runs here, so BM25 starts once the
    // index has been asked; a query not embedded yet is embedded in the model's worker
    // meanwhile, and BM25 does not wait for that.
    const cached = o.embeddingWeight > 0 ? this.cachedQueryVector(o.projectId, query) : undefined;
    const embedding = o.embeddingWeight > 0 ? (cached ? Promise.resolve(cached) : this.embedQuery(o.projectId, query)) : null;
    let asked = () => {};
    const denseAsked = new Promise<void>((r) => (asked = r));
    const denseRun = embedding ? embedding.then((vector) => this.dense(scope, vector, n, asked)) : Promise.resolve([]);
    denseRun.catch(() => {}); // awaited below; this only keeps an early failure from counting as unhandled
    const graphAsked = Promise.race([denseAsked, denseRun.then(() => {}, () => {})]);
    const keywordStart = cached ? graphAsked : Promise.resolve();
    // Both lists are gathered at once: with a database over the network their reads overlap.
    const keywordRun = o.embeddingWeight < 1 ? keywordStart.then(() => this.keyword(scope, query, n)) : Promise.resolve([]);
    keywordRun.catch(() => {});
    // Keyword-only hits get their true cosine as soon as the keyword side is done: the graph
    // search is then usually still under way on its thread, so this read overlaps it (a chunk
    // the graph has already found is not read).
    let denseSoFar: Scored[] | null = null;
    denseRun.then((d) => (denseSoFar = d), () => {});
    // (a query embedded meanwhile has the graph asked first: this read would only delay it)
    const cosineRun = embedding
      ? keywordRun.then(async (kw) => {
          const vector = await embedding;
          await graphAsked;
          return this.cosines(vector, kw, denseSoFar);
        })
      : null;
    cosineRun?.catch(() => {});
    const [keyword, dense] = await Promise.all([keywordRun, denseRun]).catch(async (e) => {
      // Neither run is left going after the search has failed; a query that could not be
      // embedded says so (503 embedding_unavailable) whatever else failed.
      const [embedded] = await Promise.allSettled([embedding, keywordRun, denseRun, cosineRun]);
      throw embedded.status === "rejected" ? embedded.reason : e;
    });
    const cosines = cosineRun ? await cosineRun : null;
    // (the graph's own similarity stands for a chunk both sides found, as when it came first)
    if (cosines) for (const d of dense) cosines.set(d.id, d.score);
    return { dense, keyword, cosines };
  }

  /**
   * Chunks found only by keywords still get their true cosine, so fusion compares like with
   * like: every keyword hit's, less those `dense` (when known yet) already gives.
   */
  private async cosines(vector: Float32Array, keyword: Scored[], dense: Scored[] | null) {
    const known = new Map(dense?.map((d) => [d.id, d.score]));
    const missing = keyword.filter((k) => !known.has(k.id)).map((k) => k.id);
    if (missing.length) {
      for (const [id, v] of await this.chunks.embeddings(missing)) known.set(id, dotEncoded(vector, v));
    }
    return known;
  }

  private scope(storeId: string, filter: AttributeFilter | null, now: number): Scope {
    const key = `${storeId}\0${JSON.stringify(filter)}`;
    let ranges: Promise<Float64Array> | undefined;
    return {
      storeId,
      filter,
      now,
      seen: this.storeSizes.get(key),
      // (after the keyword replay, which the places the ranges come from follow)
      ranges: () =>
        (ranges ??= this.keywords.freshen().then(() => this.storeChunks(storeId, filter, now)).then((r) => {
          this.storeSizes.delete(key);
          this.storeSizes.set(key, idsIn(r));
          if (this.storeSizes.size > STORE_SIZES) this.storeSizes.delete(this.storeSizes.keys().next().value!);
          return r;
        })),
    };
  }

  /** Known (from an earlier search) to see few enough chunks to search them on their own. */
  private narrow(scope: Scope) {
    return scope.seen !== undefined && scope.seen <= this.exactMost;
  }

  /** Exact search over the scope's chunks when they are no more than `most`, in memory; else null. */
  private async exactInMemory(scope: Scope, vector: Float32Array, n: number, most = this.exactMost): Promise<Scored[] | null> {
    const ranges = await scope.ranges();
    return idsIn(ranges) <= most ? this.exactVectors.search(ranges, vector, n) : null;
  }

  /** `asked`: called once the index has the search (or the search is exact, here). */
  private async dense(scope: Scope, vector: Float32Array, n: number, asked = () => {}): Promise<Scored[]> {
    // (BM25 does not wait for the vector index to take in recent commits)
    await this.vectorFreshen(asked).catch((e) => {
      asked();
      throw e;
    });
    const total = this.index.size();
    if (total <= EXACT_LIMIT) {
      asked();
      return (await this.exactInMemory(scope, vector, n)) ?? this.chunks.exact(scope.storeId, scope.filter, scope.now, vector, n);
    }
    if (this.narrow(scope)) {
      asked();
      const exact = await this.exactInMemory(scope, vector, n);
      if (exact) return exact;
    }
    // The index spans every store: widen until `n` of this store's (and filter's) chunks
    // survive, asking next for as many as the share seen so far says it takes (half again
    // over); a store or filter too narrow or too small for that is searched exactly instead.
    for (let k = Math.min(total, n * 2); ; ) {
      const searched = this.index.search(vector, k);
      asked();
      const matches = await searched.catch((e) => {
        if (!(e instanceof VectorIndexUnavailable)) throw e;
        throw new RagdError("search_unavailable", "Search is unavailable for a moment: the vector index is being reloaded after a fault. Retry in a few seconds.", null, { "retry-after": "2" });
      });
      const visible = await this.visible(scope.storeId, scope.filter, scope.now, matches.map((m) => m.id));
      const hits = matches.filter((m) => visible.has(m.id)).map((m) => ({ id: m.id, score: m.similarity }));
      if (hits.length >= n || k >= total) return hits.slice(0, n);
      // As many chunks as their share suggests, few enough to hold: searched on their own.
      const exact = (hits.length / k) * total <= this.exactMost ? await this.exactInMemory(scope, vector, n) : null;
      if (exact) return exact;
      const needed = Math.ceil((n * k * 1.5) / Math.max(1, hits.length));
      // Exact when the store's chunks (as many as their share suggests) are no more than the
      // candidates the index would be asked for.
      // (in memory while the bound can hold them all: milliseconds, where SQLite's scan of a
      // store's rows takes about 2 us a row)
      if (needed > n * 128 || (hits.length / k) * total <= needed)
        return (await this.exactInMemory(scope, vector, n, this.exactHolds)) ?? this.chunks.exact(scope.storeId, scope.filter, scope.now, vector, n);
      k = Math.min(total, Math.max(k * 2, needed));
    }
  }

  private async keyword(scope: Scope, query: string, n: number): Promise<Scored[]> {
    await this.keywords.freshen();
    // Most searches see most chunks (the knowledge base, a store without filters): rank over
    // all chunks and keep the visible ones, widening once. A store or filter that sees too few
    // of them (or did at an earlier search) is ranked inside its own chunks, from as many
    // candidates as the first try over all chunks would take (so the two agree on a store
    // whose best chunks the first try would have found).
    if (!this.narrow(scope))
      for (const k of [n * 2, n * 16]) {
        const ranked = await this.keywords.search(query, k);
        const visible = await this.visible(scope.storeId, scope.filter, scope.now, ranked.map((r) => r.id));
        const hits = ranked.filter((r) => visible.has(r.id));
        if (hits.length >= n || ranked.length < k) return hits.slice(0, n);
        // Seeing under an eighth of the first candidates, the wider try would fall short too.
        if (hits.length * 8 < n) break;
      }
    return (await this.keywords.search(query, n * 2, await scope.ranges())).slice(0, n);
  }

  /**
   * The chunks the store's search may see, as id ranges: by the cuts of files it sees while the
   * places known here are current (a row per file, not per chunk), else every visible chunk id.
   */
  private async storeChunks(storeId: string, filter: AttributeFilter | null, now: number): Promise<Float64Array> {
    const places = await this.keywords.currentPlaces();
    if (!places) return idRangesOf(await this.chunks.visibleIds(storeId, filter, now));
    return places.idRanges(await this.chunks.storeGroups(storeId, filter, now));
  }

  /** Which of these chunks the store's search may see: by their files while the places known here are current. */
  private async visible(storeId: string, filter: AttributeFilter | null, now: number, ids: number[]): Promise<Set<number>> {
    const places = ids.length ? await this.keywords.currentPlaces() : null;
    return places ? visibleByPlace(this.chunks, places, storeId, filter, now, ids) : this.chunks.visible(storeId, filter, now, ids);
  }

  /** For `bench/`: exact search over a store, to measure the index's recall against. */
  exactForBench(storeId: string, vector: Float32Array, k: number) {
    return this.chunks.exact(storeId, null, Math.floor(Date.now() / 1000), vector, k);
  }

  /** For `bench/`: the index's own answer against exact search. */
  get vectorIndex() {
    return this.index;
  }
}

/** Min-max normalised weighted sum over the union of both candidate lists; scores land in 0..1. */
export function fuse(dense: Scored[], keyword: Scored[], embeddingWeight: number, cosines: Map<number, number> | null): Scored[] {
  const ids = new Set([...dense.map((d) => d.id), ...keyword.map((k) => k.id)]);
  const kw = new Map(keyword.map((k) => [k.id, k.score]));
  const cos = cosines ?? new Map(dense.map((d) => [d.id, d.score]));
  const range = (values: number[]) => {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    return (v: number) => (hi > lo ? (v - lo) / (hi - lo) : values.length ? 1 : 0);
  };
  const cosValues = [...ids].map((id) => cos.get(id)).filter((v): v is number => v !== undefined);
  const normCos = range(cosValues);
  const normKw = range(keyword.map((k) => k.score));
  const wd = keyword.length === 0 ? 1 : dense.length === 0 && !cosines ? 0 : embeddingWeight;
  return [...ids].map((id) => {
    const c = cos.get(id);
    const k = kw.get(id);
    return { id, score: wd * (c === undefined ? 0 : normCos(c)) + (1 - wd) * (k === undefined ? 0 : normKw(k)) };
  });
}
