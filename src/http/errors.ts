import type { ServiceError } from "../services/errors";
// The one error type the whole server throws on purpose. Every failure reaches the client as
// the OpenAI envelope {"error":{"message","type","param","code"}} with all four keys present.

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "rate_limit_error"
  | "api_error";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, "invalid_request_error", message, param, code);

export const tooLarge = (message: string, param: string | null = "file", code: string | null = null) =>
  new ApiError(413, "invalid_request_error", message, param, code);

export const notFound = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(404, "not_found_error", message, param, code);

// RFC 6750: a 401 names the scheme the client should use.
export const unauthorized = (message: string, code: string | null = "invalid_api_key") =>
  new ApiError(401, "authentication_error", message, null, code, { "www-authenticate": 'Bearer realm="ragd"' });

export const storageFull = (volume: string) =>
  new ApiError(
    507,
    "api_error",
    `The disk holding ragd's data (${volume}) is full, so nothing new can be stored. Free space on that volume or delete files (DELETE /v1/files/{file_id} still works); ragd resumes by itself once space returns.`,
    null,
    "insufficient_storage",
  );

export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new ApiError(429, "rate_limit_error", message, null, "rate_limit_exceeded", {
    "retry-after": String(retryAfterSeconds),
  });

export const internalError = () =>
  new ApiError(500, "api_error", "The server had an error while processing your request. Try again; if it persists, check the ragd logs.", null, "internal_error");

export function errorResponse(err: ApiError): Response {
  return new Response(JSON.stringify(err.toJSON()), {
    status: err.status,
    headers: { "content-type": "application/json", ...err.headers },
  });
}

const SERVICE_STATUS = {
  invalid: [400, "invalid_request_error"],
  too_large: [413, "invalid_request_error"],
  not_found: [404, "not_found_error"],
  unavailable: [503, "api_error"],
} as const;

export function fromServiceError(e: ServiceError): ApiError {
  const [status, type] = SERVICE_STATUS[e.kind];
  return new ApiError(status, type, e.message, e.param, e.code);
}
