import { Type as T } from "@sinclair/typebox";
import { createHash } from "node:crypto";
import { Elysia, t } from "elysia";
// The console's files, embedded in the binary as text.
// @ts-ignore -- a text import yields the file's contents
import html from "../../console/index.html" with { type: "text" };
// @ts-ignore
import js from "../../console/console.js" with { type: "text" };
// @ts-ignore
import css from "../../console/console.css" with { type: "text" };
import type { HttpContext } from "../context";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { queryParams } from "../schemas/common";

// The page carries its script and style inline (one request, not three); the CSP allows
// exactly those two by hash, and connections to this origin only.
const sha = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
const SCRIPT = js as unknown as string;
const STYLE = css as unknown as string;
const PAGE = (html as unknown as string)
  .replace('<link rel="stylesheet" href="/console/console.css">', () => `<style>${STYLE}</style>`)
  .replace('<script type="module" src="/console/console.js"></script>', () => `<script type="module">${SCRIPT}</script>`);
const CSP = `default-src 'none'; script-src ${sha(SCRIPT)}; style-src ${sha(STYLE)}; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
const page = (body: string, type: string) => () =>
  new Response(body, { headers: { "content-type": `${type}; charset=utf-8`, "content-security-policy": CSP, "cache-control": "no-cache" } });

const ChunksQuery = queryParams({
  // (bounded: SQLite refuses an OFFSET past 64-bit integers as a type mismatch)
  offset: t.Optional(t.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
});

/** The console at `/`, and the two reads it needs beyond the OpenAI API. */
export function consoleRoutes(ctx: HttpContext) {
  return new Elysia()
    .use(contract(ctx))
    .get("/", page(PAGE, "text/html"))
    .get("/console/console.js", page(SCRIPT, "text/javascript"))
    .get("/console/console.css", page(STYLE, "text/css"))
    .get("/ragd/whoami", ({ principal }) => ctx.console.whoami(principal), route({
      operationId: "ragdWhoami",
      summary: "The project of the key in use (the console shows it)",
      auth: "requests",
      response: T.Object({ object: T.Literal("ragd.session"), project: T.Object({ id: T.String(), name: T.String() }) }),
      errors: [],
    }))
    .get("/ragd/files/:file_id/chunks", ({ principal, params, query }) => ctx.console.fileChunks(principal.projectId, params.file_id, query.offset ?? 0, query.limit ?? 50), route({
      operationId: "ragdFileChunks",
      summary: "A file's chunks as search reads them, with their locations",
      auth: "requests",
      params: t.Object({ file_id: t.String() }),
      query: ChunksQuery,
      response: T.Object({
        object: T.Literal("list"),
        data: T.Array(T.Object({ index: T.Integer(), text: T.String(), tokens: T.Integer(), location: T.Record(T.String(), T.Unknown()) })),
        total: T.Integer(),
        offset: T.Integer(),
      }),
      errors: [400, 404],
    }));
}
