import { Elysia } from "elysia";
import { RagdError } from "../../errors";
import { authenticate } from "../auth";
import type { HttpContext } from "../context";
import { readJson, readBodyText } from "../json";
import type { Tier } from "../rate-limit";
import type { Principal } from "../../services/keys";

const principals = new WeakMap<Request, Principal>();

/** The key's project, once the key is known good and within its tier's rate limit. */
async function principal(ctx: HttpContext, request: Request, tier: Tier): Promise<Principal> {
  const p = await authenticate(ctx.keys, request);
  const wait = await ctx.limiter.take(p.keyId, tier);
  if (wait !== null)
    throw new RagdError("rate_limit_exceeded", `Rate limit reached for ${tier === "uploads" ? "uploads" : "requests"} on this API key. Retry after ${wait} s.`, null, {
      "retry-after": String(wait),
    });
  return p;
}

/**
 * What a route's declaration asks for, in order: `auth` checks the key and its rate limit
 * before anything else is looked at; `jsonBody` turns the bounded body text into JSON; then
 * Elysia validates params, query and body against the route's schemas (failures become the
 * OpenAI envelope in app.ts), and the handler gets `principal`.
 */
export function contract(ctx: HttpContext) {
  return new Elysia({ name: "ragd-contract" }).macro({
    auth: (tier: Tier | false) => ({
      async transform({ request }: { request: Request }) {
        if (tier) principals.set(request, await principal(ctx, request, tier));
      },
      resolve: ({ request }: { request: Request }) => ({ principal: principals.get(request)! }),
    }),
    /** The body's size limit in bytes, or false for routes without a JSON body. */
    jsonBody: (max: number | false) => ({
      // Elysia parses before any transform runs: the parser only reads the text (within the
      // limit), and JSON.parse happens after auth, so a bad key is told so first.
      parse: max ? ({ request }: { request: Request }) => readBodyText(request, max) : undefined,
      transform(c: { body: unknown }) {
        if (max) c.body = readJson(c.body as string);
      },
    }),
  });
}
