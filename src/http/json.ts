import { fail, RagdError } from "../errors";
import { bodyReceived } from "./edge";

const MAX_JSON_BYTES = 4 * 1024 * 1024;
const tooLarge = () => fail("invalid_body", `The JSON body is larger than ${MAX_JSON_BYTES / 1024 / 1024} MB.`);

/**
 * The request's body as text, read within the limit. Bytes are counted as they arrive, so
 * a body without Content-Length (chunked) stops at the limit too.
 */
export async function readBodyText(request: Request): Promise<string> {
  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > MAX_JSON_BYTES) throw tooLarge();
  const text = await readCapped(request, MAX_JSON_BYTES);
  bodyReceived(request);
  return text;
}

/** The body's JSON object; an empty body is an empty object (the schema then names what is missing). */
export function readJson(text: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw fail("invalid_body", "The request body could not be parsed. Send valid JSON with Content-Type: application/json.");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw fail("invalid_body", "The JSON body must be an object.");
  return v as Record<string, unknown>;
}

async function readCapped(request: Request, max: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) {
        await reader.cancel().catch(() => {});
        throw tooLarge();
      }
      parts.push(value);
    }
  } catch (e) {
    if (e instanceof RagdError) throw e;
    throw fail("upload_interrupted", "The request was interrupted before its body was complete.");
  }
  const all = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(all);
  } catch {
    throw fail("invalid_body", "The request body is not valid UTF-8. Send JSON encoded as UTF-8.");
  }
}
