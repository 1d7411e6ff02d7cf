// What a service reports when a request cannot be served. The HTTP layer turns each kind
// into a status and the OpenAI envelope; services know nothing of HTTP.
export type ServiceErrorKind = "invalid" | "too_large" | "not_found" | "unavailable";

export class ServiceError extends Error {
  constructor(
    readonly kind: ServiceErrorKind,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export const invalid = (message: string, param: string | null = null, code: string | null = null) =>
  new ServiceError("invalid", message, param, code);

/** A dependency the request needs (the embedding model, a remote embeddings API) failed; retrying may help. */
export const unavailable = (message: string, code: string | null = null) => new ServiceError("unavailable", message, null, code);
