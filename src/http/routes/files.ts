import { Elysia } from "elysia";
import { fail } from "../../errors";
import { EMBEDDABLE, toFileObject, type CreateInput } from "../../services/files";
import type { HttpContext } from "../context";
import { contentDisposition, parseRange } from "../download";
import { receiveUpload } from "../multipart";
import { route } from "../operation";
import { pollWhile } from "../poll";
import { contract } from "../plugins/contract";
import { CreateFileRequest, DeleteFileResponse, FileIdParams, ListFilesQuery, ListFilesResponse, OpenAIFile } from "../schemas/files";

// The form fields POST /v1/files takes beside `file` (`expires_after` as JSON, or bracketed as the SDKs send it).
const FILE_FIELDS = ["purpose", "expires_after", "expires_after[anchor]", "expires_after[seconds]"];

export function filesRoutes(ctx: HttpContext) {
  return new Elysia()
    .use(contract(ctx))
    .post(
      "/v1/files",
      async ({ request, principal }) => {
        const declared = Number(request.headers.get("content-length") ?? 0) || 0;
        const r = await receiveUpload(request, await ctx.files.beginUpload(principal.projectId, declared), "file", FILE_FIELDS);
        let expiresAfter: CreateInput["expiresAfter"];
        try {
          expiresAfter = readExpiresAfter(r.fields);
        } catch (e) {
          await r.upload.writer.abort();
          throw e;
        }
        return ctx.files.create(principal.projectId, r.upload, {
          filename: r.filename,
          declaredType: r.declaredType,
          purpose: r.fields.get("purpose"),
          expiresAfter,
        });
      },
      route({
        operationId: "createFile",
        summary: "Upload a file",
        description: "Indexed purposes (knowledge_base, assistants, user_data) are parsed, embedded and join the project's knowledge base; `status` moves from `uploaded` to `processed` or `error`.",
        auth: "uploads",
        multipart: CreateFileRequest,
        response: OpenAIFile,
        errors: [400, 413, 507],
      }),
    )
    .get(
      "/v1/files",
      async ({ principal, query }) =>
        new Response(
          await ctx.files.listJson(principal.projectId, {
            purpose: query.purpose,
            after: query.after,
            limit: query.limit ?? 10000,
            offset: query.offset ?? 0,
            order: query.order ?? "desc",
            withTotal: query.offset !== undefined,
          }),
          { headers: { "content-type": "application/json" } },
        ),
      route({ operationId: "listFiles", summary: "List files", auth: "requests", query: ListFilesQuery, response: ListFilesResponse, errors: [400] }),
    )
    .get(
      "/v1/files/:file_id",
      async ({ principal, params, set }) => {
        const row = await ctx.files.get(principal.projectId, params.file_id);
        pollWhile(set, EMBEDDABLE.has(row.purpose) && row.status === "uploaded");
        return toFileObject(row);
      },
      route({ operationId: "retrieveFile", summary: "Retrieve a file", auth: "requests", params: FileIdParams, response: OpenAIFile, errors: [404] }),
    )
    .get(
      "/v1/files/:file_id/content",
      async ({ request, principal, params }) => {
        const row = await ctx.files.get(principal.projectId, params.file_id);
        const range = parseRange(request.headers.get("range"), row.bytes);
        const { body } = await ctx.files.content(principal.projectId, row.id, range ?? undefined);
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
      },
      route({
        operationId: "downloadFile",
        summary: "Download a file's exact bytes",
        description: "A single `Range: bytes=...` header is honoured (206).",
        auth: "requests",
        params: FileIdParams,
        response: { contentType: "application/octet-stream", description: "The bytes, with the type they were uploaded as" },
        errors: [404, 416],
      }),
    )
    .delete(
      "/v1/files/:file_id",
      ({ principal, params }) => ctx.files.delete(principal.projectId, params.file_id),
      route({ operationId: "deleteFile", summary: "Delete a file, its bytes and everything derived from it", auth: "requests", params: FileIdParams, response: DeleteFileResponse, errors: [404] }),
    );
}

/** `expires_after[anchor]` + `expires_after[seconds]` (what the SDKs send) or one JSON string. */
function readExpiresAfter(fields: Map<string, string>): CreateInput["expiresAfter"] {
  const json = fields.get("expires_after");
  const anchor = fields.get("expires_after[anchor]");
  const seconds = fields.get("expires_after[seconds]");
  if (json !== undefined) {
    if (anchor !== undefined || seconds !== undefined)
      throw fail("invalid_value", "Send expires_after once: as JSON, or as expires_after[anchor] and expires_after[seconds], not both.", "expires_after");
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
