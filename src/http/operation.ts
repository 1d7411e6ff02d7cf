import type { TSchema } from "@sinclair/typebox";
import { MAX_JSON_BYTES } from "./json";
import type { Tier } from "./rate-limit";

/**
 * One route's contract, declared once: Elysia validates the request with these schemas
 * (http/plugins/contract.ts and app.ts turn a failure into the OpenAI envelope) and
 * /openapi.json is generated from them (http/openapi.ts).
 */
export interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  /** The rate-limit tier of the key it needs; false for public routes. */
  auth: Tier | false;
  params?: TSchema;
  query?: TSchema;
  /** A JSON body, read within the size limit and validated. */
  body?: TSchema;
  /** The body's limit, where it is not json.ts's 4 MB (requests that carry images inline). */
  maxBodyBytes?: number;
  /** What to do instead, told to a client whose body is past the limit. */
  tooLarge?: string;
  /** A body the handler reads itself (a streamed upload), for the docs only. */
  multipart?: TSchema;
  /** The 200 response's JSON, or a content type and description for other bodies. */
  response: TSchema | { contentType: string; description: string };
  /** When `stream: true` answers with server-sent events: what they are, for the docs. */
  events?: string;
  /** Error statuses it can answer, besides 401 and 429 for authenticated routes. */
  errors: number[];
}

type Field<O, K extends string> = O extends { [P in K]: infer S extends TSchema } ? S : undefined;

/** Elysia hook options for an operation: its schemas, its auth tier, and the operation itself for the docs. */
export function route<const O extends Operation>(o: O) {
  return {
    params: o.params as Field<O, "params">,
    query: o.query as Field<O, "query">,
    body: o.body as Field<O, "body">,
    jsonBody: o.body === undefined ? (false as const) : { max: o.maxBodyBytes ?? MAX_JSON_BYTES, tier: o.auth as Tier | false, tooLarge: o.tooLarge },
    parse: (o.multipart ? "none" : undefined) as "none" | undefined,
    auth: o.auth as O["auth"],
    detail: { operation: o as Operation } as Record<string, unknown>,
  };
}
