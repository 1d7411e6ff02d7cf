import type { Database } from "bun:sqlite";
import type { IngestionRepo, Failure, Job, JobKey, JobOutcome, JobRecord } from "../repos";

// The one module that writes jobs, documents, chunks and a file's status. Other SQLite
// repositories call the functions exported here inside their own transactions (an upload
// queues its file, attaching a file queues the cut a store asks for).

const FINISH_BATCH = 250;
const THIS_JOB = `file_id = $fileId AND cut = $cut`;
// Written as the partial indexes' own condition (jobs_ready, jobs_open_order): SQLite uses such
// an index only for a query whose WHERE holds that very term.
const OPEN = `state IN ('queued', 'running')`;

/** Queues a new file's default cut; called in the transaction that inserts the file. */
export function enqueueFile(db: Database, fileId: string, nowMs: number) {
  db.query(`INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) VALUES ($fileId, 'auto', 'queued', $now, $now)`).run({ fileId, now: nowMs });
}

/**
 * Queues the cut a store membership asks for unless it exists or is under way; a cut that
 * failed is tried again (attaching the file again is how a user asks for that). A file whose
 * default cut failed gets no other (its memberships show its error).
 */
export function ensureCut(db: Database, fileId: string, cut: string, nowMs: number) {
  if (cut === "auto") return;
  db.query(
    `INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) SELECT $fileId, $cut, 'queued', $now, $now
     WHERE NOT EXISTS (SELECT 1 FROM files WHERE id = $fileId AND status = 'error')
     ON CONFLICT (file_id, cut) DO UPDATE SET state = 'queued', attempts = 0, runs = 0, run_after = $now, enqueued_at = $now,
       started_at = NULL, finished_at = NULL, error_code = NULL, error = NULL WHERE state = 'failed'`,
  ).run({ fileId, cut, now: nowMs });
}

/**
 * Drops the cuts (chunks and job) of these files that no live store membership asks for any
 * more; the default cut stays with the file.
 */
export function pruneCuts(db: Database, fileIds: string[]) {
  const unused = `cut <> 'auto' AND file_id IN (SELECT value FROM json_each($ids)) AND NOT EXISTS (
    SELECT 1 FROM vector_store_files v WHERE v.file_id = t.file_id AND v.cut = t.cut AND v.cancelled = 0)`;
  const ids = JSON.stringify(fileIds);
  for (const table of ["chunks", "jobs"]) db.query(`DELETE FROM ${table} AS t WHERE ${unused}`).run({ ids });
}

/**
 * The next job to claim: in claim order, stopping at the first it may take. Without
 * statistics SQLite would rather gather every open job and sort them, so a claim would grow
 * with the queue (it once grew with every job ever run).
 */
const NEXT_JOB = `SELECT j.file_id AS fileId, j.cut, f.filename, j.attempts, j.runs FROM jobs j INDEXED BY jobs_open_order JOIN files f ON f.id = j.file_id
  WHERE j.${OPEN} AND ((j.state = 'queued' AND j.run_after <= $now) OR (j.state = 'running' AND j.lease_until < $now)) AND j.attempts < $max AND j.runs < $maxRuns
  ORDER BY j.enqueued_at, j.file_id, j.cut LIMIT 1`;

/** Open jobs out of attempts or runs. */
const SPENT_JOBS = `SELECT file_id AS fileId, cut, attempts, runs, error FROM jobs
  WHERE ${OPEN} AND (attempts >= $maxAttempts OR runs >= $maxRuns) AND (state = 'queued' OR (state = 'running' AND lease_until < $now))`;

const RECORD_COLS = `file_id AS fileId, cut, state, enqueued_at AS enqueuedAt, started_at AS startedAt, finished_at AS finishedAt,
  attempts, runs, error_code AS errorCode, error`;

export class SqliteIngestionRepo implements IngestionRepo {
  constructor(private readonly db: Database) {}

  async enqueueMissing(purposes: readonly string[], nowMs: number) {
    return this.db.transaction(() => {
      const files = this.db
        .query(
          `INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after)
           SELECT id, 'auto', 'queued', $now, $now FROM files
           WHERE status = 'uploaded' AND purpose IN (SELECT value FROM json_each($purposes)) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.file_id = files.id AND j.cut = 'auto')`,
        )
        .run({ now: nowMs, purposes: JSON.stringify(purposes) }).changes;
      const cuts = this.db
        .query(
          `INSERT OR IGNORE INTO jobs (file_id, cut, state, enqueued_at, run_after)
           SELECT DISTINCT v.file_id, v.cut, 'queued', $now, $now FROM vector_store_files v JOIN files f ON f.id = v.file_id
           WHERE v.cut <> 'auto' AND v.cancelled = 0 AND f.status <> 'error'`,
        )
        .run({ now: nowMs }).changes;
      return files + cuts;
    }).immediate();
  }

  async claim(owner: string, nowMs: number, leaseMs: number, maxAttempts: number, maxRuns = Number.MAX_SAFE_INTEGER) {
    return this.db.transaction(() => {
      const job = this.db.query(NEXT_JOB).get({ now: nowMs, max: maxAttempts, maxRuns }) as Job | null;
      if (!job) return null;
      this.db
        .query(
          `UPDATE jobs SET state = 'running', runs = runs + 1, started_at = COALESCE(started_at, $now), lease_owner = $owner, lease_until = $until WHERE ${THIS_JOB}`,
        )
        .run({ owner, now: nowMs, until: nowMs + leaseMs, fileId: job.fileId, cut: job.cut });
      return { ...job, runs: job.runs + 1 };
    }).immediate();
  }

  async stats() {
    const states = Object.fromEntries((this.db.query(`SELECT state, n FROM job_counts WHERE n > 0`).all() as { state: string; n: number }[]).map((r) => [r.state, r.n]));
    const oldest = this.db.query(`SELECT MIN(enqueued_at) AS at FROM jobs WHERE state IN ('queued', 'running')`).get() as { at: number | null };
    return { states, oldestQueuedMs: oldest.at };
  }

  async heartbeat(job: JobKey, owner: string, nowMs: number, leaseMs: number, progress: string | null) {
    const { fileId, cut } = job;
    return this.db.transaction(() => {
      const held = this.db
        .query(`UPDATE jobs SET lease_until = $until WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`)
        .run({ until: nowMs + leaseMs, fileId, cut, owner }).changes;
      // Only the file's own ingestion speaks in its status_details.
      if (held && progress !== null && cut === "auto")
        this.db.query(`UPDATE files SET status_details = $progress WHERE id = $fileId AND status = 'uploaded'`).run({ progress, fileId });
      return held > 0;
    }).immediate();
  }

  async finish(job: JobKey, owner: string, outcome: JobOutcome, nowMs: number) {
    const { fileId, cut } = job;
    const auto = cut === "auto";
    const held = () => this.db.query(`SELECT 1 FROM jobs WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`).get({ fileId, cut, owner }) !== null;
    // Idempotent: whatever an earlier, interrupted run left is replaced, never duplicated.
    const clear = () => {
      this.db.query(`DELETE FROM chunks WHERE ${THIS_JOB}`).run({ fileId, cut });
      if (auto) this.db.query(`DELETE FROM documents WHERE file_id = $fileId`).run({ fileId });
    };
    const insert = () =>
      this.db.query(
        `INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding)
         VALUES ($fileId, $cut, $idx, $text, $location, $charStart, $charEnd, $tokens, $embedding)`,
      );
    const insertRange = (from: number, to: number) => {
      if (outcome.status !== "processed") return;
      const q = insert();
      outcome.chunks.slice(from, to).forEach((c, i) =>
        q.run({ fileId, cut, idx: from + i, text: c.text, location: JSON.stringify(c.location), charStart: c.charStart, charEnd: c.charEnd, tokens: c.tokens, embedding: c.embedding }),
      );
    };
    const end = () => {
      const q = this.db.query(
        `UPDATE jobs SET state = $state, finished_at = $now, lease_owner = NULL, lease_until = NULL, error_code = $code, error = $error WHERE ${THIS_JOB}`,
      );
      if (outcome.status === "processed") {
        q.run({ fileId, cut, now: nowMs, state: "done", code: null, error: null });
        if (auto) {
          this.db.query(`INSERT INTO documents (file_id, format, text) VALUES ($fileId, $format, $text)`).run({ fileId, format: outcome.format, text: outcome.text });
          this.db.query(`UPDATE files SET status = 'processed', status_details = NULL WHERE id = $fileId`).run({ fileId });
        }
      } else {
        clear();
        q.run({ fileId, cut, now: nowMs, state: "failed", code: outcome.code, error: outcome.message });
        if (auto) this.db.query(`UPDATE files SET status = 'error', status_details = $details WHERE id = $fileId`).run({ fileId, details: outcome.message });
      }
    };
    // A small document (most files) commits its rows and its status at once: one commit, one
    // fsync, instead of three.
    if (outcome.status !== "processed" || outcome.chunks.length <= FINISH_BATCH)
      return this.db.transaction(() => {
        if (!held()) return false;
        if (outcome.status === "processed") {
          clear();
          insertRange(0, outcome.chunks.length);
        }
        end();
        return true;
      }).immediate();
    // Thousands of chunks go in transactions of FINISH_BATCH, so other writes (uploads'
    // commits) wait for one batch at most. Each batch re-checks the lease; until the final
    // commit below the cut is not done (the file still `uploaded`), so a crash part-way leaves
    // nothing visible and the retry starts by clearing the partial rows.
    if (!this.db.transaction(() => (held() ? (clear(), true) : false)).immediate()) return false;
    for (let from = 0; from < outcome.chunks.length; from += FINISH_BATCH) {
      const ok = this.db.transaction(() => {
        if (!held()) return false;
        insertRange(from, from + FINISH_BATCH);
        return true;
      }).immediate();
      if (!ok) return false;
      await new Promise((r) => setImmediate(r));
    }
    return this.db.transaction(() => {
      if (!held()) return false;
      end();
      return true;
    }).immediate();
  }

  async retry(job: JobKey, owner: string, runAfterMs: number, failure: Failure) {
    return (
      this.db
        .query(
          `UPDATE jobs SET state = 'queued', attempts = attempts + 1, run_after = $runAfter, lease_owner = NULL, lease_until = NULL, error_code = $code, error = $error
           WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`,
        )
        .run({ runAfter: runAfterMs, code: failure.code, error: failure.message, fileId: job.fileId, cut: job.cut, owner }).changes > 0
    );
  }

  async postpone(job: JobKey, owner: string, runAfterMs: number) {
    return (
      this.db
        .query(
          `UPDATE jobs SET state = 'queued', runs = MAX(0, runs - 1), run_after = $runAfter, lease_owner = NULL, lease_until = NULL
           WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`,
        )
        .run({ runAfter: runAfterMs, fileId: job.fileId, cut: job.cut, owner }).changes > 0
    );
  }

  async release(owner: string) {
    // The run did not fail, a clean stop interrupted it: give it back.
    this.db
      .query(`UPDATE jobs SET state = 'queued', runs = MAX(0, runs - 1), lease_owner = NULL, lease_until = NULL WHERE ${OPEN} AND lease_owner = $owner AND state = 'running'`)
      .run({ owner });
  }

  async exhausted(maxAttempts: number, maxRuns: number, nowMs: number) {
    return this.db.transaction(() => {
      const rows = this.db
        .query(SPENT_JOBS)
        .all({ maxAttempts, maxRuns, now: nowMs }) as (JobKey & { attempts: number; runs: number; error: string | null })[];
      for (const r of rows) {
        const key = { fileId: r.fileId, cut: r.cut };
        this.db.query(`DELETE FROM chunks WHERE ${THIS_JOB}`).run(key);
        const again = r.cut === "auto" ? "upload" : "attach";
        const message =
          r.attempts >= maxAttempts
            ? `processing failed after ${r.attempts} attempt${r.attempts === 1 ? "" : "s"} (last: ${r.error ?? "unknown"}); ${again} the file again or report it`
            : `processing was interrupted ${r.runs} times by the server stopping while it read this file; ${again} the file again or report it`;
        this.db
          .query(`UPDATE jobs SET state = 'failed', finished_at = $now, lease_owner = NULL, lease_until = NULL, error_code = 'server_error', error = $message WHERE ${THIS_JOB}`)
          .run({ ...key, now: nowMs, message });
        if (r.cut === "auto") this.db.query(`UPDATE files SET status = 'error', status_details = $message WHERE id = $fileId`).run({ fileId: r.fileId, message });
      }
      return rows.map((r) => ({ fileId: r.fileId, cut: r.cut }));
    }).immediate();
  }

  async nextRunAfter() {
    const r = this.db.query(`SELECT MIN(CASE WHEN state = 'queued' THEN run_after ELSE lease_until END) AS t FROM jobs WHERE ${OPEN}`).get() as { t: number | null };
    return r.t;
  }

  async job(key: JobKey) {
    return (this.db.query(`SELECT ${RECORD_COLS} FROM jobs WHERE ${THIS_JOB}`).get(key as never) as JobRecord | null) ?? null;
  }

  async missingEmbeddings(limit: number) {
    return this.db.query(`SELECT id, text FROM chunks WHERE embedding IS NULL ORDER BY id LIMIT $limit`).all({ limit }) as { id: number; text: string }[];
  }

  async setEmbeddings(rows: { id: number; embedding: Uint8Array }[]) {
    const update = this.db.query(`UPDATE chunks SET embedding = $embedding WHERE id = $id`);
    this.db.transaction(() => {
      for (const r of rows) update.run(r);
    }).immediate();
  }

  async clearEmbeddings(model: string) {
    this.db.transaction(() => {
      this.db.query(`UPDATE chunks SET embedding = NULL WHERE embedding IS NOT NULL`).run();
      this.db.query(`INSERT INTO meta (key, value) VALUES ('embedding_model', $model) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run({ model });
    }).immediate();
  }
}
