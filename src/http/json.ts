import { fail, RagdError } from "../errors";
import { bodyReceived } from "./edge";

/** A JSON body's limit, unless its operation sets another (operation.ts `maxBodyBytes`). */
export const MAX_JSON_BYTES = 4 * 1024 * 1024;
/**
 * Chat completions, which may carry images inline (data URLs), as OpenAI takes 50 MB of them
 * in one, and store nothing. A stored response keeps its input (three ways: the request, its
 * items, the conversation), so its images come by file_id within the 4 MB.
 */
export const MAX_BODY_WITH_IMAGES = 50 * 1024 * 1024;
const tooLarge = (max: number, hint?: string) => fail("invalid_body", `The JSON body is larger than the ${max / 1024 / 1024} MB this operation takes.${hint ? ` ${hint}` : ""}`);

/**
 * The request's body as text, read within `max` bytes. Bytes are counted as they arrive, so
 * a body without Content-Length (chunked) stops at the limit too.
 */
export async function readBodyText(request: Request, max = MAX_JSON_BYTES, hint?: string): Promise<string> {
  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > max) throw tooLarge(max, hint);
  const text = await readCapped(request, max, hint);
  bodyReceived(request);
  return text;
}

// No request of the API nests deeper than a few levels (a filter tree is the deepest); past
// this, validating and describing the body would recurse once a level. A 120 KB body nested
// 20,000 deep held the event loop for 7 s and grew the server by 2.8 GB (the validator's error
// report pretty-prints the value it got, indented once a level).
const MAX_JSON_DEPTH = 64;

/** The body's JSON object; an empty body is an empty object (the schema then names what is missing). */
export function readJson(text: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  if (nestsDeeper(text, MAX_JSON_DEPTH)) throw fail("invalid_body", `The JSON body nests objects and lists more than ${MAX_JSON_DEPTH} levels deep.`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw fail("invalid_body", "The request body could not be parsed. Send valid JSON with Content-Type: application/json.");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw fail("invalid_body", "The JSON body must be an object.");
  // JSON.parse keeps "__proto__" as an own key, but copying the body onto its defaults (the
  // framework does, for operations with default values) would make it the body's prototype:
  // its fields would then pass as inherited ones, unseen by the check for unknown parameters.
  // (a key may be spelled with escapes: "\u005f_proto__" parses to the same key)
  if ((text.includes("__proto__") || text.includes("\\u")) && hasProtoKey(v)) throw fail("invalid_body", "The JSON body may not use the key '__proto__'.");
  return v as Record<string, unknown>;
}

/** Whether brackets nest past `max` levels, outside strings. */
function nestsDeeper(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function hasProtoKey(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return false;
  if (Array.isArray(v)) return v.some(hasProtoKey);
  return Object.hasOwn(v, "__proto__") || Object.values(v).some(hasProtoKey);
}

async function readCapped(request: Request, max: number, hint?: string): Promise<string> {
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
        throw tooLarge(max, hint);
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
