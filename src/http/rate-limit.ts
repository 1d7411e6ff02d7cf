export type Tier = "uploads" | "requests";

/**
 * A token bucket per key and tier: `perMinute` calls in a burst, refilled evenly.
 * In memory on purpose: limits protect this process, and a restart forgiving a burst is fine.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: Record<Tier, number>,
    private readonly clock: () => number = Date.now,
  ) {}

  /** null when the call may proceed; otherwise the seconds until it may be retried. */
  take(keyId: string, tier: Tier): number | null {
    const limit = this.perMinute[tier];
    if (!limit) return null;
    const now = this.clock();
    const id = `${tier}:${keyId}`;
    const rate = limit / 60_000;
    const b = this.buckets.get(id) ?? { tokens: limit, at: now };
    b.tokens = Math.min(limit, b.tokens + (now - b.at) * rate);
    b.at = now;
    this.buckets.set(id, b);
    if (this.buckets.size > 100_000) this.prune(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return null;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000));
  }

  private prune(now: number) {
    for (const [id, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(id);
  }
}
