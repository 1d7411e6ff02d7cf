import { badRequest } from "./errors";

const MAX_JSON_BYTES = 4 * 1024 * 1024;

/** The request's JSON object body; anything else is a 400 in the OpenAI envelope. */
export async function jsonBody(request: Request, optional = false): Promise<Record<string, unknown>> {
  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > MAX_JSON_BYTES) throw badRequest(`The JSON body is larger than ${MAX_JSON_BYTES / 1024 / 1024} MB.`, null, "invalid_body");
  const text = await request.text();
  if (text.trim() === "") {
    if (optional) return {};
    throw badRequest("The request needs a JSON body.", null, "invalid_body");
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw badRequest("The request body could not be parsed. Send valid JSON with Content-Type: application/json.", null, "invalid_body");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw badRequest("The JSON body must be an object.", null, "invalid_body");
  return v as Record<string, unknown>;
}
