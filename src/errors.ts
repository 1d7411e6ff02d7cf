// Every error ragd reports, in one table: its code, HTTP status and OpenAI `type`. Services,
// storage and ingestion raise entries of this table by code; the HTTP layer turns them into
// the OpenAI envelope {"error":{"message","type","param","code"}}; nothing maps message text
// to a code. Ingestion outcomes (a file's `status_details`, a store file's `last_error`) use
// the same codes, each with the spec's coarser `last_error.code` it reports as.

export type ErrorType = "invalid_request_error" | "authentication_error" | "rate_limit_error" | "api_error";

/** The three codes the OpenAI spec allows in a vector store file's `last_error.code`. */
export type LastErrorCode = "server_error" | "unsupported_file" | "invalid_file";

interface Entry {
  status: number;
  type: ErrorType;
  /** What a client reads in `code`; null where OpenAI itself sends none. */
  wire?: null;
  /** For ingestion outcomes: the spec's `last_error.code` this reports as. */
  lastError?: LastErrorCode;
  /** When the server raises it, for the reference in docs/ARCHITECTURE.md. */
  doc: string;
}

const bad = (doc: string): Entry => ({ status: 400, type: "invalid_request_error", doc });

export const ERRORS = {
  // The request itself
  invalid_value: bad("A parameter's value is outside what it accepts; `param` names it."),
  missing_required_parameter: bad("A required parameter is missing."),
  unknown_parameter: bad("The body has a parameter this operation does not take."),
  invalid_body: bad("The body is not a JSON object, not UTF-8, or larger than its operation takes (4 MB; 50 MB for chat completions, which may carry images)."),
  invalid_content_type: bad("An upload that is not multipart/form-data."),
  invalid_multipart: bad("A malformed multipart body, or too many parts or fields."),
  missing_file: bad("An upload without a `file` part (an upload's part without its `data`)."),
  multiple_files: bad("An upload with more than one `file` part (or `data` part)."),
  field_too_long: bad("A multipart form field longer than 64 KB."),
  invalid_filename: bad("A filename that is empty, too long or holds control characters."),
  empty_file: bad("An upload of zero bytes."),
  invalid_file_format: bad("A file that does not fit its purpose (JSONL for batch, fine-tune, evals; an image for vision)."),
  invalid_purpose: bad("A purpose ragd does not know."),
  invalid_cursor: bad("An `after` or `before` id that was never in this list, or was deleted more than a week ago."),
  upload_interrupted: bad("The client ended the request before its body was complete."),
  upload_not_pending: bad("A part, complete or cancel for an upload (/v1/uploads) that is completed, cancelled or expired."),
  upload_busy: { status: 409, type: "invalid_request_error", doc: "A part, complete or cancel while a complete of the same upload runs; `retry-after` says when to ask again (the SDKs retry a 409)." },
  upload_size_mismatch: bad("A complete whose parts do not add up to the `bytes` the upload was created with."),
  checksum_mismatch: bad("A complete whose `md5` is not the MD5 of the parts' bytes."),
  default_vector_store: bad("The project's knowledge base cannot be deleted."),
  vector_store_expired: bad("A search in a store whose expiry has passed."),
  unknown_url: { status: 404, type: "invalid_request_error", doc: "No route has this method and path." },
  range_not_satisfiable: { status: 416, type: "invalid_request_error", doc: "A Range past the end of the file." },
  // Who is asking, and how often
  missing_api_key: { status: 401, type: "authentication_error", wire: null, doc: "No Authorization header." },
  invalid_authorization_header: { status: 401, type: "authentication_error", doc: "An Authorization header that is not `Bearer <key>`." },
  invalid_api_key: { status: 401, type: "authentication_error", doc: "A key that does not exist or was revoked." },
  rate_limit_exceeded: { status: 429, type: "rate_limit_error", doc: "The key's per-minute allowance is used; `retry-after` says when to come back." },
  // What is asked for
  // (OpenAI's own 404s say `invalid_request_error`: "No such File object: file-...", param "id")
  not_found: { status: 404, type: "invalid_request_error", wire: null, doc: "No such object in this project (another project's objects are not found either)." },
  model_not_found: { status: 404, type: "invalid_request_error", doc: "A model id this server does not serve." },
  // Size and space
  file_too_large: { status: 413, type: "invalid_request_error", lastError: "invalid_file", doc: "A file past --max-file-size; as an ingestion outcome, a document past a parse limit or the memory ceiling." },
  quota_exceeded: { status: 413, type: "invalid_request_error", doc: "An upload past the project's --project-quota." },
  insufficient_storage: { status: 507, type: "api_error", doc: "The data volume is full; deletes still work, and ragd resumes when space returns." },
  // The server and what it depends on
  database_unavailable: { status: 503, type: "api_error", doc: "The database (PostgreSQL) could not be reached, or is restarting; retry in a few seconds." },
  file_store_unavailable: { status: 503, type: "api_error", doc: "The file store (an S3 bucket) could not be reached; retry in a few seconds." },
  embedding_unavailable: { status: 503, type: "api_error", doc: "The embedding model or remote embeddings API failed; retrying may help." },
  search_unavailable: { status: 503, type: "api_error", doc: "The vector index's thread stopped and is being restarted from its saved copy; retry in a few seconds." },
  model_server_not_configured: { status: 503, type: "api_error", doc: "An answer was asked for, but no model server is configured (--llm-url or --llm-upstreams)." },
  model_server_unreachable: { status: 502, type: "api_error", doc: "The model server could not be reached, refused ragd's key, or failed (its 5xx)." },
  model_server_timeout: { status: 504, type: "api_error", doc: "The model server did not start answering, or fell silent, within --llm-timeout." },
  model_server_rejected: bad("The model server refused the request (its 4xx); the message quotes it."),
  file_not_ready: bad("An `input_file` whose file is still being processed after waiting for it."),
  previous_response_not_found: bad("A `previous_response_id` that names no stored response of this project (never stored, created with `store: false`, or deleted), as OpenAI answers it."),
  response_not_cancellable: bad("A cancel for a response that was not created with `background: true`."),
  shutting_down: { status: 503, type: "api_error", doc: "An answer cut short because the server is stopping; send it again once it is back." },
  stored_bytes_missing: { status: 500, type: "api_error", doc: "A file's or an upload part's bytes are gone from the file store (removed from the data directory or the bucket outside ragd): delete the file, or cancel the upload, and send it again." },
  internal_error: { status: 500, type: "api_error", doc: "A fault of the server; the log has the request id." },
  // How ingesting a file can end (status_details, last_error)
  invalid_file: { status: 400, type: "invalid_request_error", lastError: "invalid_file", doc: "A file that cannot be read (corrupt, encrypted, mislabelled), or one whose purpose is not indexed." },
  unsupported_file: { status: 400, type: "invalid_request_error", lastError: "unsupported_file", doc: "A format ragd does not read." },
  no_text: { status: 400, type: "invalid_request_error", lastError: "invalid_file", doc: "A document with no text to index (OCR found none either)." },
  timeout: { status: 500, type: "api_error", lastError: "server_error", doc: "A document whose parse ran past --ingest-timeout." },
  server_error: { status: 500, type: "api_error", lastError: "server_error", doc: "Ingestion failed for the server's reasons (attempts exhausted, a native library, the file's bytes gone from the file store)." },
} satisfies Record<string, Entry>;

export type ErrorCode = keyof typeof ERRORS;

/** The codes a file's ingestion can end with. */
export type IngestErrorCode = "invalid_file" | "unsupported_file" | "no_text" | "file_too_large" | "timeout" | "server_error";

export const entry = (code: ErrorCode): Entry => ERRORS[code];

/** The one error type raised on purpose anywhere in ragd. */
export class RagdError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly param: string | null = null,
    /** Response headers that go with it (retry-after, www-authenticate, content-range). */
    readonly headers: Record<string, string> = {},
    /** The code a client reads where it is not `code`: a model server's own, passed on. */
    readonly wireCode: string | null = null,
  ) {
    super(message);
  }

  get status() {
    return ERRORS[this.code].status;
  }

  toJSON() {
    const e: Entry = ERRORS[this.code];
    return { error: { message: this.message, type: e.type, param: this.param, code: this.wireCode ?? (e.wire === null ? null : this.code) } };
  }
}

export const fail = (code: ErrorCode, message: string, param: string | null = null) => new RagdError(code, message, param);

// Message templates for the errors raised in many places.

export const notFound = (what: string, id: string, param: string | null = "id") => fail("not_found", `No such ${what}: ${id}`, param);

/** `instead`: what the client meant to send, when it can be told (a part under the wrong name). */
export const unknownParameter = (name: string, instead?: string) => fail("unknown_parameter", `Unrecognized request argument supplied: ${name}${instead ? `. ${instead}` : ""}`, name);

export const missingParameter = (name: string, hint: string) => fail("missing_required_parameter", `${name} is required: ${hint}`, name);

/** Bytes the file store no longer has (its BlobMissing): `what` names them, `remedy` says what to do. */
export const bytesMissingMessage = (what: string, remedy: string) =>
  `The bytes of ${what} are missing from the file store (removed from the data directory or the bucket outside ragd). ${remedy}`;

export const internalError = () =>
  fail("internal_error", "The server had an error while processing your request. Try again; if it persists, check the ragd logs.");
