import type { Failure, IngestionRepo, Job, JobKey, JobOutcome, JobRecord } from "../repos";
import { lockChunkLog, type Pg } from "./db";

// As sqlite/ingestion-repo.ts: the one module that writes jobs, documents, chunks and a file's
// status. Any process may claim any job: a claim skips rows another process has locked.

const FINISH_BATCH = 250;
const THIS_JOB = `file_id = $fileId AND cut = $cut`;
const OPEN = `state IN ('queued', 'running')`;

/**
 * Locks are taken in one order by every writer: the chunk log (db.ts), then a file's row, then
 * its jobs' rows; deleting a file locks its row before its jobs go with it.
 */
const lockFile = (tx: Pg, fileId: string) => tx.run(`SELECT 1 FROM files WHERE id = $fileId FOR NO KEY UPDATE`, { fileId });

/** Queues a new file's default cut; called in the transaction that inserts the file. */
export async function enqueueFile(tx: Pg, fileId: string, nowMs: number) {
  await tx.run(`INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) VALUES ($fileId, 'auto', 'queued', $now, $now)`, { fileId, now: nowMs });
}

/** As sqlite's ensureCut: queues a store's cut unless it exists or is under way; retries a failed one. */
export async function ensureCut(tx: Pg, fileId: string, cut: string, nowMs: number) {
  if (cut === "auto") return;
  await tx.run(
    `INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after) SELECT $fileId, $cut, 'queued', $now, $now
     WHERE NOT EXISTS (SELECT 1 FROM files WHERE id = $fileId AND status = 'error')
     ON CONFLICT (file_id, cut) DO UPDATE SET state = 'queued', attempts = 0, runs = 0, run_after = excluded.run_after, enqueued_at = excluded.enqueued_at,
       started_at = NULL, finished_at = NULL, error_code = NULL, error = NULL WHERE jobs.state = 'failed'`,
    { fileId, cut, now: nowMs },
  );
}

/** Drops the cuts (chunks and job) of these files that no live store membership asks for; the caller holds the chunk log's lock. */
export async function pruneCuts(tx: Pg, fileIds: string[]) {
  if (fileIds.length === 0) return;
  const unused = `t.cut <> 'auto' AND t.file_id = ANY($ids::text[]) AND NOT EXISTS (
    SELECT 1 FROM vector_store_files v WHERE v.file_id = t.file_id AND v.cut = t.cut AND v.cancelled = 0)`;
  for (const table of ["chunks", "jobs"]) await tx.run(`DELETE FROM ${table} t WHERE ${unused}`, { ids: fileIds });
}

const RECORD_COLS = `file_id AS "fileId", cut, state, enqueued_at::float8 AS "enqueuedAt", started_at::float8 AS "startedAt", finished_at::float8 AS "finishedAt",
  attempts, runs, error_code AS "errorCode", error`;

export class PgIngestionRepo implements IngestionRepo {
  constructor(private readonly db: Pg) {}

  enqueueMissing(purposes: readonly string[], nowMs: number) {
    return this.db.tx(async (tx) => {
      const files = await tx.run(
        `INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after)
         SELECT id, 'auto', 'queued', $now, $now FROM files
         WHERE status = 'uploaded' AND purpose = ANY($purposes::text[]) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.file_id = files.id AND j.cut = 'auto')
         ON CONFLICT DO NOTHING`,
        { now: nowMs, purposes: [...purposes] },
      );
      const cuts = await tx.run(
        `INSERT INTO jobs (file_id, cut, state, enqueued_at, run_after)
         SELECT DISTINCT v.file_id, v.cut, 'queued', $now::bigint, $now::bigint FROM vector_store_files v JOIN files f ON f.id = v.file_id
         WHERE v.cut <> 'auto' AND v.cancelled = 0 AND f.status <> 'error'
         ON CONFLICT DO NOTHING`,
        { now: nowMs },
      );
      return files + cuts;
    });
  }

  async claim(owner: string, nowMs: number, leaseMs: number, maxAttempts: number, maxRuns = Number.MAX_SAFE_INTEGER) {
    // One statement: SKIP LOCKED picks a job no other process is claiming, and the update
    // takes it, so processes claiming at once take different jobs and nobody waits.
    const job = await this.db.get<Job>(
      `UPDATE jobs SET state = 'running', runs = jobs.runs + 1, started_at = COALESCE(jobs.started_at, $now), lease_owner = $owner, lease_until = $until
       FROM (SELECT j.file_id, j.cut FROM jobs j
             WHERE j.${OPEN} AND ((j.state = 'queued' AND j.run_after <= $now) OR (j.state = 'running' AND j.lease_until < $now)) AND j.attempts < $max AND j.runs < $maxRuns
             ORDER BY j.enqueued_at, j.file_id, j.cut LIMIT 1 FOR UPDATE SKIP LOCKED) pick, files f
       WHERE jobs.file_id = pick.file_id AND jobs.cut = pick.cut AND f.id = jobs.file_id
       RETURNING jobs.file_id AS "fileId", jobs.cut, f.filename, jobs.attempts, jobs.runs`,
      { owner, now: nowMs, until: nowMs + leaseMs, max: maxAttempts, maxRuns },
    );
    return job;
  }

  async stats() {
    const rows = await this.db.all<{ state: string; n: number }>(`SELECT state, COUNT(*)::int AS n FROM jobs GROUP BY state`);
    const oldest = await this.db.get<{ at: number | null }>(`SELECT MIN(enqueued_at)::float8 AS at FROM jobs WHERE ${OPEN}`);
    return { states: Object.fromEntries(rows.map((r) => [r.state, r.n])), oldestQueuedMs: oldest!.at };
  }

  heartbeat(job: JobKey, owner: string, nowMs: number, leaseMs: number, progress: string | null) {
    const { fileId, cut } = job;
    return this.db.tx(async (tx) => {
      await lockFile(tx, fileId);
      const held = await tx.run(`UPDATE jobs SET lease_until = $until WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`, { until: nowMs + leaseMs, fileId, cut, owner });
      // Only the file's own ingestion speaks in its status_details.
      if (held && progress !== null && cut === "auto") await tx.run(`UPDATE files SET status_details = $progress WHERE id = $fileId AND status = 'uploaded'`, { progress, fileId });
      return held > 0;
    });
  }

  async finish(job: JobKey, owner: string, outcome: JobOutcome, nowMs: number) {
    const { fileId, cut } = job;
    const auto = cut === "auto";
    // The job row is locked for the rest of the transaction, so a lease cannot pass to
    // another process between this check and the commit.
    const held = async (tx: Pg) => {
      await lockFile(tx, fileId);
      return (await tx.get(`SELECT 1 FROM jobs WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running' FOR UPDATE`, { fileId, cut, owner })) !== null;
    };
    // Idempotent: whatever an earlier, interrupted run left is replaced, never duplicated.
    const clear = async (tx: Pg) => {
      await tx.run(`DELETE FROM chunks WHERE ${THIS_JOB}`, { fileId, cut });
      if (auto) await tx.run(`DELETE FROM documents WHERE file_id = $fileId`, { fileId });
    };
    if (outcome.status === "processed") {
      // As in SQLite: chunks go in batches, each re-checking the lease, the first clearing what
      // an interrupted run left; the cut is done only with the last commit, so a crash part-way
      // leaves nothing visible. A small document is one call: its chunks and its end together.
      const encode = (e: Uint8Array | null) => (e ? Buffer.from(e.buffer, e.byteOffset, e.byteLength).toString("base64") : "");
      const batches = Math.max(1, Math.ceil(outcome.chunks.length / FINISH_BATCH));
      for (let b = 0; b < batches; b++) {
        const from = b * FINISH_BATCH;
        const batch = outcome.chunks.slice(from, from + FINISH_BATCH);
        const last = b === batches - 1;
        const r = await this.db.get<{ ok: boolean }>(
          // CASE, not AND: its order is kept, so the cut is marked done only after its chunks went in.
          `SELECT CASE WHEN ragd_put_chunks($fileId, $cut, $owner, $clear, $from::int, $texts::text[], $locations::text[], $starts::int[], $ends::int[], $tokens::int[], $embeddings::text[])
             THEN ${last ? "ragd_mark_done($fileId, $cut, $owner, $now::bigint, $format, $text)" : "TRUE"} ELSE FALSE END AS ok`,
          {
            fileId,
            cut,
            owner,
            clear: b === 0,
            from,
            texts: batch.map((c) => c.text),
            locations: batch.map((c) => JSON.stringify(c.location)),
            starts: batch.map((c) => c.charStart),
            ends: batch.map((c) => c.charEnd),
            tokens: batch.map((c) => c.tokens),
            embeddings: batch.map((c) => encode(c.embedding)),
            ...(last ? { now: nowMs, format: outcome.format, text: outcome.text } : {}),
          },
        );
        if (!r?.ok) return false;
      }
      return true;
    }
    // A failure: what an earlier run left goes, and the job and file say why.
    return this.db.tx(async (tx) => {
      await lockChunkLog(tx);
      if (!(await held(tx))) return false;
      await clear(tx);
      await tx.run(
        `UPDATE jobs SET state = 'failed', finished_at = $now, lease_owner = NULL, lease_until = NULL, error_code = $code, error = $error WHERE ${THIS_JOB}`,
        { fileId, cut, now: nowMs, code: outcome.code, error: outcome.message },
      );
      if (auto) await tx.run(`UPDATE files SET status = 'error', status_details = $details WHERE id = $fileId`, { fileId, details: outcome.message });
      return true;
    });
  }

  async retry(job: JobKey, owner: string, runAfterMs: number, failure: Failure) {
    return (
      (await this.db.run(
        `UPDATE jobs SET state = 'queued', attempts = attempts + 1, run_after = $runAfter, lease_owner = NULL, lease_until = NULL, error_code = $code, error = $error
         WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`,
        { runAfter: runAfterMs, code: failure.code, error: failure.message, fileId: job.fileId, cut: job.cut, owner },
      )) > 0
    );
  }

  async postpone(job: JobKey, owner: string, runAfterMs: number) {
    return (
      (await this.db.run(
        `UPDATE jobs SET state = 'queued', runs = GREATEST(0, runs - 1), run_after = $runAfter, lease_owner = NULL, lease_until = NULL
         WHERE ${THIS_JOB} AND lease_owner = $owner AND state = 'running'`,
        { runAfter: runAfterMs, fileId: job.fileId, cut: job.cut, owner },
      )) > 0
    );
  }

  async release(owner: string) {
    // The run did not fail, a clean stop interrupted it: give it back.
    await this.db.run(`UPDATE jobs SET state = 'queued', runs = GREATEST(0, runs - 1), lease_owner = NULL, lease_until = NULL WHERE ${OPEN} AND lease_owner = $owner AND state = 'running'`, { owner });
  }

  async exhausted(maxAttempts: number, maxRuns: number, nowMs: number) {
    const spent = `${OPEN} AND (attempts >= $maxAttempts OR runs >= $maxRuns) AND (state = 'queued' OR (state = 'running' AND lease_until < $now))`;
    // Runners call this before every claim: the usual answer, none, takes no lock (the chunk
    // log's lock would queue every process's chunk commits behind this look).
    if (!(await this.db.get(`SELECT 1 FROM jobs WHERE ${spent} LIMIT 1`, { maxAttempts, maxRuns, now: nowMs }))) return [];
    return this.db.tx(async (tx) => {
      await lockChunkLog(tx);
      const candidates = await tx.all<JobKey>(`SELECT file_id AS "fileId", cut FROM jobs WHERE ${spent}`, { maxAttempts, maxRuns, now: nowMs });
      const rows: (JobKey & { attempts: number; runs: number; error: string | null })[] = [];
      for (const c of candidates) {
        // File row, then job row, as every writer takes them; then the condition again.
        await lockFile(tx, c.fileId);
        const r = await tx.get<JobKey & { attempts: number; runs: number; error: string | null }>(
          `SELECT file_id AS "fileId", cut, attempts, runs, error FROM jobs WHERE ${THIS_JOB} AND ${spent} FOR UPDATE`,
          { ...c, maxAttempts, maxRuns, now: nowMs },
        );
        if (r) rows.push(r);
      }
      for (const r of rows) {
        const key = { fileId: r.fileId, cut: r.cut };
        await tx.run(`DELETE FROM chunks WHERE ${THIS_JOB}`, key);
        const again = r.cut === "auto" ? "upload" : "attach";
        const message =
          r.attempts >= maxAttempts
            ? `processing failed after ${r.attempts} attempt${r.attempts === 1 ? "" : "s"} (last: ${r.error ?? "unknown"}); ${again} the file again or report it`
            : `processing was interrupted ${r.runs} times by the server stopping while it read this file; ${again} the file again or report it`;
        await tx.run(
          `UPDATE jobs SET state = 'failed', finished_at = $now, lease_owner = NULL, lease_until = NULL, error_code = 'server_error', error = $message WHERE ${THIS_JOB}`,
          { ...key, now: nowMs, message },
        );
        if (r.cut === "auto") await tx.run(`UPDATE files SET status = 'error', status_details = $message WHERE id = $fileId`, { fileId: r.fileId, message });
      }
      return rows.map((r) => ({ fileId: r.fileId, cut: r.cut }));
    });
  }

  async nextRunAfter() {
    return (await this.db.get<{ t: number | null }>(`SELECT MIN(CASE WHEN state = 'queued' THEN run_after ELSE lease_until END)::float8 AS t FROM jobs WHERE ${OPEN}`))!.t;
  }

  job(key: JobKey) {
    return this.db.get<JobRecord>(`SELECT ${RECORD_COLS} FROM jobs WHERE ${THIS_JOB}`, { ...key });
  }

  missingEmbeddings(limit: number) {
    return this.db.all<{ id: number; text: string }>(`SELECT id::float8 AS id, text FROM chunks WHERE embedding IS NULL ORDER BY id LIMIT $limit`, { limit });
  }

  async setEmbeddings(rows: { id: number; embedding: Uint8Array }[]) {
    if (rows.length === 0) return;
    await this.db.run(
      `UPDATE chunks c SET embedding = decode(x.b, 'base64') FROM unnest($ids::bigint[], $embeddings::text[]) AS x(id, b) WHERE c.id = x.id`,
      { ids: rows.map((r) => r.id), embeddings: rows.map((r) => Buffer.from(r.embedding.buffer, r.embedding.byteOffset, r.embedding.byteLength).toString("base64")) },
    );
  }

  async clearEmbeddings(model: string) {
    await this.db.tx(async (tx) => {
      await tx.run(`UPDATE chunks SET embedding = NULL WHERE embedding IS NOT NULL`);
      await tx.run(`INSERT INTO meta (key, value) VALUES ('embedding_model', $model) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, { model });
    });
  }
}
