import { timingSafeEqual } from "node:crypto";
import type { RagdError } from "../errors";
import { hashKey } from "../services/keys";
import { bearerToken, unauthorized } from "./auth";

// /metrics names every project and what it stores. With --metrics-key it answers only a
// scraper that sends that key as a bearer token, read and compared as API keys are.

const REALM = "ragd metrics";

/** Null when the request may read /metrics, else the 401 to answer. */
export function metricsRefusal(key: string | null): (req: Request) => RagdError | null {
  if (key === null) return () => null;
  const want = hashKey(key);
  return (req) => {
    try {
      const token = bearerToken(req, { missing: "GET /metrics needs the metrics key (--metrics-key) in the Authorization header as 'Bearer <key>'.", realm: REALM });
      return timingSafeEqual(hashKey(token), want) ? null : unauthorized("Incorrect metrics key: send the key this server was started with (--metrics-key, RAGD_METRICS_KEY).", "invalid_api_key", REALM);
    } catch (e) {
      return e as RagdError;
    }
  };
}
