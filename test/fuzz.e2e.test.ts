// A seeded storm of bad and odd requests against the real server, over real sockets.
//
// Every request is generated up front from one seed (FUZZ_SEED), so a failure reproduces:
// the report prints the request's exact bytes and its number, and
//   FUZZ_SEED=<seed> FUZZ_ONLY=<n>[,<n>...] bun test test/fuzz.e2e.test.ts
// sends just those (the generator still runs the whole sequence, so #n is the same request;
// only the ids of the objects made in setup differ from run to run).
//
// Requests go out through a bare socket client (helpers/raw-http.ts), not fetch: fetch
// normalises `..`, escapes spaces and non-ASCII, merges duplicate headers and fixes
// Content-Length, which are exactly the things worth sending.
//
// What must hold for every answer (judge()): no 5xx but the documented 503s; never 403; an
// error is JSON in the OpenAI envelope whose code, type and status agree with src/errors.ts;
// a bad key never gets a 2xx; another project's ids are 404s; no hang. After the storm the
// server is alive and the files of setup are listed, byte-identical and still found by search.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import OpenAI, { toFile } from "openai";
import { ERRORS } from "../src/errors";
import { cleanup, createKey, startRagd, type Ragd } from "./helpers/ragd";
import { prng, type Rng } from "./helpers/prng";
import { rawRequest, type RawOutcome } from "./helpers/raw-http";

const SEED = Number(process.env.FUZZ_SEED ?? 20260607);
const COUNT = Number(process.env.FUZZ_COUNT ?? 2400);
const ONLY = process.env.FUZZ_ONLY ? new Set(process.env.FUZZ_ONLY.split(",").map(Number)) : null;
/** A file to write every request's outcome to, one JSON line each, for a closer look. */
const DUMP = process.env.FUZZ_DUMP;
const IN_FLIGHT = 8;
/**
 * An answer this slow is a finding (a request that holds the server, as a deeply nested body
 * did for 7 s): far above the slowest ordinary one (~0.3 s), so a loaded machine does not
 * trip it; tests check behaviour, not speed.
 */
const SLOW_MS = 10_000;
/** The server's peak resident memory after the storm must stay under this. */
const PEAK_MB = 1536;

// Determinism: one PRNG, consumed only while generating.

// ---------------------------------------------------------------------------------------
// The request as bytes, and what the generator knows about it.

const utf8 = (s: string) => Buffer.from(s, "utf8");
const bytes = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? utf8(p) : p)));
/** A lone surrogate as raw bytes (CESU-8 style): not UTF-8, so it must be refused as such. */
const LONE_SURROGATE = Buffer.from([0xed, 0xa0, 0x80]);

interface Req {
  n: number;
  kind: string;
  method: string;
  /** The request-target exactly as it goes on the wire. */
  target: Buffer;
  headers: [string, Buffer][];
  body?: Buffer;
  /** Which key the Authorization header carries: "a"/"b" valid keys, "bad" anything else, "none". */
  auth: "a" | "b" | "bad" | "none";
  /** Close our side after sending (a body shorter than its Content-Length then ends). */
  halfClose?: boolean;
  /** Bun's HTTP parser refuses it before ragd sees it: an empty answer, or none, is expected. */
  transport?: boolean;
  /** It names only another project's objects: no 2xx (and no 403) may come back. */
  foreign?: boolean;
  /** The statuses the API documents for it, checked when the key is valid (404 always passes:
   *  an odd id or a deleted object may answer first). */
  expect?: number[];
  /** "HTTP/1.1" unless set. */
  version?: string;
}

/** What setup made: real objects to aim at, some protected, some fair game. */
interface World {
  port: number;
  keyA: string;
  keyB: string;
  /** Protected: only read, or aimed at with ids that must not resolve to them. */
  txt: { id: string; bytes: Buffer };
  md: { id: string; bytes: Buffer };
  store: string;
  /** The project's knowledge base: cannot be deleted. */
  kb: string;
  /** Fair game for anything but deletes. */
  scratchFile: string;
  batchStore: string;
  batch: string;
  /** Fair game for deletes (so that the objects above stay for the other requests). */
  doomedFile: string;
  doomedStore: string;
  /** Project B's objects: project A must get 404 for them. */
  bFile: { id: string; bytes: Buffer };
  bStore: string;
  model: string;
}

// ---------------------------------------------------------------------------------------
// JSON with values JSON.stringify cannot write (1e309, deep nesting) and keys it would
// mishandle (`__proto__` as an own key).

class Raw {
  constructor(readonly text: string) {}
}
function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(",")}]`;
  if (v !== null && typeof v === "object") return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${toJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}
/** Sets an own property, even `__proto__`. */
const setKey = (o: object, k: string, v: unknown) => Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });

/** Values of every wrong type and every odd shape, for any field. */
function weirdValue(r: Rng): unknown {
  const gens: (() => unknown)[] = [
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -1,
    () => 1.5,
    () => 2 ** 53 + 2,
    () => Number.MAX_VALUE,
    () => -Number.MAX_VALUE,
    () => 5e-324,
    () => new Raw("1e309"), // Infinity once parsed
    () => new Raw("-1e309"),
    () => new Raw("-0"),
    () => new Raw("123456789012345678901234567890"),
    () => "5",
    () => "NaN",
    () => "Infinity",
    () => "-1",
    () => "1e309",
    () => "",
    () => " ",
    () => "null",
    () => "true",
    () => [],
    () => [null],
    () => [1, "2", [3]],
    () => ({}),
    () => ({ a: { b: { c: [] } } }),
    () => "x".repeat(5000),
    () => "y".repeat(70_000),
    () => "é日本語🚀👩‍👩‍👧",
    () => "\u0000",
    () => "a\u0000b",
    () => "\ud800", // a lone surrogate, escaped in the JSON text
    () => "\udfff\ud800",
    () => "\u202eevil\u200b",
    () => "'; DROP TABLE files; --",
    () => "%s%n%x",
    () => "../../etc/passwd",
    () => JSON.parse('{"__proto__":{"polluted":1}}'),
    () => JSON.parse('{"constructor":{"prototype":{"polluted":1}}}'),
    () => Array.from({ length: 3000 }, (_, i) => `s${i}`),
    () => new Raw("[".repeat(5000) + "]".repeat(5000)),
  ];
  return r.pick(gens)();
}

const UNKNOWN_KEYS = ["foo", "", "__proto__", "constructor", "toString", "a".repeat(300), "é🚀", "file_ids ", "QUERY", "\u0000"];

// ---------------------------------------------------------------------------------------
// The routes. A JSON route has a valid body to start from; the generators break it.

interface JsonRoute {
  method: "POST";
  /** The path as ROUTES writes it. */
  template: string;
  path: (w: World, r: Rng) => string;
  body: (w: World, r: Rng) => Record<string, unknown>;
}

const vsPath = (w: World, r: Rng) => r.pick([w.store, w.batchStore, w.kb]);
const JSON_ROUTES: Record<string, JsonRoute> = {
  createStore: {
    method: "POST",
    template: "/v1/vector_stores",
    path: () => "/v1/vector_stores",
    body: (w, r) => ({
      name: "fuzz store",
      file_ids: r.chance(0.5) ? [] : [w.scratchFile],
      metadata: { k: "v" },
      chunking_strategy: r.chance(0.5) ? { type: "auto" } : { type: "static", static: { max_chunk_size_tokens: 200, chunk_overlap_tokens: 50 } },
      expires_after: { anchor: "last_active_at", days: 7 },
    }),
  },
  updateStore: {
    method: "POST",
    template: "/v1/vector_stores/{vs}",
    path: (w, r) => `/v1/vector_stores/${vsPath(w, r)}`,
    body: () => ({ name: "renamed by the fuzzer", metadata: { a: "b" }, expires_after: { anchor: "last_active_at", days: 30 } }),
  },
  search: {
    method: "POST",
    template: "/v1/vector_stores/{vs}/search",
    path: (w, r) => `/v1/vector_stores/${vsPath(w, r)}/search`,
    body: (_, r) => ({
      query: r.chance(0.5) ? "granite quarry" : ["basalt", "columns"],
      max_num_results: 3,
      filters: r.chance(0.5) ? { type: "eq", key: "k", value: "v" } : { type: "or", filters: [{ type: "in", key: "n", value: [1, 2] }, { type: "ne", key: "k", value: true }] },
      ranking_options: { ranker: "auto", score_threshold: 0, hybrid_search: { embedding_weight: 0.4, text_weight: 0.6 } },
      rewrite_query: false,
    }),
  },
  attach: {
    method: "POST",
    template: "/v1/vector_stores/{vs}/files",
    path: (w, r) => `/v1/vector_stores/${r.pick([w.batchStore, w.kb])}/files`,
    body: (w) => ({ file_id: w.scratchFile, chunking_strategy: { type: "auto" }, attributes: { a: "b", n: 1, t: true } }),
  },
  updateAttributes: {
    method: "POST",
    template: "/v1/vector_stores/{vs}/files/{file}",
    path: (w, r) => (r.chance(0.5) ? `/v1/vector_stores/${w.store}/files/${r.pick([w.txt.id, w.md.id])}` : `/v1/vector_stores/${w.batchStore}/files/${w.scratchFile}`),
    body: () => ({ attributes: { a: "b", n: 1, t: false } }),
  },
  createBatch: {
    method: "POST",
    template: "/v1/vector_stores/{vs}/file_batches",
    path: (w) => `/v1/vector_stores/${w.batchStore}/file_batches`,
    body: (w, r) =>
      r.chance(0.5)
        ? { file_ids: [w.scratchFile], chunking_strategy: { type: "auto" }, attributes: { x: "y" } }
        : { files: [{ file_id: w.scratchFile, attributes: { x: 1 } }] },
  },
  embeddings: {
    method: "POST",
    template: "/v1/embeddings",
    path: () => "/v1/embeddings",
    body: (w, r) => ({ input: r.chance(0.5) ? "granite" : ["a", "b"], model: r.pick(["default", w.model]), encoding_format: r.pick(["float", "base64"]), user: "fuzz" }),
  },
  responses: {
    method: "POST",
    template: "/v1/responses",
    path: () => "/v1/responses",
    body: (w) => ({
      model: "some-model",
      input: "What is granite?",
      instructions: "Be brief.",
      tools: [{ type: "file_search", vector_store_ids: [w.store], max_num_results: 2 }],
      tool_choice: "auto",
      temperature: 1,
      max_output_tokens: 64,
      metadata: { k: "v" },
      store: false,
    }),
  },
  chat: {
    method: "POST",
    template: "/v1/chat/completions",
    path: () => "/v1/chat/completions",
    body: (w) => ({ model: "some-model", messages: [{ role: "user", content: "hi" }], stream: false, file_search: { vector_store_ids: [w.store], max_num_results: 2 } }),
  },
};

/** Every path and the methods it answers, for the wrong-method generator; {x} are ids. */
const ROUTES: [string, string[]][] = [
  ["/v1/files", ["GET", "POST"]],
  ["/v1/files/{file}", ["GET", "DELETE"]],
  ["/v1/files/{file}/content", ["GET"]],
  ["/v1/vector_stores", ["GET", "POST"]],
  ["/v1/vector_stores/{vs}", ["GET", "POST", "DELETE"]],
  ["/v1/vector_stores/{vs}/search", ["POST"]],
  ["/v1/vector_stores/{vs}/files", ["GET", "POST"]],
  ["/v1/vector_stores/{vs}/files/{file}", ["GET", "POST", "DELETE"]],
  ["/v1/vector_stores/{vs}/files/{file}/content", ["GET"]],
  ["/v1/vector_stores/{vs}/file_batches", ["POST"]],
  ["/v1/vector_stores/{vs}/file_batches/{batch}", ["GET"]],
  ["/v1/vector_stores/{vs}/file_batches/{batch}/cancel", ["POST"]],
  ["/v1/vector_stores/{vs}/file_batches/{batch}/files", ["GET"]],
  ["/v1/embeddings", ["POST"]],
  ["/v1/models", ["GET"]],
  ["/v1/models/{model}", ["GET"]],
  ["/v1/responses", ["POST"]],
  ["/v1/responses/{resp}", ["GET", "DELETE"]],
  ["/v1/responses/{resp}/cancel", ["POST"]],
  ["/v1/responses/{resp}/input_items", ["GET"]],
  ["/v1/chat/completions", ["POST"]],
  ["/ragd/whoami", ["GET"]],
  ["/ragd/files/{file}/chunks", ["GET"]],
  ["/health", ["GET"]],
  ["/ready", ["GET"]],
  ["/metrics", ["GET"]],
  ["/openapi.json", ["GET"]],
  ["/docs", ["GET"]],
  ["/docs/assets/{asset}", ["GET"]],
  ["/", ["GET"]],
  ["/console/console.js", ["GET"]],
];
const PUBLIC = /^\/(health|ready|metrics|openapi\.json|docs(\/.*)?|console\/.*)?$/;

// ---------------------------------------------------------------------------------------
// Ids. A destructive request may aim at the protected objects only through a mangled id,
// one no URL rule turns back into the real one: the storm must not delete what setup made
// through a legitimate request, but a mangled id that did reach it would be a finding.

function fabricated(kind: string, r: Rng): string {
  switch (kind) {
    case "file":
      return `file-${r.base62(24)}`;
    case "vs":
      return `vs_${r.base62(24)}`;
    case "batch":
      return `vsfb_${r.base62(24)}`;
    case "resp":
      return `resp_${r.base62(40)}`;
    default:
      return r.base62(12);
  }
}

/** Odd ids, written as they go on the wire (percent-escapes are left as they are). */
function weirdId(kind: string, real: string, r: Rng): string {
  const gens: (() => string)[] = [
    () => fabricated(kind, r),
    () => fabricated(r.pick(["file", "vs", "batch", "resp"].filter((k) => k !== kind)), r), // wrong prefix
    () => real.replace(/^(file-|vs_|vsfb_|resp_)/, (p) => (p === "file-" ? "file_" : p.replace("_", "-"))),
    () => real + r.pick(["x", "0", "%00", "%20", "%0a", "%ff", ";", "~", "!"]),
    () => real.slice(0, -1),
    () => real.replace(/[A-Za-z]/g, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())),
    () => `${real.slice(0, 5)}${"A".repeat(r.pick([100, 1000, 6000]))}`,
    () => `%2e%2e%2f${real}`,
    () => `..%2f..%2f${real}`,
    () => "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    () => "..",
    () => ".",
    () => "%2e",
    () => "%2F",
    () => "a%2Fb",
    () => "%20",
    () => "a%20b",
    () => "+",
    () => "%E2%9C%93",
    () => "%F0%9F%9A%80",
    () => "%ED%A0%80", // lone surrogate, percent-encoded
    () => "%C0%AE%C0%AE", // overlong dots
    () => "%FF%FE",
    () => "%00",
    () => "%zz",
    () => "%",
    () => "%25",
    () => "null",
    () => "undefined",
    () => "0",
    () => "-1",
    () => "__proto__",
    () => "constructor",
    () => "*",
    () => "'%20OR%20'1'='1",
  ];
  return r.pick(gens)();
}

/** Fills {file} {vs} {batch} {resp} {model} {asset} for a request that may be destructive. */
function fillIds(template: string, w: World, r: Rng, method: string): { path: string; foreignOnly: boolean } {
  const destructive = method === "DELETE" || method === "POST";
  const del = method === "DELETE";
  let foreign = 0;
  let filled = 0;
  const path = template.replace(/\{(\w+)\}/g, (_, kind: string) => {
    filled++;
    const protectedReal = kind === "file" ? r.pick([w.txt.id, w.md.id]) : kind === "vs" ? w.store : null;
    const fair = kind === "file" ? (del ? w.doomedFile : w.scratchFile) : kind === "vs" ? (del ? w.doomedStore : r.pick([w.batchStore, w.kb])) : kind === "batch" ? w.batch : kind === "model" ? w.model : kind === "resp" ? fabricated("resp", r) : "swagger-ui.css";
    const mode = r.int(10);
    if (mode < 2) return fair;
    if (mode < 3 && protectedReal && !destructive) return protectedReal;
    if (mode < 4 && (kind === "file" || kind === "vs")) {
      foreign++;
      return kind === "file" ? w.bFile.id : w.bStore;
    }
    return weirdId(kind, protectedReal ?? fair, r);
  });
  return { path, foreignOnly: filled > 0 && foreign === filled };
}

// ---------------------------------------------------------------------------------------
// Headers.

function authHeader(req: Req, w: World, key: "a" | "b") {
  req.headers.push(["authorization", utf8(`Bearer ${key === "a" ? w.keyA : w.keyB}`)]);
  req.auth = key;
}

/** Authorization headers that must not let anyone in; a few that must. */
function oddAuth(req: Req, w: World, r: Rng) {
  req.headers = req.headers.filter(([k]) => k !== "authorization");
  const k = w.keyA;
  const bad: (() => [string, Buffer][])[] = [
    () => [],
    () => [["authorization", utf8("")]],
    () => [["authorization", utf8("Bearer")]],
    () => [["authorization", utf8("Bearer ")]],
    () => [["authorization", utf8(`Bearer ${k} extra`)]],
    () => [["authorization", utf8(`Basic ${Buffer.from(`user:${k}`).toString("base64")}`)]],
    () => [["authorization", utf8(`Token ${k}`)]],
    () => [["authorization", utf8(k)]],
    () => [["authorization", utf8(`Bearer ${k}x`)]],
    () => [["authorization", utf8(`Bearer ${k.slice(0, -1)}`)]],
    () => [["authorization", utf8(`Bearer ${k.toUpperCase()}`)]],
    () => [["authorization", utf8("Bearer é日本🚀")]],
    () => [["authorization", bytes("Bearer ", LONE_SURROGATE)]],
    () => [["authorization", utf8(`Bearer ${"k".repeat(7000)}`)]],
    () => [["authorization", utf8("Bearer sk-ragd-' OR '1'='1")]],
    () => [["authorization", utf8("Bearer %00")]],
    () => [
      ["authorization", utf8(`Bearer ${k}`)],
      ["authorization", utf8("Bearer nope")],
    ],
    () => [["x-api-key", utf8(k)]],
  ];
  const good: (() => [string, Buffer][])[] = [() => [["authorization", utf8(`bearer ${k}`)]], () => [["authorization", utf8(`BEARER   ${k}  `)]], () => [["authorization", utf8(`Bearer\t${k}`)]]];
  if (r.chance(0.15)) {
    req.headers.push(...r.pick(good)());
    req.auth = "a";
  } else {
    const h = r.pick(bad)();
    req.headers.push(...h);
    req.auth = h.some(([n]) => n === "authorization") ? "bad" : "none";
  }
}

/** Noise any request may carry: big or many headers, odd request ids, Accept, Origin. */
function headerNoise(req: Req, r: Rng) {
  const gens: (() => void)[] = [
    () => req.headers.push(["x-filler", utf8("f".repeat(r.pick([1000, 4000, 7000])))]),
    () => {
      for (let i = 0; i < 80; i++) req.headers.push([`x-h${i}`, utf8(`v${i}`)]);
    },
    () => req.headers.push(["x-request-id", utf8(r.pick(["../../x", "a".repeat(500), "id with spaces", "é🚀", "req_ok-1.2:3", ""]))]),
    () => req.headers.push(["x-request-id", LONE_SURROGATE]),
    () => req.headers.push(["accept", utf8(r.pick(["text/html", "*/*;q=0", "application/xml", "garbage/"]))]),
    () => req.headers.push(["accept-encoding", utf8(r.pick(["gzip, br", "identity;q=0", "zz"]))]),
    () => req.headers.push(["origin", utf8(r.pick(["null", "https://evil.example", "http://[::1]", "é"]))]),
    () => req.headers.push(["x-forwarded-for", utf8("127.0.0.1, ::1, garbage")]),
    () => req.headers.push(["cookie", utf8("a=b; " + "c=d; ".repeat(200))]),
    () => req.headers.push(["expect", utf8("100-continue")]),
  ];
  r.pick(gens)();
}

// ---------------------------------------------------------------------------------------
// Generators, one per class of input. Each returns a request without its number.

type Gen = (w: World, r: Rng) => Omit<Req, "n">;

const base = (kind: string, method: string, path: string, w: World, key: "a" | "b" = "a"): Omit<Req, "n"> => {
  const req: Omit<Req, "n"> = { kind, method, target: utf8(path), headers: [], auth: "none" };
  authHeader(req as Req, w, key);
  return req;
};
const jsonHeaders = (req: Omit<Req, "n">, body: Buffer, ct = "application/json") => {
  req.headers.push(["content-type", utf8(ct)]);
  req.body = body;
};

/** A method the path does not answer: 404 unknown_url (HEAD on a GET route is a GET). */
const wrongMethod: Gen = (w, r) => {
  const [template, methods] = r.pick(ROUTES);
  const method = r.pick(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"].filter((m) => !methods.includes(m)));
  const { path } = fillIds(template, w, r, method);
  const req = base("wrong-method", method, path, w);
  if (method !== "HEAD" && r.chance(0.5)) jsonHeaders(req, utf8('{"a":1}'));
  return req;
};

/** The whole body broken: absent, not JSON, not an object, not UTF-8, too big, mislabelled. */
const jsonBody: Gen = (w, r) => {
  const name = r.pick(Object.keys(JSON_ROUTES));
  const route = JSON_ROUTES[name]!;
  const req = base(`json-body:${name}`, route.method, route.path(w, r), w);
  const valid = toJson(route.body(w, r));
  // Deep enough to pass JSON.parse but not everything that walks the value after it.
  const depth = r.pick([5000, 20_000, 50_000]);
  const shapes: [string, () => void, number[]?][] = [
    ["absent", () => {}],
    ["empty", () => jsonHeaders(req, utf8(""))],
    ["whitespace", () => jsonHeaders(req, utf8(" \r\n\t "))],
    ["null", () => jsonHeaders(req, utf8("null")), [400]],
    ["array", () => jsonHeaders(req, utf8(`[${valid}]`)), [400]],
    ["number", () => jsonHeaders(req, utf8("123")), [400]],
    ["string", () => jsonHeaders(req, utf8(JSON.stringify(valid))), [400]],
    ["truncated", () => jsonHeaders(req, utf8(valid.slice(0, 1 + r.int(valid.length - 2)))), [400]],
    ["trailing garbage", () => jsonHeaders(req, utf8(`${valid}}garbage`)), [400]],
    ["random bytes", () => jsonHeaders(req, Buffer.from(Array.from({ length: 1 + r.int(300) }, () => r.int(256))))],
    ["raw lone surrogate", () => jsonHeaders(req, bytes(valid.slice(0, -1), ',"zz":"', LONE_SURROGATE, '"}')), [400]],
    ["raw 0xff", () => jsonHeaders(req, bytes('{"name":"', Buffer.from([0xff, 0xfe]), '"}')), [400]],
    ["raw NUL", () => jsonHeaders(req, bytes(valid.slice(0, 1), Buffer.from([0]), valid.slice(1))), [400]],
    ["utf-8 BOM", () => jsonHeaders(req, bytes(Buffer.from([0xef, 0xbb, 0xbf]), valid))],
    ["utf-16", () => jsonHeaders(req, Buffer.from(valid, "utf16le"), "application/json; charset=utf-16")],
    ["duplicate keys", () => jsonHeaders(req, utf8(`${valid.slice(0, -1)},${valid.slice(1)}`))],
    ["deep arrays", () => jsonHeaders(req, utf8(nested("[", "", "]", depth))), [400]],
    ["deep objects", () => jsonHeaders(req, utf8(nested('{"a":', "1", "}", depth)))],
    ["over 4 MB", () => jsonHeaders(req, utf8(`{"name":"${"z".repeat(4 * 1024 * 1024 + 10)}"}`)), [400]],
    ["text/plain", () => jsonHeaders(req, utf8(valid), "text/plain")],
    ["form-urlencoded", () => jsonHeaders(req, utf8("name=x&query=y"), "application/x-www-form-urlencoded")],
    ["multipart label", () => jsonHeaders(req, utf8(valid), "multipart/form-data; boundary=zzz")],
    ["no content-type", () => (req.body = utf8(valid))],
    [
      "chunked",
      () => {
        req.headers.push(["content-type", utf8("application/json")], ["transfer-encoding", utf8("chunked")]);
        const half = Math.floor(valid.length / 2);
        const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
        req.body = utf8(chunk(valid.slice(0, half)) + chunk(valid.slice(half)) + "0\r\n\r\n");
      },
    ],
    [
      "content-length short",
      () => {
        jsonHeaders(req, utf8(valid));
        req.headers.push(["content-length", utf8(String(Math.max(1, valid.length - 5)))]);
      },
    ],
    [
      "content-length long, then silence",
      () => {
        jsonHeaders(req, utf8(valid));
        req.headers.push(["content-length", utf8(String(valid.length + 50))]);
        req.halfClose = true;
      },
    ],
  ];
  // The heavy shapes are rarer: they are there to be sent, not to dominate the run time.
  const heavy = new Set(["over 4 MB", "deep arrays", "deep objects"]);
  let shape = r.pick(shapes);
  if (heavy.has(shape[0]) && !r.chance(0.25)) shape = r.pick(shapes.filter((s) => !heavy.has(s[0])));
  shape[1]();
  req.kind += `:${shape[0]}${shape[0].startsWith("deep") ? ` (${depth} levels)` : ""}`;
  if (shape[2]) req.expect = shape[2];
  return req;
};

/** `open` n times, `inner`, then `close` n times: JSON nested n deep. */
const nested = (open: string, inner: string, close: string, n: number) => open.repeat(n) + inner + close.repeat(n);

/** All paths into a JSON value: the generators replace, drop or add at one of them. */
function pathsOf(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...at, i])));
  else if (v !== null && typeof v === "object" && !(v instanceof Raw)) for (const k of Object.keys(v)) out.push(...pathsOf((v as Record<string, unknown>)[k], [...at, k]));
  return out;
}
function parentOf(root: unknown, path: (string | number)[]): Record<string | number, unknown> | null {
  let cur = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) cur = cur?.[k] as Record<string | number, unknown>;
  return cur ?? null;
}

/** One field of a valid body broken: a wrong type or odd value, dropped, or an unknown key added. */
const jsonField: Gen = (w, r) => {
  const name = r.pick(Object.keys(JSON_ROUTES));
  const route = JSON_ROUTES[name]!;
  const body = route.body(w, r);
  const paths = pathsOf(body).filter((p) => p.length > 0);
  const path = r.pick(paths.length ? paths : [["x"]]);
  const parent = parentOf(body, path)!;
  const last = path[path.length - 1]!;
  const op = r.int(10);
  let what: string;
  let expect: number[] | undefined;
  if (op < 7) {
    const v = weirdValue(r);
    if (Array.isArray(parent)) parent[last as number] = v;
    else setKey(parent, String(last), v);
    what = `${path.join(".")}=${toJson(v).slice(0, 40)}`;
  } else if (op < 8) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
    what = `drop ${path.join(".")}`;
  } else {
    // An unknown key beside this field, or at the top.
    const top = Array.isArray(parent) || r.chance(0.4);
    const k = r.pick(UNKNOWN_KEYS);
    setKey(top ? body : parent, k, weirdValue(r));
    what = `unknown ${top ? "top-level " : ""}key ${JSON.stringify(k).slice(0, 30)}`;
    // Every body but chat's (passed on to the model server) refuses what it does not know.
    if (top && name !== "chat") expect = [400];
  }
  const req = base(`json-field:${name}`, route.method, route.path(w, r), w);
  jsonHeaders(req, utf8(toJson(body)));
  req.kind += `:${what}`;
  if (expect) req.expect = expect;
  return req;
};

/** Bodies aimed at the places where numbers meet arithmetic and recursion. */
const jsonEdge: Gen = (w, r) => {
  const store = r.pick([w.store, w.kb]);
  // [label, path, body, statuses the API documents for it (404 is always allowed)]
  const cases: [string, string, string, number[]?][] = [
    ["zero weights", `/v1/vector_stores/${store}/search`, '{"query":"granite","ranking_options":{"hybrid_search":{"embedding_weight":0,"text_weight":0}}}'],
    ["huge weights", `/v1/vector_stores/${store}/search`, '{"query":"granite","ranking_options":{"hybrid_search":{"embedding_weight":1e308,"text_weight":1e308}}}'],
    ["tiny weights", `/v1/vector_stores/${store}/search`, '{"query":"granite","ranking_options":{"hybrid_search":{"embedding_weight":5e-324,"text_weight":0}}}'],
    ["threshold 1", `/v1/vector_stores/${store}/search`, '{"query":"granite","ranking_options":{"score_threshold":1}}'],
    ["deep filter", `/v1/vector_stores/${store}/search`, `{"query":"granite","filters":${deepFilter(r.pick([50, 3000, 20000]))}}`],
    ["filter in []", `/v1/vector_stores/${store}/search`, '{"query":"granite","filters":{"type":"in","key":"k","value":[]}}'],
    ["filter gt string", `/v1/vector_stores/${store}/search`, '{"query":"granite","filters":{"type":"gt","key":"k","value":"zz"}}'],
    ["filter nested list", `/v1/vector_stores/${store}/search`, '{"query":"granite","filters":{"type":"eq","key":"k","value":[[1]]}}'],
    ["query only spaces", `/v1/vector_stores/${store}/search`, '{"query":"   "}'],
    ["query only punctuation", `/v1/vector_stores/${store}/search`, '{"query":"?!.,;:()[]{}"}'],
    ["query emoji", `/v1/vector_stores/${store}/search`, '{"query":"🚀🚀🚀"}'],
    ["query NUL", `/v1/vector_stores/${store}/search`, '{"query":"\\u0000"}'],
    ["query lone surrogate", `/v1/vector_stores/${store}/search`, '{"query":"\\ud800 granite"}'],
    ["query 4096", `/v1/vector_stores/${store}/search`, `{"query":"${"granite ".repeat(512)}"}`],
    ["ten queries", `/v1/vector_stores/${store}/search`, `{"query":${JSON.stringify(Array.from({ length: 10 }, (_, i) => `q${i}`))}}`],
    ["embed dimensions 1", "/v1/embeddings", '{"input":"x","model":"default","dimensions":1}', [400]],
    ["embed dimensions huge", "/v1/embeddings", '{"input":"x","model":"default","dimensions":9007199254740993}'],
    ["embed token ids", "/v1/embeddings", '{"input":[1,2,3],"model":"default"}'],
    ["embed nested token ids", "/v1/embeddings", '{"input":[[1,2],[3]],"model":"default"}'],
    ["embed unknown token id", "/v1/embeddings", '{"input":[[1,2],[100300]],"model":"default"}', [400]],
    ["embed fractional token id", "/v1/embeddings", '{"input":[1.5],"model":"default"}', [400]],
    ["embed lone surrogate", "/v1/embeddings", '{"input":"\\udc00\\ud800","model":"default"}'],
    ["embed NUL", "/v1/embeddings", '{"input":"\\u0000\\u0000","model":"default"}'],
    ["embed unknown model", "/v1/embeddings", '{"input":"x","model":"../../models/x"}', [404]],
    ["static chunk edges", `/v1/vector_stores/${w.batchStore}/files`, `{"file_id":"${w.scratchFile}","chunking_strategy":{"type":"static","static":{"max_chunk_size_tokens":100,"chunk_overlap_tokens":51}}}`, [400]],
    ["static chunk max", "/v1/vector_stores", '{"name":"x","chunking_strategy":{"type":"static","static":{"max_chunk_size_tokens":4096,"chunk_overlap_tokens":2048}}}'],
    ["metadata 17 keys", "/v1/vector_stores", `{"metadata":${JSON.stringify(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])))}}`, [400]],
    // The limits the schemas document for metadata and attribute keys (schemas/common.ts).
    ["metadata key of 65", "/v1/vector_stores", `{"metadata":{"${"k".repeat(65)}":"v"}}`, [400]],
    // (an empty key is taken, as OpenAI's schema takes it: keys have a maximum length only)
    ["attribute key empty", `/v1/vector_stores/${w.batchStore}/files/${w.scratchFile}`, '{"attributes":{"":"x"}}', [200]],
    ["attribute key of 65", `/v1/vector_stores/${w.batchStore}/files/${w.scratchFile}`, `{"attributes":{"${"k".repeat(65)}":"x"}}`, [400]],
    ["attribute NUL key, object value", `/v1/vector_stores/${w.batchStore}/files/${w.scratchFile}`, '{"attributes":{"a\\u0000":{"nested":[1,{"x":null}]}}}', [400]],
    ["store name NUL", "/v1/vector_stores", '{"name":"a\\u0000b"}'],
    ["store name lone surrogate", "/v1/vector_stores", '{"name":"\\ud800"}'],
    ["metadata key lone surrogate", "/v1/vector_stores", '{"metadata":{"\\ud800":"\\udfff"}}'],
    ["attribute key NUL", `/v1/vector_stores/${w.batchStore}/files/${w.scratchFile}`, '{"attributes":{"\\u0000":"x"}}', [400]],
    ["attribute 1e308", `/v1/vector_stores/${w.batchStore}/files/${w.scratchFile}`, '{"attributes":{"n":1e308,"m":-1e308}}'],
    ["batch 2001 ids", `/v1/vector_stores/${w.batchStore}/file_batches`, `{"file_ids":${JSON.stringify(Array.from({ length: 2001 }, (_, i) => `file-${String(i).padStart(24, "0")}`))}}`, [400]],
    ["batch both forms", `/v1/vector_stores/${w.batchStore}/file_batches`, `{"file_ids":["${w.scratchFile}"],"files":[{"file_id":"${w.scratchFile}"}]}`, [400]],
    ["batch duplicate ids", `/v1/vector_stores/${w.batchStore}/file_batches`, `{"file_ids":["${w.scratchFile}","${w.scratchFile}"]}`],
    ["batch unknown ids", `/v1/vector_stores/${w.batchStore}/file_batches`, `{"file_ids":["file-${"0".repeat(24)}","../x"]}`],
    ["create with 500 unknown ids", "/v1/vector_stores", `{"file_ids":${JSON.stringify(Array.from({ length: 500 }, (_, i) => `file-${String(i).padStart(24, "0")}`))}}`],
    ["responses previous id", "/v1/responses", `{"input":"x","previous_response_id":"resp_${"0".repeat(40)}"}`],
    ["responses input_file", "/v1/responses", `{"input":[{"role":"user","content":[{"type":"input_file","file_id":"${w.bFile.id}"}]}]}`],
    ["responses foreign store", "/v1/responses", `{"input":"x","tools":[{"type":"file_search","vector_store_ids":["${w.bStore}"]}]}`],
    ["responses odd item", "/v1/responses", '{"input":[{"type":"function_call_output","call_id":null,"output":{"a":1}}]}'],
    ["responses background", "/v1/responses", '{"input":"x","background":true,"store":true}'],
    ["responses stream", "/v1/responses", '{"input":"x","stream":true}'],
    ["__proto__ key, search", `/v1/vector_stores/${store}/search`, '{"query":"granite","__proto__":{"max_num_results":-5}}', [400]],
    ["__proto__ key, embeddings", "/v1/embeddings", '{"__proto__":{"input":"x","model":"default"}}', [400]],
    ["__proto__ key, store", "/v1/vector_stores", '{"name":"x","__proto__":{"polluted":1}}', [400]],
    ["chat stream", "/v1/chat/completions", '{"messages":[{"role":"user","content":"x"}],"stream":true}'],
    ["chat foreign store", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"file_search":{"vector_store_ids":["${w.bStore}"]}}`],
    ["chat no user message", "/v1/chat/completions", '{"messages":[{"role":"system","content":"x"}],"file_search":{}}'],
    ["chat message not object", "/v1/chat/completions", '{"messages":["hi",1,null]}'],
  ];
  const [label, path, body, expect] = r.pick(cases);
  const req = base(`json-edge:${label}`, "POST", path, w);
  jsonHeaders(req, utf8(body));
  if (expect) req.expect = expect;
  return req;
};
/** An and-filter nested `n` deep: the schema and the filter code both recurse on it. */
const deepFilter = (n: number) => nested('{"type":"and","filters":[', '{"type":"eq","key":"k","value":1}', "]}", n);

/** Odd ids on every route that takes one, with a method it answers. */
const oddIds: Gen = (w, r) => {
  const withIds = ROUTES.filter(([t]) => t.includes("{"));
  const [template, methods] = r.pick(withIds);
  const method = r.pick(methods);
  const { path, foreignOnly } = fillIds(template, w, r, method);
  const req = base("ids", method, path, w);
  const json = Object.values(JSON_ROUTES).find((j) => j.method === method && j.template === template);
  if (method === "POST") jsonHeaders(req, utf8(json ? toJson(json.body(w, r)) : "{}"));
  if (foreignOnly) req.foreign = true;
  return req;
};

/** Lists and pages with odd query strings. */
const oddQuery: Gen = (w, r) => {
  const lists = [
    "/v1/files",
    "/v1/vector_stores",
    `/v1/vector_stores/${r.pick([w.store, w.kb])}/files`,
    `/v1/vector_stores/${w.batchStore}/file_batches/${w.batch}/files`,
    `/v1/responses/resp_${r.base62(40)}/input_items`,
    `/v1/responses/resp_${r.base62(40)}`,
    `/ragd/files/${r.pick([w.txt.id, w.md.id])}/chunks`,
    `/v1/vector_stores/${w.store}/files/${w.txt.id}/content`,
    "/v1/models",
  ];
  const params: (() => string)[] = [
    () => `limit=${r.pick(["-1", "0", "1e9", "1e309", "abc", "", "1.5", "0x10", "%20", "1%00", "9007199254740993", "٣", "+5", "10abc"])}`,
    () => `order=${r.pick(["sideways", "ASC", "", "asc%00", "desc,asc"])}`,
    () => `after=${r.pick(["garbage", "", "file-000000000000000000000000", "vs_000000000000000000000000", "%00", "..%2f..%2f", "%ED%A0%80", "x".repeat(3000), w.bFile.id, w.bStore])}`,
    () => `before=${r.pick(["garbage", "", "%FF", w.txt.id, w.store])}`,
    () => `offset=${r.pick(["-1", "x", "1e20", "0", "99999999"])}`,
    () => `purpose=${r.pick(["nope", "", "assistants%00", "ASSISTANTS", "batch,vision"])}`,
    () => `filter=${r.pick(["done", "", "completed%20", "failed"])}`,
    () => `include=${r.pick(["nope", "file_search_call.results", ""])}&include[]=x`,
    () => `stream=${r.pick(["true", "yes", "1", ""])}`,
    () => `starting_after=${r.pick(["-1", "x"])}`,
    () => "limit=1&limit=2&limit=abc",
    () => "order=asc&order=sideways",
    () => "after=a&after=b",
    () => "limit",
    () => "=&&=&",
    () => "%zz=%zz",
    () => `${"k".repeat(2000)}=v`,
    () => `x=${"v".repeat(6000)}`,
    () => "__proto__[polluted]=1&constructor[prototype][x]=1",
    () => "limit[]=1&limit[x]=2",
  ];
  const n = 1 + r.int(3);
  const q = Array.from({ length: n }, () => r.pick(params)()).join("&");
  return base("query", "GET", `${r.pick(lists)}?${q}`, w);
};

/** Range headers on a file's bytes. */
const oddRange: Gen = (w, r) => {
  const id = r.pick([w.txt.id, w.md.id]);
  const req = base("range", "GET", `/v1/files/${id}/content`, w);
  req.headers.push([
    "range",
    utf8(r.pick(["bytes=0-0", "bytes=-1", "bytes=5-2", "bytes=-0", "bytes=999999999999999999999-", "bytes=0-1,2-3", "bytes=abc", "items=0-1", "bytes=--1", "bytes=1e3-", "bytes=9007199254740993-", "bytes= 0 - 1 ", "bytes=0-99999999999", "bytes=", "bytes=-999999999999"])),
  ]);
  return req;
};

// Multipart uploads. `part` writes one part; the generators put odd ones together.
const CRLF = "\r\n";
function part(boundary: string, disposition: string | Buffer, content: Buffer | string, type?: string) {
  return bytes(`--${boundary}${CRLF}Content-Disposition: ${disposition}${CRLF}`, type ? `Content-Type: ${type}${CRLF}` : "", CRLF, content, CRLF);
}
const fileDisp = (filename: string | Buffer) => bytes('form-data; name="file"; filename="', filename, '"');
const close = (boundary: string) => utf8(`--${boundary}--${CRLF}`);

const multipart: Gen = (w, r) => {
  const bd = `fuzz${r.base62(16)}`;
  const purposeOk = r.pick(["batch", "fine-tune", "evals"]); // processed at once: no ingest load
  const jsonl = '{"a":1}\n';
  const good = () => [part(bd, 'form-data; name="purpose"', purposeOk), part(bd, fileDisp("ok.jsonl"), jsonl, "application/jsonl")];
  const cases: [string, () => { body: Buffer; ct?: string; expect?: number[] }][] = [
    ["control: valid", () => ({ body: bytes(...good(), close(bd)), expect: [200] })],
    ["missing file part", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', "assistants"), close(bd)), expect: [400] })],
    ["missing purpose", () => ({ body: bytes(part(bd, fileDisp("note.txt"), "fuzz default purpose"), close(bd)), expect: [200] })],
    ["bad purpose", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', r.pick(["ASSISTANTS", "assistants\u0000", "assistants ", "p".repeat(5000), "🚀", "fine_tune", "knowledge-base"])), part(bd, fileDisp("a.txt"), "x"), close(bd)), expect: [400] })],
    // An empty purpose field is refused; an absent one means the default (services/files.ts checkPurpose).
    ["empty purpose", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', ""), part(bd, fileDisp("a.txt"), "empty purpose note"), close(bd)), expect: [400] })],
    ["empty filename", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', purposeOk), part(bd, fileDisp(""), jsonl), close(bd)), expect: [400] })],
    [
      "filename with path or odd bytes",
      () => ({
        body: bytes(
          part(bd, 'form-data; name="purpose"', purposeOk),
          part(bd, fileDisp(r.pick<string | Buffer>(["../../x.jsonl", "..\\..\\x.jsonl", "C:\\x\\y.jsonl", "/etc/x.jsonl", "a/b/c.jsonl", ".", "..", " ", "%2e%2e%2fx.jsonl", bytes("a", Buffer.from([0]), "b.jsonl"), bytes("a", LONE_SURROGATE, ".jsonl"), "é🚀.jsonl", "x".repeat(300) + ".jsonl", "a%22b.jsonl", "a\\\"b.jsonl"])), jsonl),
          close(bd),
        ),
      }),
    ],
    [
      "filename* odd",
      () => ({
        body: bytes(
          part(bd, 'form-data; name="purpose"', purposeOk),
          part(bd, `form-data; name="file"; filename*=${r.pick(["UTF-8''%00x.jsonl", "UTF-8''..%2F..%2Fx.jsonl", "UTF-8''%ED%A0%80.jsonl", "garbage", "iso-8859-1''%E9.jsonl", "UTF-8''", "''"])}`, jsonl),
          close(bd),
        ),
      }),
    ],
    ["duplicate purpose", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', "vision"), ...good(), close(bd)) })],
    ["two file parts", () => ({ body: bytes(...good(), part(bd, fileDisp("b.jsonl"), jsonl), close(bd)), expect: [400] })],
    ["41 parts", () => ({ body: bytes(...Array.from({ length: 41 }, (_, i) => part(bd, `form-data; name="other"; filename="f${i}"`, "x")), ...good(), close(bd)), expect: [400] })],
    ["33 fields", () => ({ body: bytes(...Array.from({ length: 33 }, (_, i) => part(bd, `form-data; name="f${i}"`, "x")), ...good(), close(bd)), expect: [400] })],
    ["field over 64 KB", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', "p".repeat(70_000)), part(bd, fileDisp("a.jsonl"), jsonl), close(bd)), expect: [400] })],
    ["field name over 200 bytes", () => ({ body: bytes(part(bd, `form-data; name="${"n".repeat(300)}"`, "x"), ...good(), close(bd)), expect: [400] })],
    ["empty file", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', purposeOk), part(bd, fileDisp("e.jsonl"), ""), close(bd)), expect: [400] })],
    [
      "truncated",
      () => {
        const full = bytes(...good(), close(bd));
        return { body: full.subarray(0, r.int(full.length - 3)), expect: [400] };
      },
    ],
    ["no closing delimiter", () => ({ body: bytes(...good()), expect: [400] })],
    ["wrong boundary", () => ({ body: bytes(...good(), close(bd)), ct: `multipart/form-data; boundary=${bd}X`, expect: [400] })],
    ["no boundary", () => ({ body: bytes(...good(), close(bd)), ct: "multipart/form-data", expect: [400] })],
    ["boundary over 70", () => ({ body: bytes(...good(), close(bd)), ct: `multipart/form-data; boundary=${"b".repeat(71)}`, expect: [400] })],
    ["quoted boundary", () => ({ body: bytes(...good(), close(bd)), ct: `multipart/form-data; boundary="${bd}"`, expect: [200] })],
    ["empty boundary", () => ({ body: bytes(...good(), close(bd)), ct: 'multipart/form-data; boundary=""', expect: [400] })],
    ["json label", () => ({ body: bytes(...good(), close(bd)), ct: "application/json", expect: [400] })],
    ["multipart/mixed", () => ({ body: bytes(...good(), close(bd)), ct: `multipart/mixed; boundary=${bd}`, expect: [400] })],
    ["no content-type", () => ({ body: bytes(...good(), close(bd)), ct: "", expect: [400] })],
    ["json body, multipart label", () => ({ body: utf8('{"file":"x","purpose":"batch"}'), expect: [400] })],
    ["part without disposition", () => ({ body: bytes(`--${bd}${CRLF}Content-Type: text/plain${CRLF}${CRLF}x${CRLF}`, ...good(), close(bd)), expect: [400] })],
    ["attachment disposition", () => ({ body: bytes(part(bd, 'attachment; name="file"; filename="a.txt"', "x"), close(bd)), expect: [400] })],
    ["part header over 16 KB", () => ({ body: bytes(`--${bd}${CRLF}X-Pad: ${"p".repeat(17_000)}${CRLF}`, "Content-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n", ...good(), close(bd)), expect: [400] })],
    ["header without colon", () => ({ body: bytes(`--${bd}${CRLF}garbage line${CRLF}${CRLF}x${CRLF}`, ...good(), close(bd)), expect: [400] })],
    ["unterminated quote", () => ({ body: bytes(part(bd, 'form-data; name="file; filename="a.txt', "x"), close(bd)), expect: [400] })],
    ["preamble and epilogue", () => ({ body: bytes("preamble garbage\r\n", ...good(), close(bd), "epilogue garbage"), expect: [200] })],
    ["LF only", () => ({ body: Buffer.from(bytes(...good(), close(bd)).toString("latin1").replaceAll("\r\n", "\n"), "latin1"), expect: [400] })],
    ["expires_after odd", () => ({ body: bytes(part(bd, 'form-data; name="expires_after"', toJson(weirdValue(r)).slice(0, 60_000)), ...good(), close(bd)) })],
    ["expires_after fields odd", () => ({ body: bytes(part(bd, 'form-data; name="expires_after[anchor]"', r.pick(["created_at", "", "x"])), part(bd, 'form-data; name="expires_after[seconds]"', r.pick(["-1", "1e309", "3600.5", "99999999999999999999", "abc", "3600"])), ...good(), close(bd)) })],
    ["jsonl that is not", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', purposeOk), part(bd, fileDisp("bad.jsonl"), r.pick(["[1]\n", "{\n", "\u0000", "null\n"])), close(bd)), expect: [400] })],
    ["vision not an image", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', "vision"), part(bd, fileDisp("x.png"), "not a png"), close(bd)), expect: [400] })],
    ["indexed odd bytes", () => ({ body: bytes(part(bd, 'form-data; name="purpose"', "user_data"), part(bd, fileDisp(r.pick(["x.txt", "x.md", "x.pdf", "x.docx", "x"])), Buffer.from(Array.from({ length: 200 }, () => r.int(256))), r.pick(["text/plain", "application/pdf", "", "a/b/c"])), close(bd)) })],
    [
      "content-length long, then silence",
      () => ({ body: bytes(...good()), expect: [400] }),
    ],
  ];
  // Uploads that succeed add files (and ingest work): keep them a minority.
  let c = r.pick(cases);
  if (c[0] === "indexed odd bytes" && !r.chance(0.3)) c = r.pick(cases.filter((x) => x[0] !== "indexed odd bytes"));
  const made = c[1]();
  const req = base(`multipart:${c[0]}`, "POST", "/v1/files", w);
  const ct = made.ct ?? `multipart/form-data; boundary=${bd}`;
  if (ct) req.headers.push(["content-type", utf8(ct)]);
  req.body = made.body;
  if (c[0] === "content-length long, then silence") {
    req.headers.push(["content-length", utf8(String(req.body.length + 1000))]);
    req.halfClose = true;
  }
  if (made.expect) req.expect = made.expect;
  return req;
};

/** Another project's objects, through every route that names one: 404 and nothing else. */
const foreign: Gen = (w, r) => {
  const cases: [string, string, string?][] = [
    ["GET", `/v1/files/${w.bFile.id}`],
    ["GET", `/v1/files/${w.bFile.id}/content`],
    ["DELETE", `/v1/files/${w.bFile.id}`],
    ["GET", `/v1/vector_stores/${w.bStore}`],
    ["POST", `/v1/vector_stores/${w.bStore}`, '{"name":"stolen"}'],
    ["DELETE", `/v1/vector_stores/${w.bStore}`],
    ["POST", `/v1/vector_stores/${w.bStore}/search`, '{"query":"granite"}'],
    ["GET", `/v1/vector_stores/${w.bStore}/files`],
    ["POST", `/v1/vector_stores/${w.bStore}/files`, `{"file_id":"${w.bFile.id}"}`],
    ["GET", `/v1/vector_stores/${w.bStore}/files/${w.bFile.id}`],
    ["POST", `/v1/vector_stores/${w.bStore}/files/${w.bFile.id}`, '{"attributes":{"a":"b"}}'],
    ["DELETE", `/v1/vector_stores/${w.bStore}/files/${w.bFile.id}`],
    ["GET", `/v1/vector_stores/${w.bStore}/files/${w.bFile.id}/content`],
    ["POST", `/v1/vector_stores/${w.bStore}/file_batches`, `{"file_ids":["${w.bFile.id}"]}`],
    ["GET", `/ragd/files/${w.bFile.id}/chunks`],
    // Another project's file named in project A's own store or body.
    ["POST", `/v1/vector_stores/${w.batchStore}/files`, `{"file_id":"${w.bFile.id}"}`],
    ["GET", `/v1/vector_stores/${w.store}/files/${w.bFile.id}`],
    ["DELETE", `/v1/vector_stores/${w.store}/files/${w.bFile.id}`],
    ["POST", `/v1/vector_stores/${w.batchStore}/file_batches`, `{"file_ids":["${w.bFile.id}"]}`],
    ["POST", "/v1/vector_stores", `{"file_ids":["${w.bFile.id}"]}`],
  ];
  const [method, path, body] = r.pick(cases);
  // Project B looking at A's objects is the same question the other way round.
  const flip = r.chance(0.3);
  const swap = (s: string) => (flip ? flipIds(s, w) : s);
  const req = base(`foreign${flip ? ":b-on-a" : ""}`, method, swap(path), w, flip ? "b" : "a");
  if (body) jsonHeaders(req, utf8(swap(body)));
  req.expect = [404];
  req.foreign = true;
  return req;
};
/** The same request with A's objects where B's were, and B's own store where A's was. */
function flipIds(s: string, w: World): string {
  const map = new Map([
    [w.bStore, w.store],
    [w.store, w.bStore],
    [w.batchStore, w.bStore],
    [w.bFile.id, w.txt.id],
  ]);
  return s.replace(new RegExp([...map.keys()].join("|"), "g"), (m) => map.get(m)!);
}

/** Requests that are wrong as HTTP; Bun's own parser refuses these before ragd sees them. */
const transport: Gen = (w, r) => {
  const cases: [string, () => Omit<Req, "n">][] = [
    ["raw space in path", () => base("transport", "GET", "/v1/files/a b", w)],
    ["NUL in a header", () => ({ ...base("transport", "GET", "/v1/files", w), headers: [["authorization", bytes(`Bearer ${w.keyA}`, Buffer.from([0]))]] })],
    ["unknown method", () => base("transport", "FUZZ", "/v1/files", w)],
    ["asterisk-form target", () => base("transport", "OPTIONS", "*", w)],
    ["header over 16 KB", () => ({ ...base("transport", "GET", "/v1/files", w), headers: [["authorization", utf8(`Bearer ${w.keyA}`)], ["x-huge", utf8("h".repeat(20_000))]] })],
    [
      "bad chunk size",
      () => {
        const q = base("transport", "POST", "/v1/embeddings", w);
        q.headers.push(["content-type", utf8("application/json")], ["transfer-encoding", utf8("chunked")]);
        q.body = utf8("zz\r\nabc\r\n0\r\n\r\n");
        return q;
      },
    ],
    [
      "content-length and chunked",
      () => {
        const q = base("transport", "POST", "/v1/embeddings", w);
        q.headers.push(["content-type", utf8("application/json")], ["transfer-encoding", utf8("chunked")], ["content-length", utf8("3")]);
        q.body = utf8('2\r\n{}\r\n0\r\n\r\n');
        return q;
      },
    ],
  ];
  const [label, make] = r.pick(cases);
  const req = make();
  req.kind = `transport:${label}`;
  req.transport = true;
  return req;
};

/** Odd but legal HTTP: absolute-form targets, a short Host, dot segments, raw non-ASCII. */
const oddTarget: Gen = (w, r) => {
  const cases: [string, () => Omit<Req, "n">][] = [
    ["absolute form", () => base("target", "GET", `http://evil.example/v1/files/${w.txt.id}`, w)],
    ["short host", () => ({ ...base("target", "GET", `/v1/files/${w.txt.id}`, w), headers: [["authorization", utf8(`Bearer ${w.keyA}`)], ["host", utf8("kb")]] })],
    ["dot segments", () => base("target", "GET", `/v1/files/../vector_stores/./${w.store}/../${w.store}`, w)],
    ["double slashes", () => base("target", "GET", `//v1//files//${w.txt.id}`, w)],
    ["trailing slash", () => base("target", "GET", `/v1/files/${w.txt.id}/`, w)],
    ["raw utf-8", () => ({ ...base("target", "GET", "", w), target: bytes("/v1/files/", utf8("é🚀")) })],
    ["raw lone surrogate", () => ({ ...base("target", "GET", "", w), target: bytes("/v1/files/", LONE_SURROGATE) })],
    ["raw 0xff", () => ({ ...base("target", "GET", "", w), target: bytes("/v1/vector_stores/", Buffer.from([0xff])) })],
    ["fragment", () => base("target", "GET", `/v1/files/${w.txt.id}#frag`, w)],
    ["encoded slash in route", () => base("target", "GET", "/v1%2Ffiles", w)],
    ["upper-case path", () => base("target", "GET", "/V1/FILES", w)],
    ["HTTP/1.0", () => ({ ...base("target", "GET", "/v1/files", w), version: "HTTP/1.0" })],
    ["very long path", () => base("target", "GET", `/v1/files/${"a/".repeat(3000)}`, w)],
    ["docs asset traversal", () => base("target", "GET", `/docs/assets/${r.pick(["..%2f..%2fpackage.json", "%2e%2e", "..", "swagger-ui.css%00", "init.js"])}`, w)],
    ["preflight odd", () => ({ ...base("target", "OPTIONS", "/v1/files", w), auth: "none", headers: [["origin", utf8("null")], ["access-control-request-method", utf8("FUZZ")], ["access-control-request-headers", utf8("x".repeat(3000))]] })],
  ];
  const [label, make] = r.pick(cases);
  const req = make();
  req.kind = `target:${label}`;
  return req;
};

const GENERATORS: [number, Gen][] = [
  [8, wrongMethod],
  [14, jsonBody],
  [22, jsonField],
  [6, jsonEdge],
  [12, oddIds],
  [9, oddQuery],
  [2, oddRange],
  [14, multipart],
  [6, foreign],
  [5, oddTarget],
  [1, transport],
];

function generate(w: World): Req[] {
  const r = prng(SEED);
  const out: Req[] = [];
  for (let n = 0; n < COUNT; n++) {
    const req = r.weighted(GENERATORS)(w, r) as Req;
    req.n = n;
    // Any request may also carry a broken key or noisy headers.
    if (!req.transport && !req.foreign && r.chance(0.12)) oddAuth(req, w, r);
    if (!req.transport && r.chance(0.08)) headerNoise(req, r);
    out.push(req);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Sending, and judging what came back.

function wire(req: Req, port: number): Buffer {
  const has = (name: string) => req.headers.some(([k]) => k.toLowerCase() === name);
  const head: (string | Buffer)[] = [`${req.method} `, req.target, ` ${req.version ?? "HTTP/1.1"}\r\n`];
  if (!has("host")) head.push(`Host: 127.0.0.1:${port}\r\n`);
  // The server's log names this id, so a logged fault leads back to the request.
  if (!has("x-request-id")) head.push(`x-request-id: fuzz-${req.n}\r\n`);
  for (const [k, v] of req.headers) head.push(`${k}: `, v, "\r\n");
  if (req.body && !has("content-length") && !has("transfer-encoding")) head.push(`Content-Length: ${req.body.length}\r\n`);
  head.push("Connection: close\r\n\r\n");
  return bytes(...head, req.body ?? Buffer.alloc(0));
}

/**
 * Bytes as text: printable ASCII kept, CR and LF as \r \n, the rest as \xNN. With `printf`,
 * also \ % and ' escaped, so that printf(1) writes the bytes back.
 */
function escaped(b: Buffer, max = 600, printf = false): string {
  let s = "";
  for (const c of b.subarray(0, max)) {
    if (printf && c === 0x5c) s += "\\\\";
    else if (printf && c === 0x25) s += "%%";
    else if (printf && c === 0x27) s += "\\x27";
    else if (c === 0x0d) s += "\\r";
    else if (c === 0x0a) s += "\\n";
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return b.length > max ? `${s}... (${b.length} bytes in all)` : s;
}

/** The request, readable and replayable: the keys shown as $KEY_A / $KEY_B. */
function describeReq(req: Req, w: World): string {
  const hide = (s: string) => s.replaceAll(w.keyA, "$KEY_A").replaceAll(w.keyB, "$KEY_B");
  // In the printf line the keys are spliced out of the single quotes, so the shell fills them in.
  const spliced = (s: string) => s.replaceAll(w.keyA, `'"$KEY_A"'`).replaceAll(w.keyB, `'"$KEY_B"'`);
  const lines = [`#${req.n} [${req.kind}] ${req.method} ${hide(escaped(req.target, 300))}`];
  for (const [k, v] of req.headers) lines.push(`  ${k}: ${hide(escaped(v, 200))}`);
  if (req.body) lines.push(`  body (${req.body.length} bytes): ${hide(escaped(req.body, 400))}`);
  if (req.halfClose) lines.push("  (then the client closes its side)");
  lines.push(`  replay: FUZZ_SEED=${SEED} FUZZ_ONLY=${req.n} bun test --timeout 60000 test/fuzz.e2e.test.ts`);
  lines.push(`  or: printf '${spliced(escaped(wire(req, w.port), 2000, true))}' | nc 127.0.0.1 $PORT`);
  return lines.join("\n");
}

const ERROR_TYPES = new Set(Object.values(ERRORS).map((e) => e.type));

/** The error envelope, checked against src/errors.ts: what is wrong with it, if anything. */
function envelopeProblems(status: number, body: unknown): string[] {
  const p: string[] = [];
  const e = (body as { error?: Record<string, unknown> } | null)?.error;
  if (!e || typeof e !== "object") return [`no "error" object in ${JSON.stringify(body)?.slice(0, 200)}`];
  const keys = Object.keys(body as object);
  if (keys.length !== 1) p.push(`top-level keys ${JSON.stringify(keys)}, expected only "error"`);
  const ek = Object.keys(e).sort().join(",");
  if (ek !== "code,message,param,type") p.push(`error keys ${ek}, expected code,message,param,type`);
  if (typeof e.message !== "string" || !e.message) p.push(`message ${JSON.stringify(e.message)} is not a non-empty string`);
  if (typeof e.type !== "string" || !ERROR_TYPES.has(e.type as never)) p.push(`type ${JSON.stringify(e.type)} is not one of ${[...ERROR_TYPES].join("|")}`);
  if (e.param !== null && typeof e.param !== "string") p.push(`param ${JSON.stringify(e.param)} is neither a string nor null`);
  if (e.code === null) {
    // Only the codes OpenAI itself sends without one (errors.ts `wire: null`).
    const nullable = Object.values(ERRORS).filter((x) => "wire" in x && x.wire === null);
    if (!nullable.some((x) => x.status === status && x.type === e.type)) p.push(`code null with ${status}/${e.type}: no error of that kind is sent without a code`);
  } else if (typeof e.code !== "string") p.push(`code ${JSON.stringify(e.code)} is neither a string nor null`);
  else {
    const entry = (ERRORS as Record<string, { status: number; type: string }>)[e.code];
    if (!entry) p.push(`code ${e.code} is not in src/errors.ts`);
    else {
      if (entry.status !== status) p.push(`code ${e.code} belongs with ${entry.status}, came with ${status}`);
      if (entry.type !== e.type) p.push(`code ${e.code} has type ${entry.type}, came with ${e.type}`);
    }
  }
  return p;
}

/** 503s the API documents for a healthy server without a model server: answers need one. */
function documented503(req: Req, code: unknown): boolean {
  const path = req.target.toString("latin1").split("?")[0];
  if (req.method === "GET" && path === "/ready") return true;
  return req.method === "POST" && /^\/v1\/(responses|chat\/completions)\/?$/.test(path!) && code === "model_server_not_configured";
}

interface Finding {
  req: Req;
  problems: string[];
  got: string;
}

function judge(req: Req, out: RawOutcome): string[] {
  const problems: string[] = [];
  if (!out.ok) {
    // A request that ends its own body early, or that Bun's parser throws out, may get no answer.
    if (req.halfClose || req.transport) return [];
    return [`${out.error} after ${Math.round(out.ms)} ms`];
  }
  const { status, headers, body } = out.res;
  // A stalled event loop delays every request in flight; the first of them is usually the cause.
  if (out.ms > SLOW_MS) problems.push(`slow answer: ${Math.round(out.ms)} ms`);
  const fromRagd = headers["x-request-id"] !== undefined;
  if (req.transport) {
    // Bun's parser answered (no request id): an empty answer is all it sends. If ragd answered,
    // every rule below applies.
    if (!fromRagd) return body.length ? [`Bun's parser answered ${status} with a body: ${body.toString().slice(0, 200)}`] : [];
  } else if (!fromRagd) problems.push(`answered without x-request-id (ragd's handler never saw it?)`);
  const ct = headers["content-type"] ?? "";
  let json: unknown = undefined;
  if (/application\/json/.test(ct) && body.length) {
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {
      problems.push(`content-type ${ct} but the body is not JSON: ${body.toString("latin1").slice(0, 200)}`);
    }
  }
  const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  if (status >= 500 && !(status === 503 && documented503(req, code))) problems.push(`server error ${status}`);
  if (status === 403) problems.push("403: another project's or an unknown object must be a 404");
  if (status >= 400 && req.method !== "HEAD") {
    if (!/^application\/json\b/.test(ct)) problems.push(`error content-type is "${ct}", not application/json`);
    else if (json !== undefined) problems.push(...envelopeProblems(status, json));
    else if (!body.length) problems.push("error with an empty body");
  }
  const path = req.target.toString("latin1").split("?")[0]!;
  if (status >= 200 && status < 300 && (req.auth === "bad" || req.auth === "none") && !PUBLIC.test(path) && req.method !== "OPTIONS")
    problems.push(`a ${req.auth === "none" ? "missing" : "bad"} key got ${status}`);
  if (req.foreign && (req.auth === "a" || req.auth === "b") && status < 400) problems.push(`another project's object answered ${status}, expected 404`);
  if (req.expect && (req.auth === "a" || req.auth === "b") && !req.expect.includes(status) && status !== 404 && !problems.length)
    problems.push(`expected ${req.expect.join(" or ")}, got ${status}`);
  return problems;
}

async function storm(w: World, reqs: Req[]) {
  const findings: Finding[] = [];
  const dump: string[] = [];
  const tally = new Map<string, Map<number, number>>();
  const queue = reqs.filter((q) => !ONLY || ONLY.has(q.n));
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const req = queue[next++]!;
      const out = await rawRequest(w.port, wire(req, w.port), { halfClose: req.halfClose, head: req.method === "HEAD", timeoutMs: 20_000 });
      const cls = req.kind.split(":")[0]!;
      const byStatus = tally.get(cls) ?? new Map<number, number>();
      const status = out.ok ? out.res.status : -1;
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      tally.set(cls, byStatus);
      const problems = judge(req, out);
      if (DUMP)
        dump.push(
          JSON.stringify({ n: req.n, kind: req.kind.slice(0, 120), method: req.method, target: escaped(req.target, 200), auth: req.auth, status, ms: Math.round(out.ms), body: out.ok ? out.res.body.toString("utf8").slice(0, 200) : out.error, problems }),
        );
      if (problems.length)
        findings.push({ req, problems, got: out.ok ? `${out.res.status} ${out.res.headers["content-type"] ?? "(no content-type)"} ${out.res.body.toString("utf8").slice(0, 300)}` : `${out.error}; partial: ${out.partial}` });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  if (DUMP) await Bun.write(DUMP, dump.join("\n") + "\n");
  return { findings, tally, sent: queue.length };
}

/**
 * A fault the server logged is one even when its answer looked right. Each request carries
 * x-request-id fuzz-<n>, so a log line leads back to it; the lines that do not (the noise
 * generator replaced the id) are returned.
 */
function addLoggedFaults(stderr: string, reqs: Req[], findings: Finding[]): string[] {
  const unmatched: string[] = [];
  for (const line of stderr.split("\n").filter((l) => /unhandled|uncaught|panic|segfault/i.test(l))) {
    const n = /request_id=fuzz-(\d+)/.exec(line)?.[1];
    const req = n !== undefined ? reqs[Number(n)] : undefined;
    const logged = line.replace(/^\S+ /, "").slice(0, 300);
    const problem = `the server logged: ${logged.replace(/request_id=\S+ /, "")}`;
    const known = req && findings.find((f) => f.req === req);
    if (known) known.problems.push(problem);
    else if (req) findings.push({ req, problems: [problem], got: "(an answer that broke no other rule)" });
    else unmatched.push(logged.replace(/request_id=\S+ /, ""));
  }
  return unmatched;
}

/**
 * The failure message: findings grouped by problem (ids, paths and numbers blurred) so that
 * one bug is not reported a hundred times, with the two smallest requests of each group in
 * full, as the minimal reproductions.
 */
function report(findings: Finding[], unmatched: string[], sent: number, w: World): string {
  const groups = new Map<string, Finding[]>();
  for (const f of findings) {
    const key = f.problems
      .map((p) => p.replace(/path=\S+/g, "path=…").replace(/\b(file-|vs_|vsfb_|resp_)\w+/g, "$1…").replace(/\d+/g, "N").slice(0, 110))
      .map((p) => (p.startsWith("expected") ? `${f.req.kind.split(":").slice(0, 2).join(":")}: ${p}` : p))
      .join("; ");
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const size = (f: Finding) => wire(f.req, w.port).length;
  const text = [...groups].map(([key, fs]) => {
    const kinds = [...new Set(fs.map((f) => f.req.kind.split(":").slice(0, 2).join(":")))].join(", ");
    const head = `== ${fs.length}× ${key}\n   (from: ${kinds.slice(0, 300)})\n`;
    // A stall delays every request in flight with the one that caused it: all are listed, in
    // the order they were sent; the cause is among the first (or in a group of its own).
    if (key === "slow answer: N ms")
      return head + [...fs].sort((x, y) => x.req.n - y.req.n).map((f) => `  #${f.req.n} [${f.req.kind.slice(0, 90)}] ${f.req.method} ${escaped(f.req.target, 80)} ${f.problems[0]}`).join("\n");
    const shown = [...fs].sort((x, y) => size(x) - size(y)).slice(0, 2);
    return head + shown.map((f) => `${describeReq(f.req, w)}\n  => ${f.problems.join("; ")}\n  got: ${f.got}`).join("\n");
  });
  if (unmatched.length) text.push(`== ${unmatched.length}× not tied to one request:\n  ${[...new Set(unmatched)].join("\n  ")}`);
  return `${findings.length} of ${sent} requests broke a rule (${groups.size} kinds of problem):\n\n${text.join("\n\n")}`;
}

// ---------------------------------------------------------------------------------------

const TXT = "Granite quarries of the northern ridge. The zephyrquartz seam runs under the old mill, and the quarrymen split it by hand.\n";
const MD = "# Basalt columns\n\nThe obsidianmarmot colony lives among hexagonal basalt columns on the western shore.\n\n- cooled lava\n- sea cliffs\n";

describe("a storm of bad and odd requests", () => {
  let ragd: Ragd;
  let w: World;
  let reqs: Req[] = [];
  let a: OpenAI;
  let b: OpenAI;

  beforeAll(async () => {
    // A short idle timeout, so a request whose body never comes is cut within the test's time.
    ragd = await startRagd({ args: ["--idle-timeout", "5"] });
    a = ragd.client();
    const keyB = await createKey(ragd.dataDir, "fuzz-other");
    b = ragd.client(keyB);

    const txt = await a.files.create({ file: await toFile(Buffer.from(TXT), "quarries.txt"), purpose: "assistants" });
    const md = await a.files.create({ file: await toFile(Buffer.from(MD), "basalt.md"), purpose: "assistants" });
    const store = await a.vectorStores.create({ name: "fuzz protected", file_ids: [txt.id, md.id] });
    const scratch = await a.files.create({ file: await toFile(Buffer.from("scratch granite note"), "scratch.txt"), purpose: "user_data" });
    const batchStore = await a.vectorStores.create({ name: "fuzz batch" });
    const batch = await a.vectorStores.fileBatches.create(batchStore.id, { file_ids: [scratch.id] });
    const doomedFile = await a.files.create({ file: await toFile(Buffer.from('{"doomed":1}\n'), "doomed.jsonl"), purpose: "batch" });
    const doomedStore = await a.vectorStores.create({ name: "fuzz doomed" });
    const kb = (await a.vectorStores.list({ limit: 100 })).data.find((s) => s.name === "knowledge base")!;
    const bFile = await b.files.create({ file: await toFile(Buffer.from("project B granite ledger"), "b.txt"), purpose: "assistants" });
    const bStore = await b.vectorStores.create({ name: "b store", file_ids: [bFile.id] });
    const model = (await a.models.list()).data[0]!.id;
    for (const f of [txt, md]) expect((await a.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 30_000 })).status).toBe("processed");
    await waitCompleted(a, store.id, 2);
    await waitCompleted(b, bStore.id, 1);
    // The bytes as the server gives them back before the storm: what it must still give after.
    const download = async (c: OpenAI, id: string) => Buffer.from(await (await c.files.content(id)).arrayBuffer());
    const [txtBytes, mdBytes, bBytes] = await Promise.all([download(a, txt.id), download(a, md.id), download(b, bFile.id)]);
    expect(txtBytes.equals(Buffer.from(TXT)) && mdBytes.equals(Buffer.from(MD))).toBe(true);

    w = {
      port: Number(new URL(ragd.url).port),
      keyA: ragd.key,
      keyB,
      txt: { id: txt.id, bytes: txtBytes },
      md: { id: md.id, bytes: mdBytes },
      store: store.id,
      kb: kb.id,
      scratchFile: scratch.id,
      batchStore: batchStore.id,
      batch: batch.id,
      doomedFile: doomedFile.id,
      doomedStore: doomedStore.id,
      bFile: { id: bFile.id, bytes: bBytes },
      bStore: bStore.id,
      model,
    };
  }, 60_000);

  afterAll(async () => {
    await ragd?.stop();
    if (ragd) cleanup(ragd.dataDir);
  });

  test(`${COUNT} generated requests (seed ${SEED}): no 5xx, every error in the OpenAI envelope, no hang`, async () => {
    reqs = generate(w);
    const started = performance.now();
    const { findings, tally, sent } = await storm(w, reqs);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    await Bun.sleep(300); // the server's log lines of the last answers
    const unmatched = addLoggedFaults(ragd.stderr(), reqs, findings);
    const peak = peakMB(ragd.proc.pid);
    if (peak > PEAK_MB) unmatched.push(`the server's peak resident memory reached ${peak} MB (limit ${PEAK_MB} MB)`);
    const summary = [...tally].map(([cls, m]) => `${cls}: ${[...m].sort((x, y) => x[0] - y[0]).map(([s, n]) => `${s === -1 ? "none" : s}×${n}`).join(" ")}`).join("\n  ");
    console.log(`fuzz: ${sent} requests in ${seconds} s (seed ${SEED})\n  ${summary}`);
    if (findings.length || unmatched.length) throw new Error(report(findings, unmatched, sent, w));
  }, 300_000);

  test("after the storm: alive, and setup's files listed, byte-identical and found by search", async () => {
    const health = await fetch(`${ragd.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    expect(ragd.proc.exitCode).toBeNull();
    expect(ragd.proc.signalCode ?? null).toBeNull();

    const listed = new Set<string>();
    for await (const f of a.files.list({ limit: 10000 })) listed.add(f.id);
    for (const f of [w.txt, w.md]) {
      expect(listed.has(f.id)).toBe(true);
      expect((await a.files.retrieve(f.id)).bytes).toBe(f.bytes.length);
      expect(Buffer.from(await (await a.files.content(f.id)).arrayBuffer()).equals(f.bytes)).toBe(true);
    }
    // A fuzzed request may rightly have re-attached a file with another chunking: let it finish.
    await waitCompleted(a, w.store, 2);
    const inStore = (await a.vectorStores.files.list(w.store, { limit: 100 })).data;
    for (const id of [w.txt.id, w.md.id]) expect(inStore.find((f) => f.id === id)?.status).toBe("completed");
    for (const [q, id] of [
      ["zephyrquartz seam under the mill", w.txt.id],
      ["obsidianmarmot colony basalt", w.md.id],
    ] as const) {
      const hits = await a.vectorStores.search(w.store, { query: q, max_num_results: 5 });
      expect(hits.data.map((h) => h.file_id)).toContain(id);
      expect(hits.data[0]!.file_id).toBe(id);
    }
    // Project B's objects were aimed at by project A all along: still there, unchanged.
    expect(Buffer.from(await (await b.files.content(w.bFile.id)).arrayBuffer()).equals(w.bFile.bytes)).toBe(true);
    expect((await b.vectorStores.retrieve(w.bStore)).name).toBe("b store");
    expect((await b.vectorStores.files.list(w.bStore)).data.map((f) => f.id)).toEqual([w.bFile.id]);
  }, 60_000);
});

/** Peak resident memory of a process (VmHWM), in MB. */
const peakMB = (pid: number) => Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024);

/** Polls until the store holds `n` completed files and nothing in progress. */
async function waitCompleted(c: OpenAI, storeId: string, n: number) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await c.vectorStores.retrieve(storeId);
    if (s.file_counts.in_progress === 0 && s.file_counts.completed >= n) return s;
    if (Date.now() > deadline) throw new Error(`store ${storeId} not completed: ${JSON.stringify(s.file_counts)}`);
    await Bun.sleep(100);
  }
}
