import { Elysia } from "elysia";
import { RagdError } from "../../errors";
import { authenticate } from "../auth";
import { routeMatched } from "../edge";
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

/** The request's principal, its key and rate limit checked once, by whichever hook asks first. */
function principalOnce(ctx: HttpContext, request: Request, tier: Tier): Promise<Principal> {
  let p = pending.get(request);
  if (!p) pending.set(request, (p = principal(ctx, request, tier)));
  return p;
}
const pending = new WeakMap<Request, Promise<Principal>>();

/**
 * What a route's declaration asks for, in order: `auth` checks the key and its rate limit
 * before anything else is looked at (for a JSON body, before a byte of it is read);
 * `jsonBody` turns the bounded body text into JSON; then Elysia validates params, query and
 * body against the route's schemas (failures become the OpenAI envelope in app.ts), and the
 * handler gets `principal`.
 */
export function contract(ctx: HttpContext) {
  return new Elysia({ name: "ragd-contract" }).macro({
    auth: (tier: Tier | false) => ({
      async transform({ request }: { request: Request }) {
        if (tier) principals.set(request, await principalOnce(ctx, request, tier));
      },
      resolve: ({ request }: { request: Request }) => ({ principal: principals.get(request)! }),
    }),
    /** The body's size limit in bytes (and what to do past it), the route's auth tier; false for routes without a JSON body. */
    jsonBody: (body: { max: number; tier: Tier | false; tooLarge?: string } | false) => ({
      // Elysia parses before any transform runs: the key is checked here first, so a client
      // without one cannot make the server read 50 MB to be told so; the parser then only
      // reads the text (within the limit), and JSON.parse happens in transform.
      parse: body
        ? async ({ request, route }: { request: Request; route: string }) => {
            // (the global transform that notes the route for /metrics comes after a refusal here)
            routeMatched(request, route);
            if (body.tier) await principalOnce(ctx, request, body.tier);
            return readBodyText(request, body.max, body.tooLarge);
          }
        : undefined,
      transform(c: { body: unknown }) {
        if (body) c.body = readJson(c.body as string);
      },
    }),
  });
}
