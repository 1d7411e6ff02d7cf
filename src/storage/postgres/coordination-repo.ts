import type { CoordinationRepo } from "../repos";
import type { Pg } from "./db";

/** Rate limits and sweeps agreed by every process on the database. */
export class PgCoordinationRepo implements CoordinationRepo {
  constructor(private readonly db: Pg) {}

  async takeToken(bucket: string, perMinute: number, nowMs: number) {
    // One statement: the bucket's row lock orders processes taking from it at once.
    const refill = `LEAST($limit::float8, rate_buckets.tokens + GREATEST(0, $now::float8 - rate_buckets.at) * $rate::float8)`;
    const r = await this.db.get<{ granted: boolean; tokens: number }>(
      `INSERT INTO rate_buckets (id, tokens, at, granted) VALUES ($id, $limit::float8 - 1, $now, TRUE)
       ON CONFLICT (id) DO UPDATE SET
         tokens = CASE WHEN ${refill} >= 1 THEN ${refill} - 1 ELSE ${refill} END,
         granted = ${refill} >= 1,
         at = GREATEST(rate_buckets.at, $now::float8)
       RETURNING granted, tokens`,
      { id: bucket, limit: perMinute, now: nowMs, rate: perMinute / 60_000 },
    );
    if (r!.granted) return null;
    return Math.max(1, Math.ceil((1 - r!.tokens) / (perMinute / 60_000) / 1000));
  }

  async runAlone(name: string, task: () => Promise<void>) {
    // A transaction-scoped advisory lock, held while the task runs on other connections of
    // the pool and let go at commit, or when a dead process's connection closes.
    let ran = false;
    return this.db
      .tx(async (tx) => {
        const got = await tx.get<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtextextended('ragd:' || $name, 0)) AS ok`, { name });
        if (!got!.ok) return false;
        await task();
        ran = true;
        return true;
      })
      .catch((e: unknown) => {
        // The lock's transaction lost its connection while the task ran (an idle timeout):
        // the task's own work is done and committed, so that is no failure of it.
        if (ran) return true;
        throw e;
      });
  }
}
