import type { Config } from "../config";
import type { DiskSpace } from "../storage/disk-space";
import type { EmbeddingsService } from "../services/embeddings";
import type { FilesService } from "../services/files";
import type { VectorStoresService } from "../services/vector-stores";
import type { KeysService, Principal } from "../services/keys";
import { authenticate } from "./auth";
import { RagdError } from "../errors";
import type { RateLimiter, Tier } from "./rate-limit";

/** What routes need: services, plus the guard every /v1 handler calls first. */
export interface HttpContext {
  config: Config;
  files: FilesService;
  keys: KeysService;
  vectorStores: VectorStoresService;
  embeddings: EmbeddingsService;
  limiter: RateLimiter;
  /** The data volume's free space; null when not watched (tests that build the app alone). */
  disk: DiskSpace | null;
}

export async function principal(ctx: HttpContext, request: Request, tier: Tier): Promise<Principal> {
  const p = await authenticate(ctx.keys, request);
  const wait = ctx.limiter.take(p.keyId, tier);
  if (wait !== null)
    throw new RagdError("rate_limit_exceeded", `Rate limit reached for ${tier === "uploads" ? "uploads" : "requests"} on this API key. Retry after ${wait} s.`, null, {
      "retry-after": String(wait),
    });
  return p;
}
