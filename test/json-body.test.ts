// The JSON body reader's own refusals (http/json.ts), beside what the schemas check.
import { expect, test } from "bun:test";
import { readJson } from "../src/http/json";
import { RagdError } from "../src/errors";

const refused = (text: string) => {
  try {
    readJson(text);
  } catch (e) {
    if (e instanceof RagdError) return e.message;
    throw e;
  }
  return null;
};

test("nesting is counted outside strings, up to 64 levels", () => {
  const nest = (n: number) => `{"a":${"[".repeat(n - 1)}1${"]".repeat(n - 1)}}`;
  expect(refused(nest(64))).toBeNull();
  expect(refused(nest(65))).toContain("more than 64 levels");
  expect(refused(`{"a":${"{\"b\":".repeat(64)}1${"}".repeat(64)}}`)).toContain("more than 64 levels");
  // brackets, escaped quotes and backslashes inside strings are text, not nesting
  expect(readJson(`{"a":"${"[{".repeat(500)}\\"\\\\\\"[[["}`)).toEqual({ a: `${"[{".repeat(500)}"\\"[[[` });
  expect(refused(`{"a":"\\\\",${"[".repeat(64)}1${"]".repeat(64)}}`)).toContain("more than 64 levels");
});

test("a __proto__ key is refused however it is spelled; the text as a value is not", () => {
  for (const body of [`{"__proto__":{"x":1}}`, `{"a":{"__proto__":1}}`, `{"\\u005f_proto__":{"x":1}}`, `{"a":[{"__pro\\u0074o__":1}]}`])
    expect(refused(body)).toBe("The JSON body may not use the key '__proto__'.");
  expect(readJson(`{"query":"__proto__","metadata":{"k":"\\u005f_proto__"}}`)).toEqual({ query: "__proto__", metadata: { k: "__proto__" } });
});
