import { Type as T } from "@sinclair/typebox";
import { t } from "elysia";
import { extension, named, Nullable } from "./common";
import { OpenAIFile, Purpose } from "./files";

export const Upload = named(
  "Upload",
  T.Object({
    id: T.String(),
    object: T.Literal("upload"),
    bytes: T.Integer(),
    created_at: T.Integer(),
    filename: T.String(),
    purpose: T.String(),
    status: T.Union([T.Literal("pending"), T.Literal("completed"), T.Literal("cancelled"), T.Literal("expired")]),
    expires_at: T.Integer(),
    file: Nullable(OpenAIFile),
  }),
);

export const UploadPart = named(
  "UploadPart",
  T.Object({
    id: T.String(),
    object: T.Literal("upload.part"),
    created_at: T.Integer(),
    upload_id: T.String(),
  }),
);

export const CreateUploadRequest = named(
  "CreateUploadRequest",
  T.Object(
    {
      filename: T.String({ minLength: 1 }),
      purpose: extension(Purpose, "knowledge_base, user_data and evals as well, as for files"),
      bytes: T.Integer({ minimum: 1, description: "The file's size: its parts must add up to it" }),
      mime_type: T.String({ maxLength: 255 }),
      expires_after: T.Optional(
        T.Object({ anchor: T.Literal("created_at"), seconds: T.Integer({ minimum: 3600, maximum: 2592000 }) }, { description: "The expiry of the file the upload becomes" }),
      ),
    },
    { additionalProperties: false },
  ),
);

/** Documented only: the part is streamed to disk by http/multipart.ts as it arrives. */
export const AddUploadPartRequest = named("AddUploadPartRequest", T.Object({ data: T.String({ format: "binary", description: "The part's bytes, at most 64 MB" }) }));

export const CompleteUploadRequest = named(
  "CompleteUploadRequest",
  T.Object(
    {
      part_ids: T.Array(T.String(), { maxItems: 8192, description: "The upload's parts, in the order their bytes make the file" }),
      md5: T.Optional(T.String({ description: "The MD5 of the whole file, hex: checked before the file is made" })),
    },
    { additionalProperties: false },
  ),
);

export const UploadParams = t.Object({ upload_id: t.String({ description: "An upload id, `upload_` and 24 characters" }) });
