import type { Database } from "bun:sqlite";

const FINISH_BATCH = 250;

export interface Job {
  fileId: string;
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
 * The durable ingestion queue. A job is claimed with a lease that its runner renews; a
 * lease that runs out (the process died) makes the job claimable again. Every write is
 * conditional on holding the lease, so a runner that lost its job (deleted file, expired
 * lease) can never write stale results. Async for a later Postgres implementation.
 */
export interface JobsRepo {
  /** Queues every file still `uploaded` that has no job (files stored before ingestion existed). */
  enqueueMissing(purposes: readonly string[], nowMs: number): Promise<number>;
  /** The oldest ready job with attempts left, leased to `owner`. */
  claim(owner: string, nowMs: number, leaseMs: number, maxAttempts: number): Promise<Job | null>;
  /** Extends the lease and records progress; false when the job is gone or taken. */
  heartbeat(fileId: string, owner: string, nowMs: number, leaseMs: number, progress: string | null): Promise<boolean>;
  /** Writes the result and ends the job; the status flips in one final transaction. False when the lease was lost. */
  finish(fileId: string, owner: string, outcome: JobOutcome): Promise<boolean>;
  /** Puts a job back to try later. */
  retry(fileId: string, owner: string, runAfterMs: number, error: string): Promise<boolean>;
  /** Hands back this runner's jobs at shutdown so the next start takes them at once. */
  release(owner: string): Promise<void>;
  /** Jobs whose runs keep dying: turned into errors rather than claimed forever. */
  exhausted(maxAttempts: number, nowMs: number): Promise<{ fileId: string; lastError: string | null }[]>;
  nextRunAfter(): Promise<number | null>;
}

export class SqliteJobsRepo implements JobsRepo {
  constructor(private readonly db: Database) {}

  async enqueueMissing(purposes: readonly string[], nowMs: number) {
    return this.db
      .query(
        `INSERT INTO jobs (file_id, enqueued_at, state, run_after)
         SELECT id, $now, 'queued', $now FROM files
         WHERE status = 'uploaded' AND purpose IN (SELECT value FROM json_each($purposes)) AND id NOT IN (SELECT file_id FROM jobs)`,
      )
      .run({ now: nowMs, purposes: JSON.stringify(purposes) }).changes;
  }

  async claim(owner: string, nowMs: number, leaseMs: number, maxAttempts: number) {
    return this.db.transaction(() => {
      const job = this.db
        .query(
          `SELECT j.file_id AS fileId, f.filename, j.attempts FROM jobs j JOIN files f ON f.id = j.file_id
           WHERE ((j.state = 'queued' AND j.run_after <= $now) OR (j.state = 'running' AND j.lease_until < $now)) AND j.attempts < $max
           ORDER BY j.enqueued_at, j.file_id LIMIT 1`,
        )
        .get({ now: nowMs, max: maxAttempts }) as Job | null;
      if (!job) return null;
      this.db
        .query(`UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $owner, lease_until = $until WHERE file_id = $fileId`)
        .run({ owner, until: nowMs + leaseMs, fileId: job.fileId });
      return { ...job, attempts: job.attempts + 1 };
    }).immediate();
  }

  async heartbeat(fileId: string, owner: string, nowMs: number, leaseMs: number, progress: string | null) {
    return this.db.transaction(() => {
      const held = this.db
        .query(`UPDATE jobs SET lease_until = $until WHERE file_id = $fileId AND lease_owner = $owner AND state = 'running'`)
        .run({ until: nowMs + leaseMs, fileId, owner }).changes;
      if (held && progress !== null)
        this.db.query(`UPDATE files SET status_details = $progress WHERE id = $fileId AND status = 'uploaded'`).run({ progress, fileId });
      return held > 0;
    }).immediate();
  }

  async finish(fileId: string, owner: string, outcome: JobOutcome) {
    const held = () => this.db.query(`SELECT 1 FROM jobs WHERE file_id = $fileId AND lease_owner = $owner AND state = 'running'`).get({ fileId, owner }) !== null;
    // Idempotent: whatever an earlier, interrupted run left is replaced, never duplicated.
    const clear = () => {
      this.db.query(`DELETE FROM chunks WHERE file_id = $fileId`).run({ fileId });
      this.db.query(`DELETE FROM documents WHERE file_id = $fileId`).run({ fileId });
    };
    if (outcome.status === "processed") {
      // Thousands of chunks go in small transactions with the event loop free in between,
      // so a large document never stalls API requests. Each batch re-checks the lease;
      // until the final commit below the file is still `uploaded`, so a crash part-way
      // leaves nothing visible and the retry starts by clearing the partial rows.
      if (!this.db.transaction(() => (held() ? (clear(), true) : false)).immediate()) return false;
      const insert = this.db.query(
        `INSERT INTO chunks (file_id, strategy, idx, text, location, char_start, char_end, tokens, embedding)
         VALUES ($fileId, 'auto', $idx, $text, $location, $charStart, $charEnd, $tokens, $embedding)`,
      );
      for (let from = 0; from < outcome.chunks.length; from += FINISH_BATCH) {
        const ok = this.db.transaction(() => {
          if (!held()) return false;
          outcome.chunks.slice(from, from + FINISH_BATCH).forEach((c, i) =>
            insert.run({ fileId, idx: from + i, text: c.text, location: JSON.stringify(c.location), charStart: c.charStart, charEnd: c.charEnd, tokens: c.tokens, embedding: c.embedding }),
          );
          return true;
        }).immediate();
        if (!ok) return false;
        await new Promise((r) => setImmediate(r));
      }
    }
    return this.db.transaction(() => {
      if (!held()) return false;
      this.db.query(`DELETE FROM jobs WHERE file_id = $fileId`).run({ fileId });
      if (outcome.status === "processed") {
        this.db.query(`INSERT INTO documents (file_id, format, text) VALUES ($fileId, $format, $text)`).run({ fileId, format: outcome.format, text: outcome.text });
        this.db.query(`UPDATE files SET status = 'processed', status_details = NULL WHERE id = $fileId`).run({ fileId });
      } else {
        clear();
        this.db.query(`UPDATE files SET status = 'error', status_details = $details WHERE id = $fileId`).run({ fileId, details: outcome.details });
      }
      return true;
    }).immediate();
  }

  async retry(fileId: string, owner: string, runAfterMs: number, error: string) {
    return (
      this.db
        .query(
          `UPDATE jobs SET state = 'queued', run_after = $runAfter, lease_owner = NULL, lease_until = NULL, last_error = $error
           WHERE file_id = $fileId AND lease_owner = $owner AND state = 'running'`,
        )
        .run({ runAfter: runAfterMs, error, fileId, owner }).changes > 0
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
          `SELECT file_id AS fileId, last_error AS lastError FROM jobs
           WHERE attempts >= $max AND (state = 'queued' OR lease_until < $now)`,
        )
        .all({ max: maxAttempts, now: nowMs }) as { fileId: string; lastError: string | null }[];
      for (const r of rows) {
        this.db.query(`DELETE FROM jobs WHERE file_id = $fileId`).run({ fileId: r.fileId });
        const details = `processing failed after ${maxAttempts} attempt${maxAttempts === 1 ? "" : "s"} (${r.lastError ? `last: ${r.lastError}` : "the server stopped while parsing it"}); upload the file again or report it`;
        this.db.query(`UPDATE files SET status = 'error', status_details = $details WHERE id = $fileId`).run({ fileId: r.fileId, details });
      }
      return rows;
    }).immediate();
  }

  async nextRunAfter() {
    const r = this.db.query(`SELECT MIN(CASE WHEN state = 'queued' THEN run_after ELSE lease_until END) AS t FROM jobs`).get() as { t: number | null };
    return r.t;
  }
}
