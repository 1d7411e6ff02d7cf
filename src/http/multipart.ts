import type { Upload } from "../services/files";
import { fail, RagdError, unknownParameter } from "../errors";
import { boundaryOf, MultipartError, MultipartParser } from "./multipart-parser";

export interface ReceivedUpload {
  fields: Map<string, string>;
  upload: Upload;
  filename: string;
  declaredType: string;
}

const LIMITS = { fields: 32, fieldBytes: 64 * 1024, parts: 40, fieldNameBytes: 200 };

/**
 * Streams a multipart body to a blob: the file part goes to disk as it arrives, so memory
 * stays flat whatever the file's size. Exactly one part named `field` is required: `file` with
 * a filename (POST /v1/files), or an upload's part `data` (with a filename or without).
 * A part named anything but `field` or one of `fields` is refused as it begins (a misspelt
 * `purpose` or `expires_after` would otherwise be dropped and the file stored under defaults).
 * On any failure the blob is aborted and the error says what was wrong with the request.
 */
export async function receiveUpload(request: Request, upload: Upload, field: "file" | "data", fields: readonly string[]): Promise<ReceivedUpload> {
  try {
    return await receive(request, upload, field, new Set(fields));
  } catch (e) {
    await upload.writer.abort();
    throw e;
  }
}

// Multipart framing and the small fields around a file stay well under this.
const FRAMING_ALLOWANCE = 256 * 1024;
// After a refusal the body is read on for this much, so that a client still sending gets the
// answer rather than a reset connection; past it, reading stops (a body may be endless).
const DRAIN_AFTER_FAILURE = 8 * 1024 * 1024;

async function receive(request: Request, upload: Upload, field: "file" | "data", known: ReadonlySet<string>): Promise<ReceivedUpload> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > upload.limit + FRAMING_ALLOWANCE) throw upload.overLimit();
  const ct = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\s*;/i.test(ct))
    throw fail("invalid_content_type", field === "file" ? "Expected a multipart/form-data body with a 'file' part (and optionally 'purpose' and 'expires_after')." : "Expected a multipart/form-data body with a 'data' part holding the part's bytes.");
  const boundary = boundaryOf(ct);
  if (!boundary) throw fail("invalid_multipart", "The multipart boundary in Content-Type is missing or malformed.");
  if (!request.body) throw fail("missing_file", `The request has no body. Send the ${field === "file" ? "file" : "part's bytes"} as a multipart '${field}' part.`, field);

  const parser = new MultipartParser(boundary);
  const fields = new Map<string, string>();
  let fileSeen = false;
  let filename = "";
  let declaredType = "";
  let parts = 0;
  // The part being read: the file, a small field (its bytes gathered), or one that is ignored.
  let part: { kind: "file" } | { kind: "field"; name: string; bytes: Uint8Array[]; size: number } | { kind: "skip" } = { kind: "skip" };
  let failure: Error | null = null;
  let drained = 0;

  const reader = request.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (failure) {
        drained += value.length;
        if (drained > DRAIN_AFTER_FAILURE) {
          void reader.cancel().catch(() => {});
          break;
        }
        continue;
      }
      try {
        for (const ev of parser.push(value)) {
          if (ev.type === "part") {
            if (++parts > LIMITS.parts) throw fail("invalid_multipart", "Too many multipart parts.");
            const { name, filename: partFilename, contentType } = ev.head;
            if (name !== field && !known.has(name))
              throw unknownParameter(name, partFilename === undefined ? undefined : `Send the ${field === "file" ? "file" : "part's bytes"} as multipart form field '${field}'.`);
            if (partFilename !== undefined || (name === field && field === "data")) {
              if (name !== field) throw fail("invalid_value", `The form field '${name}' takes a value, not a file.`, name);
              else if (fileSeen) throw fail("multiple_files", `Send exactly one '${field}' part per request.`, field);
              else {
                fileSeen = true;
                filename = partFilename ?? "";
                declaredType = contentType;
                part = { kind: "file" };
              }
            } else {
              if (fields.size >= LIMITS.fields) throw fail("invalid_multipart", "Too many form fields.");
              if (Buffer.byteLength(name) > LIMITS.fieldNameBytes) throw fail("field_too_long", `The form field name '${name.slice(0, 40)}…' is too long.`, name);
              part = { kind: "field", name, bytes: [], size: 0 };
            }
          } else if (ev.type === "data") {
            if (part.kind === "file") {
              if (upload.writer.bytes + ev.bytes.length > upload.limit) throw upload.overLimit();
              await upload.writer.write(ev.bytes);
            } else if (part.kind === "field") {
              part.size += ev.bytes.length;
              if (part.size > LIMITS.fieldBytes) throw fail("field_too_long", `The form field '${part.name}' is too long.`, part.name);
              // A copy: the chunk is the body reader's.
              part.bytes.push(ev.bytes.slice());
            }
          } else {
            if (part.kind === "field") {
              // (which of two values was meant cannot be told: neither is taken)
              if (fields.has(part.name)) throw fail("invalid_value", `The form field '${part.name}' is sent more than once; send it once.`, part.name);
              fields.set(part.name, Buffer.concat(part.bytes).toString("utf8"));
            }
            part = { kind: "skip" };
          }
        }
      } catch (e) {
        failure = e instanceof RagdError ? e : e instanceof MultipartError ? fail("invalid_multipart", `Malformed multipart body: ${e.message}.`) : (e as Error);
      }
    }
  } catch {
    // A client that leaves after its upload was refused learns of the refusal, if it listens.
    throw failure ?? fail("upload_interrupted", "The upload was interrupted before the body was complete.", field);
  }
  if (failure) throw failure;
  try {
    parser.end();
  } catch (e) {
    throw fail("invalid_multipart", `Malformed multipart body: ${(e as Error).message}.`);
  }
  if (!fileSeen)
    throw fail("missing_file", field === "file" ? "Missing the 'file' part. Send the file as multipart form field 'file'." : "Missing the 'data' part. Send the part's bytes as multipart form field 'data'.", field);
  return { fields, upload, filename, declaredType };
}


