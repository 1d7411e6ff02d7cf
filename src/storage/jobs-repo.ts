import type { Database } from "bun:sqlite";

const FINISH_BATCH = 250;

/** A job cuts one file with one chunking size (ingest/chunker.ts chunkingKey). */
export interface JobKey {
  fileId: string;
  strategy: string;
}

export interface Job extends JobKey {
  filename: string;
  attempts: number;
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

export type JobOutcome =
  | { status: "processed"; format: string; text: string; chunks: ChunkRow[] }
  | { status: "error"; details: string };

/**
 * Queues a chunk set for a size other than 'auto' unless the file has it or it is under way;
 * callable inside the transaction that attaches the file to a store.
 */
export function ensureChunkSet(db: Database, fileId: string, strategy: string, nowMs: number) {
  if (strategy === "auto") return;
  // A set that failed is tried again: attaching the file again is how a user asks for that.
  // A file that could not be read at all gets no second try (its memberships show its error).
  const added = db
    .query(
      `INSERT INTO chunk_sets (file_id, strategy, status) SELECT $fileId, $strategy, 'in_progress'
       WHERE NOT EXISTS (SELECT 1 FROM files WHERE id = $fileId AND status = 'error')
       ON CONFLICT (file_id, strategy) DO UPDATE SET status = 'in_progress', details = NULL WHERE status = 'failed'`,
    )
    .run({ fileId, strategy }).changes;
  if (added)
    db.query(`INSERT OR IGNORE INTO jobs (file_id, strategy, enqueued_at, state, run_after) VALUES ($fileId, $strategy, $now, 'queued', $now)`).run({ fileId, strategy, now: nowMs });
}

/**
 * Drops the chunk sets (chunks, job, status) of these files that no live store membership asks
 * for any more; the 'auto' chunks stay with the file. Callable inside a transaction.
 */
export function pruneChunkSets(db: Database, fileIds: string[]) {
  const unused = `strategy <> 'auto' AND file_id IN (SELECT value FROM json_each($ids)) AND NOT EXISTS (
    SELECT 1 FROM vector_store_files v WHERE v.file_id = t.file_id AND v.strategy = t.strategy AND v.cancelled = 0)`;
  const ids = JSON.stringify(fileIds);
  for (const table of ["chunks", "jobs", "chunk_sets"]) db.query(`DELETE FROM ${table} AS t WHERE ${unused}`).run({ ids });
}

/**
 * The durable ingestion queue. A job is claimed with a lease that its runner renews; a
 * lease that runs out (the process died) makes the job claimable again. Every write is
 * conditional on holding the lease, so a runner that lost its job (deleted file, expired
 * lease) can never write stale results. Async for a later Postgres implementation.
 */
export interface JobsRepo {
  /**
   * Queues every file still `uploaded` that has no job (files stored before ingestion existed),
   * and every chunk set a store membership asks for that has neither chunks nor a job.
   */
  enqueueMissing(purposes: readonly string[], nowMs: number): Promise<number>;
  /** The oldest ready job with attempts left, leased to `owner`. */
  claim(owner: string, nowMs: number, leaseMs: number, maxAttempts: number): Promise<Job | null>;
  /** Extends the lease and records progress; false when the job is gone or taken. */
  heartbeat(job: JobKey, owner: string, nowMs: number, leaseMs: number, progress: string | null): Promise<boolean>;
  /**
   * Writes the result and ends the job; the status (the file's for 'auto', else the chunk
   * set's) flips in one final transaction. False when the lease was lost.
   */
  finish(job: JobKey, owner: string, outcome: JobOutcome): Promise<boolean>;
  /** Puts a job back to try later. */
  retry(job: JobKey, owner: string, runAfterMs: number, error: string): Promise<boolean>;
  /** Puts a job back without counting its run as an attempt (the server, not the file, could not go on). */
  postpone(job: JobKey, owner: string, runAfterMs: number): Promise<boolean>;
  /** Hands back this runner's jobs at shutdown so the next start takes them at once. */
  release(owner: string): Promise<void>;
  /** Jobs whose runs keep dying: turned into errors rather than claimed forever. */
  exhausted(maxAttempts: number, nowMs: number): Promise<{ fileId: string; strategy: string; lastError: string | null }[]>;
  nextRunAfter(): Promise<number | null>;
}

const THIS_JOB = `file_id = $fileId AND strategy = $strategy`;

export class SqliteJobsRepo implements JobsRepo {
  constructor(private readonly db: Database) {}

  async enqueueMissing(purposes: readonly string[], nowMs: number) {
    return this.db.transaction(() => {
      const files = this.db
        .query(
          `INSERT INTO jobs (file_id, strategy, enqueued_at, state, run_after)
           SELECT id, 'auto', $now, 'queued', $now FROM files
           WHERE status = 'uploaded' AND purpose IN (SELECT value FROM json_each($purposes)) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.file_id = files.id AND j.strategy = 'auto')`,
        )
        .run({ now: nowMs, purposes: JSON.stringify(purposes) }).changes;
      this.db
        .query(
          `INSERT OR IGNORE INTO chunk_sets (file_id, strategy, status)
           SELECT DISTINCT v.file_id, v.strategy, 'in_progress' FROM vector_store_files v JOIN files f ON f.id = v.file_id
           WHERE v.strategy <> 'auto' AND v.cancelled = 0 AND f.status <> 'error'`,
        )
        .run();
      const sets = this.db
        .query(
          `INSERT INTO jobs (file_id, strategy, enqueued_at, state, run_after)
           SELECT file_id, strategy, $now, 'queued', $now FROM chunk_sets cs
           WHERE status = 'in_progress' AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.file_id = cs.file_id AND j.strategy = cs.strategy)`,
        )
        .run({ now: nowMs }).changes;
      return files + sets;
    }).immediate();
  }

  async claim(owner: string, nowMs: number, leaseMs: number, maxAttempts: number) {
    return this.db.transaction(() => {
      const job = this.db
        .query(
          `SELECT j.file_id AS fileId, j.strategy, f.filename, j.attempts FROM jobs j JOIN files f ON f.id = j.file_id
           WHERE ((j.state = 'queued' AND j.run_after <= $now) OR (j.state = 'running' AND j.lease_until < $now)) AND j.attempts < $max
           ORDER BY j.enqueued_at, j.file_id, j.strategy LIMIT 1`,
        )
        .get({ now: nowMs, max: maxAttempts }) as Job | null;
      if (!job) return null;
      this.db
        .query(`UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $owner, lease_until = $until WHERE ${THIS_JOB}`)
        .run({ owner, until: nowMs + leaseMs, fileId: job.fileId, strategy: job.strategy });
      return { ...job, attempts: job.attempts + 1 };
    }).immediate();
  }

  async heartbeat(job: JobKey, owner: string, nowMs: number, leaseMs: number, progress: string | null) {
    const { fileId, strategy } = job;
    return this.db.transaction(() => {
      const held = this.db
        .query(`UPDATE jobs SET lease_until = $until WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`)
        .run({ until: nowMs + leaseMs, fileId, strategy, owner }).changes;
      // Only the file's own ingestion speaks in its status_details.
      if (held && progress !== null && strategy === "auto")
        this.db.query(`UPDATE files SET status_details = $progress WHERE id = $fileId AND status = 'uploaded'`).run({ progress, fileId });
      return held > 0;
    }).immediate();
  }

  async finish(job: JobKey, owner: string, outcome: JobOutcome) {
    const { fileId, strategy } = job;
    const auto = strategy === "auto";
    const held = () => this.db.query(`SELECT 1 FROM jobs WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`).get({ fileId, strategy, owner }) !== null;
    // Idempotent: whatever an earlier, interrupted run left is replaced, never duplicated.
    const clear = () => {
      this.db.query(`DELETE FROM chunks WHERE ${THIS_JOB}`).run({ fileId, strategy });
      if (auto) this.db.query(`DELETE FROM documents WHERE file_id = $fileId`).run({ fileId });
    };
    if (outcome.status === "processed") {
      // Thousands of chunks go in small transactions with the event loop free in between,
      // so a large document never stalls API requests. Each batch re-checks the lease;
      // until the final commit below the file is still `uploaded` (its chunk set
      // `in_progress`), so a crash part-way leaves nothing visible and the retry starts by
      // clearing the partial rows.
      if (!this.db.transaction(() => (held() ? (clear(), true) : false)).immediate()) return false;
      const insert = this.db.query(
        `INSERT INTO chunks (file_id, strategy, idx, text, location, char_start, char_end, tokens, embedding)
         VALUES ($fileId, $strategy, $idx, $text, $location, $charStart, $charEnd, $tokens, $embedding)`,
      );
      for (let from = 0; from < outcome.chunks.length; from += FINISH_BATCH) {
        const ok = this.db.transaction(() => {
          if (!held()) return false;
          outcome.chunks.slice(from, from + FINISH_BATCH).forEach((c, i) =>
            insert.run({ fileId, strategy, idx: from + i, text: c.text, location: JSON.stringify(c.location), charStart: c.charStart, charEnd: c.charEnd, tokens: c.tokens, embedding: c.embedding }),
          );
          return true;
        }).immediate();
        if (!ok) return false;
        await new Promise((r) => setImmediate(r));
      }
    }
    return this.db.transaction(() => {
      if (!held()) return false;
      this.db.query(`DELETE FROM jobs WHERE ${THIS_JOB}`).run({ fileId, strategy });
      if (outcome.status !== "processed") clear();
      if (!auto) {
        this.db
          .query(`UPDATE chunk_sets SET status = $status, details = $details WHERE ${THIS_JOB}`)
          .run({ fileId, strategy, status: outcome.status === "processed" ? "completed" : "failed", details: outcome.status === "processed" ? null : outcome.details });
      } else if (outcome.status === "processed") {
        this.db.query(`INSERT INTO documents (file_id, format, text) VALUES ($fileId, $format, $text)`).run({ fileId, format: outcome.format, text: outcome.text });
        this.db.query(`UPDATE files SET status = 'processed', status_details = NULL WHERE id = $fileId`).run({ fileId });
      } else {
        this.db.query(`UPDATE files SET status = 'error', status_details = $details WHERE id = $fileId`).run({ fileId, details: outcome.details });
      }
      return true;
    }).immediate();
  }

  async retry(job: JobKey, owner: string, runAfterMs: number, error: string) {
    return (
      this.db
        .query(
          `UPDATE jobs SET state = 'queued', run_after = $runAfter, lease_owner = NULL, lease_until = NULL, last_error = $error
           WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`,
        )
        .run({ runAfter: runAfterMs, error, fileId: job.fileId, strategy: job.strategy, owner }).changes > 0
    );
  }

  async postpone(job: JobKey, owner: string, runAfterMs: number) {
    return (
      this.db
        .query(
          `UPDATE jobs SET state = 'queued', run_after = $runAfter, attempts = MAX(0, attempts - 1), lease_owner = NULL, lease_until = NULL
           WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`,
        )
        .run({ runAfter: runAfterMs, fileId: job.fileId, strategy: job.strategy, owner }).changes > 0
    );
  }

  async release(owner: string) {
    // The attempt did not fail, it was interrupted by a clean stop: give it back.
    this.db
      .query(`UPDATE jobs SET state = 'queued', attempts = MAX(0, attempts - 1), lease_owner = NULL, lease_until = NULL WHERE lease_owner = $owner AND state = 'running'`)
      .run({ owner });
  }

  async exhausted(maxAttempts: number, nowMs: number) {
    return this.db.transaction(() => {
      const rows = this.db
        .query(
          `SELECT file_id AS fileId, strategy, last_error AS lastError FROM jobs
           WHERE attempts >= $max AND (state = 'queued' OR lease_until < $now)`,
        )
        .all({ max: maxAttempts, now: nowMs }) as { fileId: string; strategy: string; lastError: string | null }[];
      for (const r of rows) {
        const key = { fileId: r.fileId, strategy: r.strategy };
        this.db.query(`DELETE FROM jobs WHERE ${THIS_JOB}`).run(key);
        this.db.query(`DELETE FROM chunks WHERE ${THIS_JOB}`).run(key);
        const details = `processing failed after ${maxAttempts} attempt${maxAttempts === 1 ? "" : "s"} (${r.lastError ? `last: ${r.lastError}` : "the server stopped while parsing it"}); ${r.strategy === "auto" ? "upload" : "attach"} the file again or report it`;
        if (r.strategy === "auto") this.db.query(`UPDATE files SET status = 'error', status_details = $details WHERE id = $fileId`).run({ fileId: r.fileId, details });
        else this.db.query(`UPDATE chunk_sets SET status = 'failed', details = $details WHERE ${THIS_JOB}`).run({ ...key, details });
      }
      return rows;
    }).immediate();
  }

  async nextRunAfter() {
    const r = this.db.query(`SELECT MIN(CASE WHEN state = 'queued' THEN run_after ELSE lease_until END) AS t FROM jobs`).get() as { t: number | null };
    return r.t;
  }
}
