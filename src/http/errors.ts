import { RagdError } from "../errors";

/** The OpenAI envelope for an error, with every key present and the headers that go with it. */
export function errorResponse(err: RagdError): Response {
  return new Response(JSON.stringify(err.toJSON()), {
    status: err.status,
    headers: { "content-type": "application/json", ...err.headers },
  });
}
