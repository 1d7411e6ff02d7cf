import type { KeysService, Principal } from "../services/keys";
import { RagdError, type ErrorCode } from "../errors";

// RFC 6750: a 401 names the scheme the client should use.
export const unauthorized = (message: string, code: ErrorCode = "invalid_api_key", realm = "ragd") =>
  new RagdError(code, message, null, { "www-authenticate": `Bearer realm="${realm}"` });

/**
 * The token of `Authorization: Bearer <token>` (the scheme in any case, spaces around it),
 * or the 401 for a header that is missing or not of that form. `what` names the key asked for.
 */
export function bearerToken(request: Request, what: { missing: string; realm?: string }): string {
  const header = request.headers.get("authorization");
  if (!header) throw unauthorized(what.missing, "missing_api_key", what.realm);
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw unauthorized("The Authorization header must be 'Bearer <key>'.", "invalid_authorization_header", what.realm);
  return m[1]!;
}

export async function authenticate(keys: KeysService, request: Request): Promise<Principal> {
  const token = bearerToken(request, { missing: "You didn't provide an API key. Send it in the Authorization header as 'Bearer sk-...'; create one with `ragd keys create --project NAME`." });
  const principal = await keys.authenticate(token);
  if (!principal) {
    const shown = token.length > 8 ? `${token.slice(0, 3)}...${token.slice(-4)}` : "***";
    throw unauthorized(`Incorrect API key provided: ${shown}. Check the key, or create one with \`ragd keys create --project NAME\`.`);
  }
  return principal;
}
