import type { Server } from "bun";
import { newRequestId } from "../util/ids";
import { log } from "../util/log";
import { metrics } from "../metrics";
import { internalError, RagdError } from "../errors";
import { errorResponse } from "./errors";

// What every response gets on its way out, whatever route (or no route) answered it: a
// request id, CORS headers and an access-log line. Routes stay unaware of all three.

const EXPOSED = "x-request-id, openai-poll-after-ms, retry-after, content-disposition, content-range, etag";
const METHODS = "GET, POST, DELETE, OPTIONS";
const INCOMING_ID = /^[A-Za-z0-9._:-]{1,128}$/;

interface RequestInfo {
  id: string;
  server: Server<unknown>;
  /** The request as Bun received it (its idle timer is kept by that object). */
  original: Request;
  /** The route template that matched (for /metrics); unset when none did. */
  route?: string;
}
const requests = new WeakMap<Request, RequestInfo>();

/** The id of a request (`x-request-id` on its response), for log lines about it. */
export const requestId = (r: Request) => requests.get(r)?.id ?? null;

/** Notes which route template served a request: metrics count by template, not by id. */
export function routeMatched(r: Request, route: string) {
  const info = requests.get(r);
  // As the docs write them: /v1/files/{file_id}, no trailing slash.
  if (info) info.route = route.replace(/:(\w+)/g, "{$1}").replace(/(.)\/$/, "$1");
}

/**
 * The request's body has been read: from now on the server works for the client, which may
 * rightly wait in silence (a large embedding batch), so the idle timeout no longer applies.
 */
export function bodyReceived(r: Request) {
  const info = requests.get(r);
  info?.server.timeout(info.original, 0);
}

export interface EdgeOptions {
  hostname: string;
  port: number;
  idleTimeoutSeconds: number;
  /** "*" or a comma-separated list of origins. */
  corsOrigins: string;
}

export class PortInUse extends Error {}

/** Serves `handle` (the Elysia app) on one port that no other process may share. */
export function serve(handle: (r: Request) => Promise<Response>, o: EdgeOptions): Server<unknown> {
  const cors = corsPolicy(o.corsOrigins);
  try {
    return Bun.serve({
      hostname: o.hostname,
      port: o.port,
      // A second server on this port must fail, not split the traffic with the first.
      reusePort: false,
      // Silent clients (mid-headers or mid-body) are cut after this; see bodyReceived.
      idleTimeout: o.idleTimeoutSeconds,
      // Bun's own cap answers in plain text; ours answers with the OpenAI envelope, so
      // Bun's is out of the way and the body readers enforce their limits as bytes arrive.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      development: false,
      async fetch(request, server) {
        const started = performance.now();
        const incoming = request.headers.get("x-request-id");
        const id = incoming && INCOMING_ID.test(incoming) ? incoming : newRequestId();
        const info: RequestInfo = { id, server, original: request };
        requests.set(request, info);
        let response: Response;
        const preflight = cors.preflight(request);
        if (preflight) response = preflight;
        else {
          try {
            const routed = routable(request);
            if (routed !== request) requests.set(routed, info);
            response = await handle(routed);
          } catch (e) {
            log.error("unhandled error", { request_id: id, error: (e as Error)?.stack ?? String(e) });
            response = errorResponse(e instanceof RagdError ? e : internalError());
          }
        }
        response = withHeaders(response, id, preflight ? [] : cors.headers(request));
        const ms = performance.now() - started;
        if (log.enabled("info")) log.info("request", { method: request.method, path: new URL(request.url).pathname, status: response.status, ms: Math.round(ms), request_id: id });
        metrics.request(request.method, info.route ?? (preflight ? "preflight" : "unmatched"), response.status, ms / 1000);
        return response;
      },
      error(e) {
        log.error("unhandled error", { error: e?.stack ?? String(e) });
        return errorResponse(internalError());
      },
    });
  } catch (e) {
    const code = (e as { code?: string })?.code;
    if (code === "EADDRINUSE" || /in use/i.test(String((e as Error)?.message)))
      throw new PortInUse(`port ${o.port} on ${o.hostname} is already in use (another ragd, or another program, listens there); stop it or start with --port`);
    throw e;
  }
}

/**
 * The request as the routes read it. Elysia finds the path by looking for the first "/" from
 * the 12th character of the URL, which cuts into the path when the Host is under four
 * characters ("http://kb/v1/files", a sidecar reached by a short service name): such a request
 * is re-addressed to a long host. Query arrays sent with brackets lose them. A model id with
 * slashes (`meta-llama/Llama-3.1-8B`, as openai-python sends it, unescaped) is one segment.
 */
function routable(request: Request): Request {
  let url = request.url;
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  const shortHost = slash >= 0 && slash < 11;
  if (shortHost) url = `http://ragd.local${url.slice(slash)}`;
  const query = url.indexOf("?");
  const arrays = query >= 0 && BRACKETS.test(url.slice(query));
  if (arrays) url = withPlainArrayKeys(url, query);
  const model = modelPathWithSlashes(url);
  if (model) url = model;
  return shortHost || arrays || model ? new Request(url, request) : request;
}

const MODEL_PATH = "/v1/models/";

/** `/v1/models/a/b` as `/v1/models/a%2Fb`; null for any other URL. */
function modelPathWithSlashes(url: string): string | null {
  const start = url.indexOf(MODEL_PATH, url.indexOf("//") + 2);
  if (start < 0) return null;
  const from = start + MODEL_PATH.length;
  const end = url.indexOf("?", from) < 0 ? url.length : url.indexOf("?", from);
  const id = url.slice(from, end);
  if (!id.includes("/") || url.slice(url.indexOf("/", url.indexOf("//") + 2), start) !== "") return null;
  return `${url.slice(0, from)}${id.replaceAll("/", "%2F")}${url.slice(end)}`;
}

// The SDKs send a query array as `include[]=a&include[]=b` (qs's "brackets" format), which
// the routes' schemas know as `include=a&include=b`.
const BRACKETS = /(?:\[\]|%5B%5D)=/i;

function withPlainArrayKeys(url: string, query: number): string {
  const params = new URLSearchParams(url.slice(query + 1));
  const plain = new URLSearchParams();
  for (const [k, v] of params) plain.append(k.endsWith("[]") ? k.slice(0, -2) : k, v);
  return `${url.slice(0, query)}?${plain.toString()}`;
}

function withHeaders(r: Response, id: string, extra: [string, string][]): Response {
  let res = r;
  try {
    res.headers.set("x-request-id", id);
  } catch {
    // Immutable headers (a shared Response): copy it once.
    res = new Response(r.body, r);
    res.headers.set("x-request-id", id);
  }
  for (const [k, v] of extra) res.headers.set(k, v);
  return res;
}

/**
 * Browsers send a Bearer key in a header, never a cookie, so no credentials mode is needed:
 * with "*" every origin gets `*` (cacheable, no Vary); with a list, an allowed origin is
 * echoed back with `Vary: Origin`.
 */
function corsPolicy(setting: string) {
  const any = setting.trim() === "*";
  const allowed = new Set(any ? [] : setting.split(",").map((s) => s.trim().replace(/\/$/, "")).filter(Boolean));
  const allowOrigin = (request: Request): string | null => {
    const origin = request.headers.get("origin");
    if (any) return "*";
    return origin && allowed.has(origin) ? origin : null;
  };
  return {
    headers(request: Request): [string, string][] {
      const origin = allowOrigin(request);
      const out: [string, string][] = any ? [] : [["vary", "Origin"]];
      if (origin) out.push(["access-control-allow-origin", origin], ["access-control-expose-headers", EXPOSED]);
      return out;
    },
    preflight(request: Request): Response | null {
      if (request.method !== "OPTIONS" || !request.headers.get("origin") || !request.headers.get("access-control-request-method")) return null;
      const headers: Record<string, string> = { "access-control-max-age": "600", vary: any ? "Access-Control-Request-Headers" : "Origin, Access-Control-Request-Headers" };
      const origin = allowOrigin(request);
      if (origin) {
        headers["access-control-allow-origin"] = origin;
        headers["access-control-allow-methods"] = METHODS;
        headers["access-control-allow-headers"] = request.headers.get("access-control-request-headers") ?? "authorization, content-type";
      }
      return new Response(null, { status: 204, headers });
    },
  };
}
