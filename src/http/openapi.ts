import pkg from "../../package.json";
import type { Operation } from "./operation";
import { ErrorResponse, schemaName } from "./schemas/common";

// /openapi.json, generated from the routes' own declarations (http/operation.ts): the schemas
// that validate a request are the ones documented, so the two cannot drift.

type Json = Record<string, unknown>;

const ERROR_TEXT: Record<number, string> = {
  400: "Invalid request: `param` names the field",
  401: "Missing or wrong API key",
  404: "No such object in this project",
  413: "File too large or project quota exceeded",
  416: "Range not satisfiable",
  429: "Rate limit reached; see retry-after",
  502: "The model server failed or cannot be reached",
  503: "The embedding model is unavailable, or no model server is configured",
  504: "The model server did not answer in time",
  507: "The data volume is full; deletes still work",
};

interface RouteLike {
  method: string;
  path: string;
  hooks?: { detail?: { operation?: Operation } };
}

export function openapiDocument(routes: RouteLike[]) {
  const components: Record<string, Json> = {};
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

  /** A TypeBox schema as plain JSON Schema, its named parts moved to components. */
  const toJson = (schema: unknown, root = false): unknown => {
    if (Array.isArray(schema)) return schema.map((s) => toJson(s));
    if (!schema || typeof schema !== "object") return schema;
    const name = schemaName(schema);
    if (name && !root) {
      if (!(name in components)) {
        components[name] = {}; // reserve first: a schema may refer to itself
        components[name] = toJson(schema, true) as Json;
      }
      return ref(name);
    }
    const s = schema as Json;
    // Elysia reads numbers from query strings by also accepting numeric strings; document the number.
    const anyOf = s.anyOf as Json[] | undefined;
    const numeric = anyOf?.find((b) => b.type === "integer" || b.type === "number");
    if (numeric && anyOf!.some((b) => b.type === "string" && typeof b.format === "string")) return toJson({ ...s, ...numeric, anyOf: undefined });
    const out: Json = {};
    // TypeBox writes tuples as draft-07 `items: [...]`; OpenAPI 3.1 (JSON Schema 2020-12) says prefixItems.
    if (Array.isArray(s.items)) return toJson({ ...s, prefixItems: s.items, items: undefined, additionalItems: undefined });
    for (const [k, v] of Object.entries(s)) {
      // `error` is TypeBox's custom message (a string or function), unless it names a property.
      if (v === undefined || k === "$id" || (k === "error" && (typeof v === "string" || typeof v === "function"))) continue;
      // TypeBox's recursive schemas refer to themselves by $id; here, by component name.
      if (k === "$ref" && typeof v === "string" && !v.startsWith("#")) {
        out.$ref = `#/components/schemas/${recursiveNames.get(v) ?? v}`;
        continue;
      }
      out[k] = toJson(v);
    }
    return out;
  };
  const recursiveNames = new Map<string, string>();
  const noteRecursive = (schema: unknown) => {
    if (!schema || typeof schema !== "object") return;
    const s = schema as Json;
    const name = schemaName(s);
    if (name && typeof s.$id === "string") recursiveNames.set(s.$id, name);
    for (const v of Object.values(s)) if (v && typeof v === "object") noteRecursive(v);
  };

  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const op = r.hooks?.detail?.operation;
    if (!op) continue;
    for (const s of [op.body, op.query, op.params, op.multipart, op.response]) noteRecursive(s);
    const path = r.path.replace(/:(\w+)/g, "{$1}").replace(/\/$/, "");
    const parameters: Json[] = [];
    for (const [where, schema] of [["path", op.params], ["query", op.query]] as const) {
      if (!schema) continue;
      const s = schema as unknown as { properties: Record<string, Json>; required?: string[] };
      for (const [name, prop] of Object.entries(s.properties)) {
        const p = toJson(prop) as Json;
        const { description, ...rest } = p;
        parameters.push({ name, in: where, required: where === "path" || (s.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest });
      }
    }
    const responses: Json = {};
    if ("contentType" in op.response) responses["200"] = { description: op.response.description, content: { [op.response.contentType]: { schema: { type: "string", format: "binary" } } } };
    else responses["200"] = { description: "OK", content: { "application/json": { schema: toJson(op.response) } } };
    if (op.events) (responses["200"] as { content: Json }).content["text/event-stream"] = { schema: { type: "string", description: op.events } };
    const errorCodes = [...new Set([...op.errors, ...(op.auth ? [401, 429] : [])])].sort();
    for (const c of errorCodes) responses[String(c)] = { description: ERROR_TEXT[c] ?? "Error", content: { "application/json": { schema: toJson(ErrorResponse) } } };
    const operation: Json = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      ...(parameters.length ? { parameters } : {}),
      responses,
      ...(op.auth ? {} : { security: [] }),
    };
    if (op.body) operation.requestBody = { required: true, content: { "application/json": { schema: toJson(op.body) } } };
    if (op.multipart) operation.requestBody = { required: true, content: { "multipart/form-data": { schema: toJson(op.multipart) } } };
    (paths[path] ??= {})[r.method.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "ragd",
      version: pkg.version,
      description:
        "A self-hosted, OpenAI-compatible Files API and knowledge base. Authenticate with `Authorization: Bearer sk-...`. Fields and parameters marked `x-ragd-extension` are ragd's own; everything else follows the OpenAI API.",
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    paths,
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } }, schemas: components },
  };
}
