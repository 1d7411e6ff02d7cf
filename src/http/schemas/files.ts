import { Type as T } from "@sinclair/typebox";
import { t } from "elysia";
import { OUTPUT_PURPOSES, PURPOSES } from "../../services/files";
import { deleted, extension, ListPage, named, Nullable, order, queryParams } from "./common";

export const Purpose = T.Union(
  PURPOSES.map((p) => T.Literal(p)),
  { description: "`knowledge_base` (a ragd extension) and `assistants` mean the same. `batch`, `fine-tune` and `evals` need a .jsonl file of JSON objects; `vision` an image" },
);

export const OpenAIFile = named(
  "OpenAIFile",
  T.Object({
    id: T.String(),
    object: T.Literal("file"),
    bytes: T.Integer(),
    created_at: T.Integer(),
    expires_at: Nullable(T.Integer()),
    filename: T.String(),
    purpose: Purpose,
    status: T.Union([T.Literal("uploaded"), T.Literal("processed"), T.Literal("error")], {
      description: "`uploaded` while an indexed file is parsed and embedded, then `processed`, or `error` with the reason in status_details",
    }),
    status_details: Nullable(T.String({ description: "Progress while `uploaded` (\"parsing page 3 of 40\"), the reason when `error`" })),
  }),
);

/** Documented only: the multipart body is streamed to disk by http/multipart.ts as it arrives. */
export const CreateFileRequest = named(
  "CreateFileRequest",
  T.Object({
    file: T.String({ format: "binary" }),
    purpose: T.Optional(extension({ ...Purpose, default: "knowledge_base" }, "optional; files without a purpose join the knowledge base")),
    expires_after: T.Optional(
      named(
        "FileExpirationAfter",
        T.Object(
          { anchor: T.Literal("created_at"), seconds: T.Integer({ minimum: 3600, maximum: 2592000 }) },
          { description: "Sent as the form fields expires_after[anchor] and expires_after[seconds] (what the SDKs send), or as one JSON string" },
        ),
      ),
    ),
  }),
);

export const ListFilesQuery = queryParams({
  purpose: t.Optional(t.Union([...PURPOSES, ...OUTPUT_PURPOSES].map((p) => t.Literal(p)), { description: "Only files with this purpose (the purposes of files OpenAI's services write are accepted too, and list nothing: ragd writes none)" })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 10000, default: 10000 })),
  order: t.Optional(order()),
  after: t.Optional(t.String({ minLength: 1, description: "A file id: list the files after it" })),
  offset: t.Optional(extension(t.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), "skip this many files; applies to the first page only (ignored with `after`), and the page then says `total`")),
});

export const ListFilesResponse = named(
  "ListFilesResponse",
  ListPage(OpenAIFile, { total: T.Optional(extension(T.Integer(), "with `offset`: how many files match the filter")) }),
);

export const FileIdParams = t.Object({ file_id: t.String({ description: "A file id, `file-` and 24 characters" }) });

export const DeleteFileResponse = named("DeleteFileResponse", deleted("file"));
