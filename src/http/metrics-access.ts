import { createHash, timingSafeEqual } from "node:crypto";
import { RagdError } from "../errors";

// /metrics names every project and what it stores. With --metrics-key it answers only a
// scraper that sends that key as a bearer token (compared by digest, in constant time).

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Null when the request may read /metrics, else the 401 to answer. */
export function metricsRefusal(key: string | null): (req: Request) => RagdError | null {
  if (key === null) return () => null;
  const want = digest(key);
  return (req) => {
    const m = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "");
    if (m && timingSafeEqual(digest(m[1]!), want)) return null;
    return new RagdError(m ? "invalid_api_key" : "missing_api_key", "GET /metrics needs the metrics key (--metrics-key) as a bearer token.", null, { "www-authenticate": 'Bearer realm="ragd metrics"' });
  };
}
