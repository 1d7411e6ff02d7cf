import busboy from "busboy";
import { once } from "node:events";
import type { Readable } from "node:stream";
import { StorageFullError } from "../storage/disk-space";
import type { Upload } from "../services/files";
import { ApiError, badRequest, tooLarge } from "./errors";

export interface ReceivedUpload {
  fields: Map<string, string>;
  upload: Upload;
  filename: string;
  declaredType: string;
  sha256: string;
}

const FIELD_LIMITS = { fields: 32, fieldSize: 64 * 1024, parts: 40, fieldNameSize: 200 };

/**
 * Streams a multipart body to a blob: the file part goes to disk as it arrives, so memory
 * stays flat whatever the file's size. Exactly one part named `file` is required.
 * On any failure the blob is aborted and the error says what was wrong with the request.
 */
export async function receiveUpload(request: Request, upload: Upload): Promise<ReceivedUpload> {
  try {
    return await receive(request, upload);
  } catch (e) {
    await upload.writer.abort();
    throw e;
  }
}

// Multipart framing and the small fields around a file stay well under this.
const FRAMING_ALLOWANCE = 256 * 1024;

async function receive(request: Request, upload: Upload): Promise<ReceivedUpload> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > upload.limit + FRAMING_ALLOWANCE) throw tooLarge(upload.limitReason, "file", "file_too_large");
  const ct = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\s*;.*boundary=/i.test(ct))
    throw badRequest("Expected a multipart/form-data body with a 'file' part (and optionally 'purpose' and 'expires_after').", null, "invalid_content_type");
  if (!request.body) throw badRequest("The request has no body. Send the file as a multipart 'file' part.", "file", "missing_file");

  const fields = new Map<string, string>();
  let fileSeen = false;
  let filename = "";
  let declaredType = "";
  let sha256 = "";
  let failure: Error | null = null;
  let fileStream: Readable | null = null;
  let fileDone: Promise<void> = Promise.resolve();

  const fail = (e: Error) => {
    failure ??= e;
  };

  let bb: busboy.Busboy;
  try {
    bb = busboy({ headers: { "content-type": ct }, limits: FIELD_LIMITS, defParamCharset: "utf8", preservePath: true });
  } catch {
    throw badRequest("The multipart boundary in Content-Type is missing or malformed.", null, "invalid_multipart");
  }

  bb.on("field", (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated) return fail(badRequest(`The form field '${name}' is too long.`, name, "field_too_long"));
    fields.set(name, value);
  });
  bb.on("fieldsLimit", () => fail(badRequest("Too many form fields.", null, "invalid_multipart")));
  bb.on("partsLimit", () => fail(badRequest("Too many multipart parts.", null, "invalid_multipart")));

  bb.on("file", (name, stream, info) => {
    if (name !== "file" || fileSeen || failure) {
      if (name === "file" && fileSeen) fail(badRequest("Send exactly one 'file' part per upload.", "file", "multiple_files"));
      stream.resume();
      return;
    }
    fileSeen = true;
    fileStream = stream;
    filename = decodeFormFilename(info.filename ?? "");
    declaredType = info.mimeType ?? "";
    fileDone = (async () => {
      const hasher = new Bun.CryptoHasher("sha256");
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          if (failure) continue;
          if (upload.writer.bytes + chunk.length > upload.limit) {
            fail(tooLarge(upload.limitReason, "file", "file_too_large"));
            continue;
          }
          hasher.update(chunk);
          await upload.writer.write(chunk);
        }
        sha256 = hasher.digest("hex");
      } catch (e) {
        fail(e instanceof ApiError || e instanceof StorageFullError ? e : badRequest("The file part could not be read.", "file", "invalid_multipart"));
        stream.resume();
      }
    })();
  });

  const finished = new Promise<void>((resolve) => {
    bb.on("close", resolve);
    bb.on("error", (e: Error) => {
      // Clients fix field names; what a user controls in a part header is the filename.
      if (/part header/i.test(e.message))
        fail(badRequest("A multipart part header is malformed: the filename holds characters that are not allowed (control characters). Rename the file and upload again.", "file", "invalid_filename"));
      else fail(badRequest(`Malformed multipart body: ${e.message}.`, null, "invalid_multipart"));
      resolve();
    });
  });

  // Whatever ends the body early (the client closed the connection, went silent past the
  // idle timeout, or sent a malformed form), the file part's stream is destroyed so the
  // loop writing it ends: a receiver left waiting for bytes that never come would keep the
  // blob's descriptor open forever.
  const stopFile = (why: Error) => {
    const s = fileStream as Readable | null;
    if (s && !s.readableEnded && !s.destroyed) s.destroy(why);
  };

  try {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!bb.write(value)) await Promise.race([once(bb, "drain"), finished]);
    }
    bb.end();
    await finished;
  } catch (e) {
    fail(e instanceof ApiError ? e : badRequest("The upload was interrupted before the body was complete.", "file", "upload_interrupted"));
  }
  if (failure) stopFile(failure);
  await fileDone;

  if (failure) throw failure;
  if (!fileSeen) throw badRequest("Missing the 'file' part. Send the file as multipart form field 'file'.", "file", "missing_file");
  return { fields, upload, filename, declaredType, sha256 };
}

/**
 * Browsers and fetch's FormData escape exactly three characters in a part's filename
 * (WHATWG multipart/form-data encoding): `"` as %22, CR as %0D and LF as %0A.
 */
export function decodeFormFilename(raw: string): string {
  return raw.replace(/%(22|0D|0A)/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
