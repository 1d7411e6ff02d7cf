import { fail, missingParameter, unknownParameter, type RagdError } from "../errors";

// Turns Elysia's schema validation failure into the OpenAI envelope: `param` names the field
// (dotted for nested objects; a union such as `filters` or `chunking_strategy` is named as a
// whole), and the message says what was expected and what came.

interface ValueError {
  path: string;
  message: string;
  value: unknown;
  schema: Record<string, unknown>;
}

interface ElysiaValidationError {
  type: string;
  value: unknown;
  valueError?: ValueError;
  customError?: unknown;
}

export function fromValidation(error: unknown, request: Request): RagdError {
  const e = error as ElysiaValidationError;
  const ve = e.valueError;
  if (!ve) return queryItem(e, request) ?? fail("invalid_value", "The request does not match what this operation takes.");
  // A query parameter Elysia checks on its own reports no path, only the name its schema
  // carries (schemas/common.ts queryParams).
  const named = (e.customError as { param?: string } | undefined)?.param;
  const param = paramOf(ve.path) ?? named ?? null;
  // Query values are shown as sent, not as coerced.
  const sent = param && (e.type === "query" || e.type === "property") ? new URL(request.url).searchParams.get(param) : null;
  const value = sent ?? ve.value;
  // A path segment whose percent-escapes do not decode (%zz, an escaped lone surrogate) reaches
  // the schema as null.
  if (e.type === "params" && ve.value === null && param)
    return fail("invalid_value", `Invalid '${param}': the URL's path segment is not valid percent-encoded UTF-8.`, param);
  if (ve.message === "Unexpected property" && param) return unknownParameter(param);
  if (/^Expected required property/.test(ve.message) && param) return missingParameter(param, describe(ve.schema));
  // A query list (`include=a&include=b`) names the value it does not take, not the first one sent.
  const items = (ve.schema.anyOf as Record<string, unknown>[] | undefined)?.find((b) => b.type === "array")?.items as Record<string, unknown> | undefined;
  if (param && Array.isArray(ve.value) && Array.isArray(items?.enum)) {
    const bad = ve.value.find((v) => !(items.enum as unknown[]).includes(v));
    if (bad !== undefined) return fail("invalid_value", `Invalid '${param}': ${describe(items)}; got ${shown(bad)}.`, param);
  }
  const name = param ?? "body";
  const expected = typeof ve.schema.error === "string" ? ve.schema.error : describe(ve.schema);
  return fail("invalid_value", `Invalid '${name}': ${expected}; got ${shown(value)}.`, param);
}

/**
 * Elysia's check of a query list's items reports the item (its schema and value) but not the
 * parameter: it is the one the value was sent under.
 */
function queryItem(e: ElysiaValidationError, request: Request): RagdError | null {
  const item = (e as { error?: unknown }).error as Partial<ValueError> | undefined;
  if (!item || typeof item !== "object" || !("value" in item) || !item.schema) return null;
  const name = [...new URL(request.url).searchParams].find(([, v]) => v === String(item.value))?.[0];
  return name ? fail("invalid_value", `Invalid '${name}': ${describe(item.schema)}; got ${shown(item.value)}.`, name) : null;
}

/** "/ranking_options/score_threshold" -> "ranking_options.score_threshold"; "/files/0/file_id" -> "files[0].file_id". */
function paramOf(path: string): string | null {
  const parts = path.split("/").filter(Boolean);
  if (!parts.length) return null;
  return parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i ? `.${p}` : p)).join("");
}

const shown = (v: unknown) => {
  if (v === undefined) return "nothing";
  const s = typeof v === "string" ? `'${v}'` : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

/** What a schema accepts, in words. */
export function describe(s: Record<string, unknown>): string {
  const numeric = (s.anyOf as Record<string, unknown>[] | undefined)?.find((b) => b.type === "integer" || b.type === "number");
  if (numeric) return describe({ ...s, ...numeric, anyOf: undefined });
  const range = (what: string, lo?: unknown, hi?: unknown) =>
    lo !== undefined && hi !== undefined ? `${what} between ${lo} and ${hi}` : lo !== undefined ? `${what} of at least ${lo}` : hi !== undefined ? `${what} of at most ${hi}` : what;
  if (s.const !== undefined) return `'${s.const}'`;
  const options = (s.anyOf as Record<string, unknown>[] | undefined)?.filter((b) => b.const !== undefined).map((b) => `'${b.const}'`) ?? (s.enum as string[] | undefined)?.map((x) => `'${x}'`);
  if (options?.length) return `one of ${options.join(", ")}`;
  switch (s.type) {
    case "integer":
      return range("an integer", s.minimum, s.maximum);
    case "number":
      return range("a number", s.minimum, s.maximum);
    case "string":
      return s.maxLength !== undefined ? `a string of at most ${s.maxLength} characters` : s.minLength ? "a non-empty string" : "a string";
    case "boolean":
      return "a boolean";
    case "array":
      return range("a list", s.minItems, s.maxItems).replace("a list between", "a list of").replace(/ and (\d+)$/, " to $1 items");
    case "object":
      return s.maxProperties !== undefined ? `an object of at most ${s.maxProperties} keys` : "an object";
    case "null":
      return "null";
  }
  if (Array.isArray(s.anyOf)) return (s.anyOf as Record<string, unknown>[]).map(describe).join(" or ");
  return "a valid value";
}
