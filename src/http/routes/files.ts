import { Elysia } from "elysia";
import { EMBEDDABLE, toFileObject, type CreateInput } from "../../services/files";
import { principal, type HttpContext } from "../context";
import { contentDisposition, parseRange } from "../download";
import { fail } from "../../errors";
import { receiveUpload } from "../multipart";
import { enumParam, intParam, stringParam } from "../query";

const POLL_AFTER_MS = "1000";

export function filesRoutes(ctx: HttpContext) {
  return new Elysia()
    .post(
      "/v1/files",
      async ({ request }) => {
        const p = await principal(ctx, request, "uploads");
        const declared = Number(request.headers.get("content-length") ?? 0) || 0;
        const r = await receiveUpload(request, await ctx.files.beginUpload(p.projectId, declared));
        let expiresAfter: CreateInput["expiresAfter"];
        try {
          expiresAfter = readExpiresAfter(r.fields);
        } catch (e) {
          await r.upload.writer.abort();
          throw e;
        }
        return ctx.files.create(p.projectId, r.upload, {
          filename: r.filename,
          declaredType: r.declaredType,
          purpose: r.fields.get("purpose"),
          expiresAfter,
          sha256: r.sha256,
        });
      },
      { parse: "none" },
    )
    .get("/v1/files", async ({ request, query }) => {
      const p = await principal(ctx, request, "requests");
      return ctx.files.list(p.projectId, {
        purpose: stringParam(query, "purpose"),
        after: stringParam(query, "after"),
        limit: intParam(query, "limit", 1, 10000, 10000),
        offset: intParam(query, "offset", 0, Number.MAX_SAFE_INTEGER, 0),
        order: enumParam(query, "order", ["asc", "desc"] as const, "desc"),
        withTotal: query.offset !== undefined,
      });
    })
    .get("/v1/files/:id", async ({ request, params, set }) => {
      const p = await principal(ctx, request, "requests");
      const row = await ctx.files.get(p.projectId, params.id);
      if (EMBEDDABLE.has(row.purpose) && row.status === "uploaded") set.headers["openai-poll-after-ms"] = POLL_AFTER_MS;
      return toFileObject(row);
    })
    .get("/v1/files/:id/content", async ({ request, params }) => {
      const p = await principal(ctx, request, "requests");
      const row = await ctx.files.get(p.projectId, params.id);
      const range = parseRange(request.headers.get("range"), row.bytes);
      const { body } = await ctx.files.content(p.projectId, row.id, range ?? undefined);
      const headers: Record<string, string> = {
        "content-type": row.contentType,
        "content-length": String(range ? range.end - range.start + 1 : row.bytes),
        "content-disposition": contentDisposition(row.filename),
        "accept-ranges": "bytes",
        etag: `"${row.sha256}"`,
        "x-content-type-options": "nosniff",
      };
      if (range) headers["content-range"] = `bytes ${range.start}-${range.end}/${row.bytes}`;
      return new Response(body, { status: range ? 206 : 200, headers });
    })
    .delete("/v1/files/:id", async ({ request, params }) => {
      const p = await principal(ctx, request, "requests");
      return ctx.files.delete(p.projectId, params.id);
    });
}

/** `expires_after[anchor]` + `expires_after[seconds]` (what the SDKs send) or one JSON string. */
function readExpiresAfter(fields: Map<string, string>): CreateInput["expiresAfter"] {
  const json = fields.get("expires_after");
  const anchor = fields.get("expires_after[anchor]");
  const seconds = fields.get("expires_after[seconds]");
  if (json !== undefined) {
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      throw fail("invalid_value", `expires_after must be an object such as {"anchor":"created_at","seconds":3600}.`, "expires_after");
    }
    if (v === null || typeof v !== "object" || Array.isArray(v))
      throw fail("invalid_value", `expires_after must be an object such as {"anchor":"created_at","seconds":3600}.`, "expires_after");
    const o = v as Record<string, unknown>;
    return { anchor: o.anchor, seconds: o.seconds };
  }
  if (anchor === undefined && seconds === undefined) return undefined;
  return { anchor, seconds: seconds !== undefined && /^\d+$/.test(seconds) ? Number(seconds) : seconds };
}
