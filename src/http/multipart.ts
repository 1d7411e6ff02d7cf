import busboy from "busboy";
import { once } from "node:events";
import type { Readable } from "node:stream";
import type { Upload } from "../services/files";
import { fail, RagdError } from "../errors";

export interface ReceivedUpload {
  fields: Map<string, string>;
  upload: Upload;
  filename: string;
  declaredType: string;
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
  if (declared > upload.limit + FRAMING_ALLOWANCE) throw upload.overLimit();
  const ct = request.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data\s*;.*boundary=/i.test(ct))
    throw fail("invalid_content_type", "Expected a multipart/form-data body with a 'file' part (and optionally 'purpose' and 'expires_after').");
  if (!request.body) throw fail("missing_file", "The request has no body. Send the file as a multipart 'file' part.", "file");

  const fields = new Map<string, string>();
  let fileSeen = false;
  let filename = "";
  let declaredType = "";
  let failure: Error | null = null;
  let fileStream: Readable | null = null;
  let fileDone: Promise<void> = Promise.resolve();

  const reject = (e: Error) => {
    failure ??= e;
  };

  let bb: busboy.Busboy;
  try {
    bb = busboy({ headers: { "content-type": ct }, limits: FIELD_LIMITS, defParamCharset: "utf8", preservePath: true });
  } catch {
    throw fail("invalid_multipart", "The multipart boundary in Content-Type is missing or malformed.");
  }

  bb.on("field", (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated) return reject(fail("field_too_long", `The form field '${name}' is too long.`, name));
    fields.set(name, value);
  });
  bb.on("fieldsLimit", () => reject(fail("invalid_multipart", "Too many form fields.")));
  bb.on("partsLimit", () => reject(fail("invalid_multipart", "Too many multipart parts.")));

  bb.on("file", (name, stream, info) => {
    if (name !== "file" || fileSeen || failure) {
      if (name === "file" && fileSeen) reject(fail("multiple_files", "Send exactly one 'file' part per upload.", "file"));
      stream.resume();
      return;
    }
    fileSeen = true;
    fileStream = stream;
    filename = decodeFormFilename(info.filename ?? "");
    declaredType = info.mimeType ?? "";
    fileDone = (async () => {
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          if (failure) continue;
          if (upload.writer.bytes + chunk.length > upload.limit) {
            reject(upload.overLimit());
            continue;
          }
          await upload.writer.write(chunk);
        }
      } catch (e) {
        reject(e instanceof RagdError ? e : fail("invalid_multipart", "The file part could not be read.", "file"));
        stream.resume();
      }
    })();
  });

  const finished = new Promise<void>((resolve) => {
    bb.on("close", resolve);
    bb.on("error", (e: Error) => {
      // Clients fix field names; what a user controls in a part header is the filename.
      if (/part header/i.test(e.message))
        reject(fail("invalid_filename", "A multipart part header is malformed: the filename holds characters that are not allowed (control characters). Rename the file and upload again.", "file"));
      else reject(fail("invalid_multipart", `Malformed multipart body: ${e.message}.`));
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
    reject(e instanceof RagdError ? e : fail("upload_interrupted", "The upload was interrupted before the body was complete.", "file"));
  }
  if (failure) stopFile(failure);
  await fileDone;

  if (failure) throw failure;
  if (!fileSeen) throw fail("missing_file", "Missing the 'file' part. Send the file as multipart form field 'file'.", "file");
  return { fields, upload, filename, declaredType };
}

/**
 * Browsers and fetch's FormData escape exactly three characters in a part's filename
 * (WHATWG multipart/form-data encoding): `"` as %22, CR as %0D and LF as %0A.
 */
export function decodeFormFilename(raw: string): string {
  return raw.replace(/%(22|0D|0A)/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
