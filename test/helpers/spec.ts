// The official OpenAI spec (../shared/openai/openapi.yaml), compiled for checking bodies,
// events and requests against its named schemas. Absent on a user's fresh clone: callers skip.
import Ajv2020 from "ajv/dist/2020";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ROOT } from "./ragd";

export const SPEC_PATH = join(ROOT, "../shared/openai/openapi.yaml");
export const HAVE_SPEC = existsSync(SPEC_PATH);

export interface SpecSchemas {
  /** Problems of `value` against components/schemas/<name>; [] when it is valid. */
  check(name: string, value: unknown): string[];
  /** The schema of a Responses stream event, by its `type` (from ResponseStreamEvent's members). */
  eventSchema(type: string): string | null;
}

let loaded: SpecSchemas | null | undefined;

export function specSchemas(): SpecSchemas | null {
  if (loaded !== undefined) return loaded;
  if (!HAVE_SPEC) return (loaded = null);
  const spec = parse(readFileSync(SPEC_PATH, "utf8"));
  denullable(spec.components);
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema({ $id: "openai", components: spec.components });
  const compiled = new Map<string, ReturnType<typeof ajv.compile>>();
  const events = new Map<string, string>();
  for (const member of spec.components.schemas.ResponseStreamEvent.anyOf as { $ref: string }[]) {
    const name = member.$ref.split("/").pop()!;
    const type = spec.components.schemas[name]?.properties?.type?.enum?.[0];
    if (type) events.set(type, name);
  }
  loaded = {
    eventSchema: (type) => events.get(type) ?? null,
    check(name, value) {
      let v = compiled.get(name);
      if (!v) compiled.set(name, (v = ajv.compile({ $ref: `openai#/components/schemas/${name}` })));
      return v(value) ? [] : (v.errors ?? []).slice(0, 5).map((e) => `${name}${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
    },
  };
  return loaded;
}

/** OpenAPI 3.0's `nullable` as JSON Schema: a few chat schemas still use it, which Ajv cannot read. */
function denullable(node: any): any {
  if (Array.isArray(node)) {
    node.forEach((x, i) => (node[i] = denullable(x)));
    return node;
  }
  if (!node || typeof node !== "object") return node;
  for (const k of Object.keys(node)) node[k] = denullable(node[k]);
  if ("nullable" in node) {
    const { nullable, ...rest } = node;
    return nullable ? { anyOf: [rest, { type: "null" }] } : rest;
  }
  return node;
}
