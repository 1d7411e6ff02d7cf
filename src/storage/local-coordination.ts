import type { CoordinationRepo } from "./repos";

/**
 * Coordination for one process (the embedded SQLite deployment): token buckets in memory (a
 * restart forgiving a burst is fine) and sweeps kept from overlapping themselves.
 */
export class LocalCoordination implements CoordinationRepo {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly running = new Set<string>();

  async takeToken(bucket: string, perMinute: number, nowMs: number) {
    return takeFrom(this.buckets, bucket, perMinute, nowMs);
  }

  async runAlone(name: string, task: () => Promise<void>) {
    if (this.running.has(name)) return false;
    this.running.add(name);
    try {
      await task();
      return true;
    } finally {
      this.running.delete(name);
    }
  }
}

/** The token-bucket rule, shared with the unit tests: null, or the seconds to wait. */
export function takeFrom(buckets: Map<string, { tokens: number; at: number }>, bucket: string, perMinute: number, now: number): number | null {
  const rate = perMinute / 60_000;
  const b = buckets.get(bucket) ?? { tokens: perMinute, at: now };
  b.tokens = Math.min(perMinute, b.tokens + Math.max(0, now - b.at) * rate);
  b.at = now;
  buckets.set(bucket, b);
  if (buckets.size > 100_000) for (const [id, old] of buckets) if (now - old.at > 60_000) buckets.delete(id);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return null;
  }
  return Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
}
