// The storage contract: what services may ask of metadata storage, whatever holds it. The
// embedded implementation is in ./sqlite/; a Postgres one goes in a sibling folder and must
// pass the same contract tests (test/repos.contract.test.ts). Every method is async for it.
import type { IngestErrorCode } from "../errors";

/**
 * Keyset pagination over a list's order. `after` continues past a cursor in the order asked
 * for; `before` returns the page just before it.
 */
export interface Keyset {
  order: "asc" | "desc";
  afterSeq?: number;
  beforeSeq?: number;
  /** Rows wanted; one more is read to tell whether more follow. */
  limit: number;
}

/** A page of rows in the order asked for, and whether more lie beyond it. */
export interface Page<T> {
  rows: T[];
  hasMore: boolean;
}

// ---- files

export type FileStatus = "uploaded" | "processed" | "error";

export interface FileRow {
  id: string;
  projectId: string;
  bytes: number;
  createdAt: number;
  filename: string;
  purpose: string;
  status: FileStatus;
  statusDetails: string | null;
  expiresAt: number | null;
  contentType: string;
  sha256: string;
}

export interface ListFilesQuery extends Keyset {
  purpose?: string;
  offset: number;
}

/** File metadata. A file's status changes only through IngestionRepo. */
export interface FilesRepo {
  /**
   * Inserts unless the project would exceed `quota` bytes (0 = unlimited); false if it would.
   * A file inserted as `uploaded` is queued for ingestion and joins its project's knowledge
   * base in the same transaction, so no acknowledged upload can be left without either.
   */
  insert(row: FileRow, quota: number, nowMs: number): Promise<boolean>;
  /** A live (not expired at `now`) file of the project, or null. */
  get(projectId: string, id: string, now: number): Promise<FileRow | null>;
  list(projectId: string, q: ListFilesQuery, now: number): Promise<Page<FileRow>>;
  /** How many live files of the project have this purpose (any purpose when absent). */
  count(projectId: string, purpose: string | undefined, now: number): Promise<number>;
  /** The ordering position of a file id of this project, live or deleted; null if never seen. */
  cursorSeq(projectId: string, id: string): Promise<number | null>;
  /** Removes the row and everything derived from it (leaving a cursor tombstone); null when already gone. */
  remove(projectId: string, id: string, now: number): Promise<FileRow | null>;
  /** What counts against the project's quota: its files, and the parts of its uploads until completed. */
  usedBytes(projectId: string): Promise<number>;
  expired(now: number, limit: number): Promise<{ projectId: string; id: string }[]>;
  exists(id: string): Promise<boolean>;
  /**
   * Changes whenever a committed write, by this process or another, may have changed what any
   * read returns; while it stays the same, a read cached under it is still true.
   */
  changeToken(): Promise<string>;
  /** Bytes stored per project, by project id (for /metrics). */
  bytesByProject(): Promise<{ project: string; bytes: number }[]>;
  /** Folds totals kept in pieces (PostgreSQL's delta rows) into one row each; nothing where a total is kept whole. */
  foldTotals(): Promise<void>;
  /** Forgets the places of up to `limit` files deleted before `beforeS` (see TOMBSTONE_SECONDS); how many. */
  pruneTombstones(beforeS: number, limit: number): Promise<number>;
}

// ---- uploads (/v1/uploads: a file sent in parts, then completed into a file)

/** `expired` is not stored: a pending upload past its expiry reads as expired. */
export type UploadStatus = "pending" | "completed" | "cancelled";

export interface UploadRow {
  id: string;
  projectId: string;
  filename: string;
  purpose: string;
  bytes: number;
  mimeType: string;
  /** The file's expires_after, as JSON, for the file the upload becomes. */
  expiresAfter: string | null;
  createdAt: number;
  expiresAt: number;
  status: UploadStatus;
  /** The completed upload's file; while pending, the id the claim under way will give it. */
  fileId: string;
  /** Until when a complete under way holds the upload (see UploadsRepo.claim); null when none has. */
  claimedUntil?: number | null;
}

export interface UploadPartRow {
  id: string;
  uploadId: string;
  bytes: number;
  createdAt: number;
}

/** An upload's parts may hold this many times its bytes: every part sent twice, as a retry of a part whose answer was lost does. */
export const UPLOAD_PARTS_SLACK = 2;

/**
 * Uploads and their parts' rows; the parts' bytes are blobs named by the part ids. A complete
 * claims its upload first (`claim`, renewed as it goes): while a claim lasts, no part is added,
 * no cancel or other complete ends it, and the expiry sweep leaves it alone. A claim that
 * lapsed (its process died) can be taken over.
 */
export interface UploadsRepo {
  insert(row: UploadRow): Promise<void>;
  /** The project's upload, whatever its status; null when unknown (or another project's). */
  get(projectId: string, id: string): Promise<UploadRow | null>;
  /**
   * Adds a part while the upload is pending, unexpired and unclaimed at `now`, with its parts
   * (this one included) within the upload's bytes and at most `maxParts`, and the project's
   * files and stored parts within `quota` bytes (0 = unlimited); false otherwise.
   */
  addPart(part: UploadPartRow, now: number, maxParts: number, quota: number): Promise<boolean>;
  parts(uploadId: string): Promise<UploadPartRow[]>;
  /**
   * Claims a pending upload for a complete by `by` until `until`, naming `fileId` the file it
   * will make: a new claim only while the upload is unexpired and no other claim lasts at `now`;
   * `by`'s own claim is renewed whatever the time.
   */
  claim(projectId: string, id: string, by: string, now: number, until: number, fileId: string): Promise<boolean>;
  /**
   * In one transaction, while `by`'s claim with `file.id` holds the upload: the file's row as
   * FilesRepo.insert writes it, the upload completed, its parts' rows dropped. The parts (their
   * blobs are the caller's to delete); "lost" when the claim no longer holds (the upload was
   * cancelled, swept or claimed by another meanwhile), "quota" when the file would exceed it.
   */
  complete(projectId: string, id: string, by: string, file: FileRow, quota: number, nowMs: number): Promise<UploadPartRow[] | "lost" | "quota">;
  /** Cancels a pending upload no claim holds at `now`, dropping its parts' rows; the parts, or null. */
  cancel(projectId: string, id: string, now: number): Promise<UploadPartRow[] | null>;
  /**
   * Drops the parts of up to `limit` uploads that expired pending before `now` and are not
   * claimed (the uploads stay, read as expired), and forgets up to `limit` uploads whose expiry
   * is before `forgetBefore` and that have no parts left.
   */
  sweep(now: number, forgetBefore: number, limit: number): Promise<{ parts: UploadPartRow[]; forgotten: number }>;
  /** Whether a part row holds this id (a blob's owner, for the orphan sweep). */
  partExists(id: string): Promise<boolean>;
}

// ---- ingestion: jobs, cuts, documents, chunks and a file's status

/**
 * A file is cut into chunks once with the server's default ('auto') and again for each other
 * size a store asks for (ingest/chunker.ts chunkingKey): `auto` or `static:<max>:<overlap>`.
 */
export type CutKey = string;

export interface JobKey {
  fileId: string;
  cut: CutKey;
}

export interface Job extends JobKey {
  filename: string;
  /** Runs that failed for the document's own reasons (its parser crashed). */
  attempts: number;
  /** Runs started, counting this one, including those a server stop interrupted. */
  runs: number;
}

export interface ChunkRow {
  text: string;
  location: unknown;
  charStart: number;
  charEnd: number;
  tokens: number;
  /** storage/vector-codec.ts encoding; null when no embedding model is configured. */
  embedding: Uint8Array | null;
}

export interface Failure {
  code: IngestErrorCode;
  message: string;
}

export type JobOutcome = { status: "processed"; format: string; text: string; chunks: ChunkRow[] } | ({ status: "failed" } & Failure);

/** How one cut of a file came out, kept after its job ends. */
export interface JobRecord extends JobKey {
  state: "queued" | "running" | "done" | "failed";
  enqueuedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  attempts: number;
  runs: number;
  errorCode: IngestErrorCode | null;
  error: string | null;
}

/**
 * The one owner of ingestion state: the durable queue (a job per cut of a file, claimed with
 * a lease its runner renews), the chunks and document text a job commits, and the file's
 * status. Every write by a runner is conditional on holding the lease, so a runner that lost
 * its job (deleted file, expired lease) can never write stale results. Jobs stay after they
 * end, with their typed outcome.
 */
export interface IngestionRepo {
  /**
   * Queues every file still `uploaded` that has no job (files stored before ingestion
   * existed), and every cut a live store membership asks for that has no job.
   */
  enqueueMissing(purposes: readonly string[], nowMs: number): Promise<number>;
  /** The oldest ready job with attempts left, leased to `owner`; counts a run. */
  claim(owner: string, nowMs: number, leaseMs: number, maxAttempts: number, maxRuns?: number): Promise<Job | null>;
  /** Extends the lease and records progress; false when the job is gone or taken. */
  heartbeat(job: JobKey, owner: string, nowMs: number, leaseMs: number, progress: string | null): Promise<boolean>;
  /**
   * Writes the result and ends the job; the status (the file's for 'auto', else the cut's)
   * flips in one final transaction. False when the lease was lost.
   */
  finish(job: JobKey, owner: string, outcome: JobOutcome, nowMs: number): Promise<boolean>;
  /** The run failed for the document's own reasons: counts an attempt, tries again later. */
  retry(job: JobKey, owner: string, runAfterMs: number, failure: Failure): Promise<boolean>;
  /** The server, not the file, could not go on (a full disk): back to the queue, no attempt counted. */
  postpone(job: JobKey, owner: string, runAfterMs: number): Promise<boolean>;
  /** Hands back this runner's jobs at shutdown so the next start takes them at once. */
  release(owner: string): Promise<void>;
  /**
   * Jobs out of attempts, or whose runs keep being cut short by server stops (`maxRuns`), end
   * failed rather than being claimed forever.
   */
  exhausted(maxAttempts: number, maxRuns: number, nowMs: number): Promise<JobKey[]>;
  nextRunAfter(): Promise<number | null>;
  /** Jobs by state, and when the oldest job waiting or running was queued (for /metrics). */
  stats(): Promise<{ states: Record<string, number>; oldestQueuedMs: number | null }>;
  /** A cut's job as it stands or ended; null when there is none. */
  job(key: JobKey): Promise<JobRecord | null>;
  // Embedding upkeep, for chunks stored without vectors (older data, `ragd reindex`).
  missingEmbeddings(limit: number): Promise<{ id: number; text: string }[]>;
  setEmbeddings(rows: { id: number; embedding: Uint8Array }[]): Promise<void>;
  /** Drops every vector in one transaction, recording the model the next ones come from. */
  clearEmbeddings(model: string): Promise<void>;
}

// ---- vector stores

export type StoreFileStatus = "in_progress" | "completed" | "failed" | "cancelled";

export interface StoreRow {
  id: string;
  projectId: string;
  name: string | null;
  isDefault: number;
  createdAt: number;
  lastActiveAt: number;
  metadata: string;
  expiresDays: number | null;
  chunking: string;
}

export interface FileCounts {
  in_progress: number;
  completed: number;
  failed: number;
  cancelled: number;
  total: number;
}

/** A store's counts from (status, count) rows, as every backend's GROUP BY gives them. */
export function fileCountsOf(rows: { status: StoreFileStatus; n: number }[]): FileCounts {
  const counts: FileCounts = { in_progress: 0, completed: 0, failed: 0, cancelled: 0, total: 0 };
  for (const r of rows) {
    counts[r.status] = r.n;
    counts.total += r.n;
  }
  return counts;
}

export interface StoreFileRow {
  storeId: string;
  fileId: string;
  createdAt: number;
  attributes: string;
  chunking: string;
  /** The cut it searches. */
  cut: CutKey;
  batchId: string | null;
  status: StoreFileStatus;
  /** When failed: the outcome of the file's ingestion, or of its cut. */
  errorCode: IngestErrorCode | null;
  error: string | null;
  usageBytes: number;
}

export interface BatchRow {
  id: string;
  storeId: string;
  createdAt: number;
  cancelled: number;
}

/** A value an attribute filter compares with. */
export type FilterScalar = string | number | boolean;

/**
 * OpenAI's attribute filter over a store file's attributes, validated (services/filters.ts);
 * each backend compiles it to its own query language. A file without the key is unequal to
 * every value and in no list; an order comparison holds only between values of one type.
 */
export type AttributeFilter =
  | { type: "and" | "or"; filters: AttributeFilter[] }
  | { type: "eq" | "ne" | "gt" | "gte" | "lt" | "lte"; key: string; value: FilterScalar }
  | { type: "in" | "nin"; key: string; value: FilterScalar[] };

/** No filter: every file of the store. */
export const NO_FILTER: AttributeFilter | null = null;

/** A store file's chunking: as requested (JSON) and the key of the cut it resolved to. */
export interface Chunking {
  json: string;
  cut: CutKey;
}

/** Vector stores, their files and batches. Attaching queues the cut a store asks for. */
export interface StoresRepo {
  /** The project's knowledge base, made on first use. */
  ensureDefault(projectId: string, nowS: number): Promise<string>;
  /** Forgets the places of up to `limit` stores and `limit` memberships removed before `beforeS`; how many. */
  pruneTombstones(beforeS: number, limit: number): Promise<number>;
  /** Files ingested before stores existed join their project's knowledge base. */
  adoptOrphans(purposes: readonly string[], nowS: number): Promise<number>;
  create(row: StoreRow, fileIds: string[], attributes: string, chunking: Chunking, nowMs: number): Promise<void>;
  get(projectId: string, id: string): Promise<StoreRow | null>;
  list(projectId: string, q: Keyset): Promise<Page<StoreRow>>;
  seq(projectId: string, id: string): Promise<number | null>;
  update(id: string, fields: { name?: string | null; metadata?: string; expiresDays?: number | null; lastActiveAt?: number }): Promise<void>;
  remove(id: string): Promise<boolean>;
  fileCounts(storeId: string, now: number, batchId?: string): Promise<FileCounts>;
  usageBytes(storeId: string, now: number): Promise<number>;
  /**
   * Each file with its attributes (JSON; null: a file already in the store keeps its own, a new
   * one has none) and, if it names one, its own chunking (else `chunking`); plain data, so a
   * write can cross to another thread or process.
   */
  attach(storeId: string, files: { id: string; attributes: string | null; chunking?: Chunking }[], nowS: number, chunking: Chunking, batch: { id: string } | null, nowMs: number): Promise<void>;
  getFile(storeId: string, fileId: string, now: number): Promise<StoreFileRow | null>;
  listFiles(storeId: string, q: Keyset & { status?: StoreFileStatus; batchId?: string }, now: number): Promise<Page<StoreFileRow>>;
  fileSeq(storeId: string, fileId: string): Promise<number | null>;
  updateAttributes(storeId: string, fileId: string, attributes: string): Promise<boolean>;
  detach(storeId: string, fileId: string): Promise<boolean>;
  getBatch(storeId: string, id: string): Promise<BatchRow | null>;
  /** Files of the batch still in progress become cancelled, and the batch with them; finished ones keep their status, and a batch with none in progress its own. */
  cancelBatch(storeId: string, id: string): Promise<void>;
  documentText(fileId: string): Promise<string | null>;
  touch(storeId: string, nowS: number): Promise<void>;
}

// ---- chunks, for search

export interface ChunkHit {
  id: number;
  fileId: string;
  filename: string;
  text: string;
  location: string;
  attributes: string;
}

export interface Scored {
  id: number;
  score: number;
}

/** A file's cut as one key: what storeGroups and visibleGroups answer in. */
export const groupKey = (fileId: string, cut: string) => `${fileId}\u0000${cut}`;

export interface PlaceRun {
  fileId: string;
  cut: string;
  first: number;
  last: number;
  count: number;
  lo: number;
  hi: number;
}

export interface ChunkChange {
  seq: number;
  id: number;
  op: "add" | "delete";
  text: string | null;
  /** An add's place while its chunk is still there (null otherwise). */
  fileId: string | null;
  cut: string | null;
  idx: number | null;
}

/** Search-side reads of chunks; a chunk is visible in a store when its cut is complete. */
export interface ChunksRepo {
  exact(storeId: string, filter: AttributeFilter | null, now: number, query: Float32Array, k: number): Promise<Scored[]>;
  visible(storeId: string, filter: AttributeFilter | null, now: number, ids: number[]): Promise<Set<number>>;
  /** Every chunk id the store's search may see: for stores and filters that see a small part of all chunks. */
  visibleIds(storeId: string, filter: AttributeFilter | null, now: number): Promise<Set<number>>;
  /** Every cut of a file the store's search may see, as groupKey(fileId, cut): for stores and filters that see a small part of all chunks. */
  storeGroups(storeId: string, filter: AttributeFilter | null, now: number): Promise<Set<string>>;
  /** Which of these cuts of files (`{fileId, cut}`, with `key` when the caller has groupKey(fileId, cut) at hand) the store's search may see, as groupKey(fileId, cut). */
  visibleGroups(storeId: string, filter: AttributeFilter | null, now: number, groups: { fileId: string; cut: string; key?: string }[]): Promise<Set<string>>;
  /** For each chunk, the chunks of the same file and cut within `radius` places of it (itself included). */
  neighbours(ids: number[], radius: number): Promise<Map<number, number[]>>;
  /**
   * How search learns where every chunk sits without a row per chunk: each cut of a file after
   * `after` (in (fileId, cut) order), with its first and last chunk id, its chunk count, and the
   * least and greatest `id - idx` (equal when its ids follow its positions).
   */
  placeRuns(after: { fileId: string; cut: string } | null, limit: number): Promise<PlaceRun[]>;
  /** One cut's chunks, in id order: for a cut whose ids do not follow its positions. */
  placesOf(fileId: string, cut: string): Promise<{ id: number; idx: number }[]>;
  /** Chunk texts by id (chunks gone since are absent). */
  texts(ids: number[]): Promise<Map<number, string>>;
  /** Chunks after `afterId`, in id order: how the keyword index is rebuilt. */
  textsAfter(afterId: number, limit: number): Promise<{ id: number; text: string }[]>;
  /**
   * The chunk change log, in commit order: every chunk added (with its text while it is still
   * there) or deleted (with the text it had: a keyword index needs it to keep its term
   * statistics exact). Derived indexes replay it from the sequence they last saved.
   */
  changesAfter(seq: number, limit: number): Promise<ChunkChange[]>;
  /** The highest chunk id ever given out (ids are never reused). */
  chunkIdsIssued(): Promise<number>;
  /** The sequence of the last change committed (0 before any). */
  lastChange(): Promise<number>;
  /** Whether every change after `seq` is still in the log (none pruned past it). */
  changeLogReaches(seq: number): Promise<boolean>;
  /** Drops the log up to `seq`, once the index that needed it is saved. */
  pruneChanges(seq: number): Promise<void>;
  /** The hits' rows, of those still in the store and matching the filter now (a write since the candidates were found may have changed either). */
  hits(storeId: string, ids: number[], attributes: AttributeFilter | null): Promise<Map<number, ChunkHit>>;
  embeddings(ids: number[]): Promise<Map<number, Uint8Array>>;
  embeddedAfter(afterId: number, limit: number): Promise<{ id: number; embedding: Uint8Array }[]>;
  /** The stored vectors of the chunks in these ranges (ascending, disjoint [first, last] pairs, flat) that have one, in id order. */
  embeddingsIn(ranges: Float64Array): Promise<{ id: number; embedding: Uint8Array }[]>;
  chunkCount(): Promise<number>;
  /** A file's chunks of its default cut, in order, a page at a time, with how many there are. */
  fileChunks(fileId: string, offset: number, limit: number): Promise<{ rows: { index: number; text: string; location: string; tokens: number }[]; total: number }>;
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
}

// ---- projects and keys

export interface Project {
  id: string;
  name: string;
  createdAt: number;
}

export interface KeyRow {
  id: string;
  projectId: string;
  projectName: string;
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
}

/** Projects and their API keys. Only a hash of each key is ever stored. */
export interface KeysRepo {
  projectByName(name: string): Promise<Project | null>;
  projectById(id: string): Promise<Project | null>;
  createProject(p: Project): Promise<Project>;
  insertKey(k: { id: string; projectId: string; hash: string; prefix: string; createdAt: number }): Promise<void>;
  /** The active key with this hash, with the stored hash for a constant-time comparison. */
  findActiveByHash(hash: string): Promise<{ id: string; projectId: string; hash: string } | null>;
  list(): Promise<KeyRow[]>;
  /** Revokes by key id; false when no active key has that id. */
  revoke(id: string, now: number): Promise<boolean>;
  count(): Promise<number>;
}

// ---- responses (/v1/responses)

export type ResponseStatus = "queued" | "in_progress" | "completed" | "failed" | "cancelled" | "incomplete";

export interface ResponseRow {
  id: string;
  projectId: string;
  createdAt: number;
  status: ResponseStatus;
  background: boolean;
  previousId: string | null;
  /** The create request (JSON), to run a background response again after a restart. */
  request: string;
  /** The response object as last saved (JSON). */
  object: string;
  /** Its input items with their ids (JSON), for /input_items. */
  inputItems: string;
  /** The chat messages it added to its conversation (JSON). */
  context: string;
  /** The passage numbers it introduced (JSON). */
  sources: string;
}

/**
 * Stored responses: conversation state for previous_response_id, and background runs. One
 * being written carries a lease: the process writing it (`runner`)
 * renews it while the run lasts, so processes sharing the database tell a run that is going
 * from one whose process is gone, and a cancel or delete from elsewhere reaches the run.
 */
export interface ResponsesRepo {
  /** A new response, leased to `runner` for `leaseMs` (by the database's clock) when it is unfinished. */
  insert(row: ResponseRow, runner: string, leaseMs: number): Promise<void>;
  /**
   * Saves a run's progress or end while it is unfinished and `runner` holds it; false when it
   * was deleted, ended (cancelled elsewhere) or taken over by another process meanwhile.
   */
  update(id: string, runner: string, fields: Pick<ResponseRow, "status" | "object" | "context" | "sources">): Promise<boolean>;
  get(projectId: string, id: string): Promise<ResponseRow | null>;
  remove(projectId: string, id: string): Promise<boolean>;
  /** Extends by `leaseMs` the leases of these runs of `runner` that are still unfinished; returns the ids extended (the others were cancelled, deleted or taken over). */
  renew(runner: string, ids: string[], leaseMs: number): Promise<string[]>;
  /** Unfinished responses no running process writes: their process stopped or died. */
  orphans(runner: string): Promise<ResponseRow[]>;
  /** Takes an orphan for `runner`, leased for `leaseMs`; false when another process took it first, or it ended. */
  take(id: string, runner: string, leaseMs: number): Promise<boolean>;
  /** Ends an unfinished response as cancelled (from a process not writing it); false when it had ended. */
  cancel(id: string, object: string): Promise<boolean>;
  /** Hands back a stopping process's leases, so its unfinished background responses are taken at once. */
  release(runner: string): Promise<void>;
}

// ---- coordination between processes sharing the metadata

/**
 * What processes sharing one database must agree on: rate limits and who runs a sweep. With
 * SQLite there is one process, which agrees with itself in memory.
 */
export interface CoordinationRepo {
  /**
   * Takes one call from the token bucket `bucket`: a burst of `perMinute` calls, refilled
   * evenly. null when the call may proceed, else the whole seconds until one may.
   */
  takeToken(bucket: string, perMinute: number, nowMs: number): Promise<number | null>;
  /** Runs `task` unless a task of this name is running in any process; false when it did not run. */
  runAlone(name: string, task: () => Promise<void>): Promise<boolean>;
}

/** Everything a data directory's metadata holds, behind the interfaces above. */
export interface Repos {
  files: FilesRepo;
  ingestion: IngestionRepo;
  stores: StoresRepo;
  chunks: ChunksRepo;
  keys: KeysRepo;
  responses: ResponsesRepo;
  uploads: UploadsRepo;
  coordination: CoordinationRepo;
  /** Waits for writes already asked for, then closes. */
  close(): Promise<void>;
}
