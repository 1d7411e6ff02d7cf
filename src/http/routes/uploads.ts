import { Elysia } from "elysia";
import type { HttpContext } from "../context";
import { receiveUpload } from "../multipart";
import { route } from "../operation";
import { contract } from "../plugins/contract";
import { AddUploadPartRequest, CompleteUploadRequest, CreateUploadRequest, Upload, UploadParams, UploadPart } from "../schemas/uploads";

export function uploadsRoutes(ctx: HttpContext) {
  return new Elysia()
    .use(contract(ctx))
    .post(
      "/v1/uploads",
      ({ principal, body }) =>
        ctx.uploads.create(principal.projectId, { filename: body.filename, purpose: body.purpose, bytes: body.bytes, mimeType: body.mime_type, expiresAfter: body.expires_after }),
      route({
        operationId: "createUpload",
        summary: "Start a file sent in parts",
        description: "The upload takes parts for an hour; completing it makes one file of them, which goes the way of any upload.",
        auth: "requests",
        body: CreateUploadRequest,
        response: Upload,
        errors: [400, 413],
      }),
    )
    .post(
      "/v1/uploads/:upload_id/parts",
      async ({ request, principal, params }) => {
        const declared = Number(request.headers.get("content-length") ?? 0) || 0;
        const r = await receiveUpload(request, await ctx.uploads.beginPart(principal.projectId, params.upload_id, declared), "data", []);
        return ctx.uploads.addPart(principal.projectId, params.upload_id, r.upload);
      },
      route({ operationId: "addUploadPart", summary: "Add a part to an upload", auth: "uploads", params: UploadParams, multipart: AddUploadPartRequest, response: UploadPart, errors: [400, 404, 409, 413, 507] }),
    )
    .post(
      "/v1/uploads/:upload_id/complete",
      ({ principal, params, body }) => ctx.uploads.complete(principal.projectId, params.upload_id, body.part_ids, body.md5),
      route({
        operationId: "completeUpload",
        summary: "Make the file of an upload's parts",
        description: "The parts in the order listed must add up to the upload's bytes; the answer's `file` is the new file. Asked again once completed, it answers the same. 409 while another complete of the upload runs.",
        auth: "uploads",
        params: UploadParams,
        body: CompleteUploadRequest,
        response: Upload,
        errors: [400, 404, 409, 413, 507],
      }),
    )
    .post(
      "/v1/uploads/:upload_id/cancel",
      ({ principal, params }) => ctx.uploads.cancel(principal.projectId, params.upload_id),
      route({ operationId: "cancelUpload", summary: "Cancel an upload and drop its parts", auth: "requests", params: UploadParams, response: Upload, errors: [400, 404, 409] }),
    );
}
