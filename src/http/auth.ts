import type { KeysService, Principal } from "../services/keys";
import { RagdError, type ErrorCode } from "../errors";

// RFC 6750: a 401 names the scheme the client should use.
const unauthorized = (message: string, code: ErrorCode = "invalid_api_key") => new RagdError(code, message, null, { "www-authenticate": 'Bearer realm="ragd"' });

export async function authenticate(keys: KeysService, request: Request): Promise<Principal> {
  const header = request.headers.get("authorization");
  if (!header)
    throw unauthorized("You didn't provide an API key. Send it in the Authorization header as 'Bearer sk-...'; create one with `ragd keys create --project NAME`.", "missing_api_key");
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw unauthorized("The Authorization header must be 'Bearer <API key>'.", "invalid_authorization_header");
  const principal = await keys.authenticate(m[1]!);
  if (!principal) {
    const shown = m[1]!.length > 8 ? `${m[1]!.slice(0, 3)}...${m[1]!.slice(-4)}` : "***";
    throw unauthorized(`Incorrect API key provided: ${shown}. Check the key, or create one with \`ragd keys create --project NAME\`.`);
  }
  return principal;
}
