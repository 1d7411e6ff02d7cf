// Our generated /openapi.json against the official OpenAI spec (../shared/openai/openapi.yaml),
// operation by operation: the same paths and methods, the same parameters, the request and
// response fields the spec requires, and the same enums. What ragd adds must be marked
// `x-ragd-extension`; what it leaves out is listed below with the reason.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ROOT, cleanup, startRagd, type Ragd } from "./helpers/ragd";

const SPEC = join(ROOT, "../shared/openai/openapi.yaml");

type Json = Record<string, any>;

/** Spec fields ragd does not send or take, and why. Anything else missing fails the test. */
const NOT_IMPLEMENTED: Record<string, string> = {};

function resolver(doc: Json) {
  const deref = (s: any): any => {
    let cur = s;
    for (let i = 0; cur?.$ref && i < 20; i++) cur = cur.$ref.split("/").slice(1).reduce((o: any, k: string) => o?.[k], doc);
    return cur ?? {};
  };
  /** Object schema: its properties and required names, looking through refs, allOf and nullable unions. */
  const object = (s: any): { properties: Record<string, any>; required: string[] } => {
    s = deref(s);
    const branches = (s.anyOf ?? s.oneOf ?? []).map(deref).filter((b: any) => b.type !== "null");
    if (!s.properties && branches.length === 1) return object(branches[0]);
    const props: Record<string, any> = { ...(s.properties ?? {}) };
    const required = [...(s.required ?? [])];
    for (const part of s.allOf ?? []) {
      const o = object(part);
      Object.assign(props, o.properties);
      required.push(...o.required);
    }
    return { properties: props, required };
  };
  /** The enum values a field allows, looking through refs, nullable unions and literal unions. */
  const enumOf = (s: any): string[] | null => {
    s = deref(s);
    if (s.enum) return [...s.enum].map(String).sort();
    if (s.const !== undefined) return [String(s.const)];
    const branches = (s.anyOf ?? s.oneOf ?? []).map(deref).filter((b: any) => b.type !== "null");
    if (branches.length && branches.every((b: any) => b.const !== undefined || b.enum)) return branches.flatMap((b: any) => enumOf(b) ?? []).sort();
    if (branches.length === 1) return enumOf(branches[0]);
    return null;
  };
  return { deref, object, enumOf };
}

describe.skipIf(!existsSync(SPEC))("the generated OpenAPI document against the official spec", () => {
  let ragd: Ragd;
  let ours: Json;
  let spec: Json;
  beforeAll(async () => {
    ragd = await startRagd();
    ours = await (await fetch(`${ragd.url}/openapi.json`)).json();
    spec = parse(readFileSync(SPEC, "utf8"));
  });
  afterAll(async () => {
    await ragd?.stop();
    cleanup(ragd?.dataDir);
  });

  test("every /v1 operation exists in the spec, with its parameters, fields and enums", () => {
    const o = resolver(ours);
    const s = resolver(spec);
    const problems: string[] = [];
    const extras: string[] = [];
    let operations = 0;
    const compareFields = (where: string, mine: any, theirs: any, direction: "request" | "response", depth = 0) => {
      if (depth > 3) return;
      const a = o.object(mine);
      const b = s.object(theirs);
      const mineName = o.deref(mine) !== mine ? mine.$ref?.split("/").pop() : where;
      for (const name of b.required) {
        if (!(name in a.properties)) {
          if (!NOT_IMPLEMENTED[`${mineName}.${name}`]) problems.push(`${where}: the spec requires '${name}', ours lacks it`);
          continue;
        }
        // a field the spec requires in a response must always be there; one it requires in a
        // request may be optional in ours only as a marked extension (purpose on uploads)
        if (!a.required.includes(name)) {
          const marked = JSON.stringify(a.properties[name]).includes("x-ragd-extension");
          if (direction === "response" || !marked) problems.push(`${where}: '${name}' is required by the spec but optional in ours`);
          else extras.push(`${where}: '${name}' is optional`);
        }
      }
      for (const [name, theirsProp] of Object.entries(b.properties)) {
        const mineProp = a.properties[name];
        if (!mineProp) {
          if (!NOT_IMPLEMENTED[`${mineName}.${name}`] && b.required.includes(name)) problems.push(`${where}: missing '${name}'`);
          continue;
        }
        // nested objects and lists of objects are compared too
        const [dm, dt] = [o.deref(mineProp), s.deref(theirsProp as any)];
        if (dm.type === "array" && dt.type === "array" && s.object(dt.items).required.length) compareFields(`${where}.${name}[]`, dm.items, dt.items, direction, depth + 1);
        else if (Object.keys(s.object(dt).properties).length && Object.keys(o.object(dm).properties).length) compareFields(`${where}.${name}`, mineProp, theirsProp, direction, depth + 1);
        const e1 = o.enumOf(mineProp);
        const e2 = s.enumOf(theirsProp);
        if (e1 && e2 && JSON.stringify(e1) !== JSON.stringify(e2)) {
          const added = e1.filter((x) => !e2.includes(x));
          const dropped = e2.filter((x) => !e1.includes(x));
          const marked = JSON.stringify(o.deref(mineProp)).includes("x-ragd-extension");
          if (dropped.length && !NOT_IMPLEMENTED[`${mineName}.${name} enum`]) {
            // a response may send fewer values than the spec lists; a request must take them all
            if (direction === "request") problems.push(`${where}.${name}: the spec allows ${dropped.join(", ")}, ours does not`);
          }
          if (added.length) (marked || direction === "response" ? extras : problems).push(`${where}.${name}: ours adds ${added.join(", ")}`);
        }
      }
      for (const name of Object.keys(a.properties))
        if (!(name in b.properties)) {
          const marked = JSON.stringify(a.properties[name]).includes("x-ragd-extension");
          (marked ? extras : problems).push(`${where}: ours adds '${name}'${marked ? "" : " without marking it x-ragd-extension"}`);
        }
    };

    for (const [path, methods] of Object.entries<Json>(ours.paths)) {
      if (!path.startsWith("/v1/")) continue;
      const specPath = path.slice(3);
      for (const [method, op] of Object.entries<Json>(methods)) {
        operations++;
        const theirs = spec.paths[specPath]?.[method];
        if (!theirs) {
          problems.push(`${method.toUpperCase()} ${path}: not in the spec`);
          continue;
        }
        const where = `${method.toUpperCase()} ${path}`;
        if (op.operationId !== theirs.operationId) problems.push(`${where}: operationId ${op.operationId}, the spec's is ${theirs.operationId}`);
        // parameters: same names in the same places; ours may add marked ones
        const params = (list: any[], r: ReturnType<typeof resolver>) => new Map((list ?? []).map((p) => r.deref(p)).map((p) => [`${p.in}:${p.name}`, p]));
        const a = params(op.parameters, o);
        const b = params([...(spec.paths[specPath].parameters ?? []), ...(theirs.parameters ?? [])], s);
        for (const [k, p] of b) {
          if (!a.has(k)) problems.push(`${where}: the spec's parameter ${k} is missing`);
          else {
            const e1 = o.enumOf(a.get(k)!.schema);
            const e2 = s.enumOf(p.schema);
            if (e2 && JSON.stringify(e1) !== JSON.stringify(e2) && !(e1 && e2.every((x) => e1.includes(x)) && JSON.stringify(a.get(k)).includes("x-ragd-extension")))
              problems.push(`${where}: parameter ${k} allows ${JSON.stringify(e1)}, the spec ${JSON.stringify(e2)}`);
            if (!!p.required !== !!a.get(k)!.required) problems.push(`${where}: parameter ${k} required ${!!a.get(k)!.required}, the spec ${!!p.required}`);
          }
        }
        for (const [k, p] of a)
          if (!b.has(k)) (JSON.stringify(p).includes("x-ragd-extension") ? extras : problems).push(`${where}: ours adds parameter ${k}`);
        // the request body
        const mineBody = op.requestBody?.content;
        const theirsBody = theirs.requestBody?.content;
        if (!!mineBody !== !!theirsBody) problems.push(`${where}: request body ${mineBody ? "present" : "absent"}, the spec's ${theirsBody ? "present" : "absent"}`);
        if (mineBody && theirsBody) {
          const ct = Object.keys(theirsBody)[0]!;
          if (!mineBody[ct]) problems.push(`${where}: body is ${Object.keys(mineBody)}, the spec's ${ct}`);
          else compareFields(`${where} body`, mineBody[ct].schema, theirsBody[ct].schema, "request");
        }
        // the 200 response
        const mineOk = op.responses["200"]?.content?.["application/json"]?.schema;
        const theirsOk = theirs.responses?.["200"]?.content?.["application/json"]?.schema;
        if (mineOk && theirsOk && theirsOk.type !== "string") compareFields(`${where} response`, mineOk, theirsOk, "response");
      }
    }
    console.log(`ragd's documented extras:\n  ${extras.join("\n  ")}`);
    expect(operations).toBeGreaterThanOrEqual(24);
    expect(problems).toEqual([]);
  });

  test("the comparison can fail: a field the spec requires, taken out of our document, is caught", () => {
    const broken = structuredClone(ours);
    delete broken.components.schemas.VectorStoreObject.properties.file_counts;
    const o = resolver(broken);
    expect("file_counts" in o.object(broken.paths["/v1/vector_stores"].post.responses["200"].content["application/json"].schema).properties).toBe(false);
    expect(resolver(spec).object(spec.components.schemas.VectorStoreObject).required).toContain("file_counts");
  });
});
