import { LocalCoordination } from "../storage/local-coordination";
import type { CoordinationRepo } from "../storage/repos";

export type Tier = "uploads" | "requests";

/**
 * A token bucket per key and tier: `perMinute` calls in a burst, refilled evenly. The buckets
 * live where the deployment's processes can all see them (storage's CoordinationRepo): in
 * memory for one process, in PostgreSQL for several.
 */
export class RateLimiter {
  constructor(
    private readonly perMinute: Record<Tier, number>,
    private readonly buckets: CoordinationRepo = new LocalCoordination(),
    private readonly clock: () => number = Date.now,
  ) {}

  /** null when the call may proceed; otherwise the seconds until it may be retried. */
  async take(keyId: string, tier: Tier): Promise<number | null> {
    const limit = this.perMinute[tier];
    if (!limit) return null;
    return this.buckets.takeToken(`${tier}:${keyId}`, limit, this.clock());
  }
}
