import { afterAll, beforeAll, expect, test } from "bun:test";
import { toFile } from "openai";
import { blobFiles, cleanup, startRagd, type Ragd } from "./helpers/ragd";

let ragd: Ragd;
let auth: Record<string, string>;
let snapshot: string;

/** The project's files and their bytes, to prove a bad request changed nothing. */
async function state() {
  const c = ragd.client();
  const files = (await c.files.list({ order: "asc" })).data;
  const parts = await Promise.all(files.map(async (f) => `${f.id}:${f.bytes}:${Bun.hash(await (await c.files.content(f.id)).arrayBuffer())}`));
  return JSON.stringify({ parts, blobs: blobFiles(ragd.dataDir).sort() });
}

beforeAll(async () => {
  ragd = await startRagd();
  auth = { authorization: `Bearer ${ragd.key}` };
  const c = ragd.client();
  await c.files.create({ file: await toFile(Buffer.from("keep me"), "keep.txt"), purpose: "assistants" });
  await c.files.create({ file: await toFile(Buffer.from('{"x":1}\n'), "keep.jsonl"), purpose: "batch" });
  snapshot = await state();
});
afterAll(async () => {
  await ragd.stop();
  cleanup(ragd.dataDir);
});

async function expect400(res: Response, param: string | null, status = 400) {
  const body = await res.json();
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error.type).toBe("invalid_request_error");
  expect(body.error.param).toBe(param);
  expect(body.error.message.length).toBeGreaterThan(10);
  expect(await state()).toBe(snapshot);
  return body.error;
}

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${ragd.baseURL}/files`, { method: "POST", body, headers: { ...auth, ...headers } });

function form(fields: Record<string, string>, file?: { name: string; data: BlobPart }) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  if (file) f.append("file", new Blob([file.data]), file.name);
  return f;
}

test("no file field", async () => {
  await expect400(await post(form({ purpose: "assistants" })), "file");
});

test("empty file", async () => {
  const e = await expect400(await post(form({ purpose: "assistants" }, { name: "empty.txt", data: "" })), "file");
  expect(e.message).toContain("empty");
});

test("garbage multipart body", async () => {
  await expect400(await post("this is not multipart at all \x00\x01\x02", { "content-type": "multipart/form-data; boundary=zzz" }), null);
  await expect400(await post("--zzz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\ncut off", { "content-type": "multipart/form-data; boundary=zzz" }), null);
});

test("wrong content type", async () => {
  await expect400(await post(JSON.stringify({ file: "x", purpose: "assistants" }), { "content-type": "application/json" }), null);
  await expect400(await post("file=x", { "content-type": "application/x-www-form-urlencoded" }), null);
  await expect400(await post("abc", { "content-type": "multipart/form-data" }), null); // no boundary
});

test("huge filename", async () => {
  const e = await expect400(await post(form({ purpose: "assistants" }, { name: "a".repeat(5000) + ".txt", data: "x" })), "file");
  expect(e.message).toContain("255");
});

test("control characters in a filename are refused; unicode is kept", async () => {
  for (const bad of ["evil\u0001name.txt", "tab\there.txt", "bell\u0007.txt", "del\u007f.txt", "c1\u0085.txt"])
    await expect400(await post(form({ purpose: "assistants" }, { name: bad, data: "x" })), "file");
  const r = await post(form({ purpose: "assistants" }, { name: "résumé – 履歴書 🚀.txt", data: "unicode" }));
  const ok = await r.json();
  expect(r.status).toBe(200);
  expect(ok.filename).toBe("résumé – 履歴書 🚀.txt");
  await ragd.client().files.delete(ok.id);
});

test("limit, order and offset out of range", async () => {
  const get = (q: string) => fetch(`${ragd.baseURL}/files?${q}`, { headers: auth });
  await expect400(await get("limit=0"), "limit");
  await expect400(await get("limit=abc"), "limit");
  await expect400(await get("limit=10001"), "limit");
  await expect400(await get("limit=-1"), "limit");
  await expect400(await get("order=sideways"), "order");
  await expect400(await get("offset=x"), "offset");
  await expect400(await get("purpose=nope"), "purpose");
});

test("unknown after id", async () => {
  await expect400(await fetch(`${ragd.baseURL}/files?after=file-000000000000000000000000`, { headers: auth }), "after");
  await expect400(await fetch(`${ragd.baseURL}/files?after=../../etc`, { headers: auth }), "after");
});

test("malformed expires_after", async () => {
  const f = (fields: Record<string, string>) => post(form({ purpose: "assistants", ...fields }, { name: "e.txt", data: "x" }));
  await expect400(await f({ expires_after: "{not json" }), "expires_after");
  await expect400(await f({ "expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600" }), "expires_after.anchor");
  await expect400(await f({ "expires_after[anchor]": "created_at", "expires_after[seconds]": "soon" }), "expires_after.seconds");
  await expect400(await f({ "expires_after[anchor]": "created_at", "expires_after[seconds]": "9999999" }), "expires_after.seconds");
});

test("a form field the operation does not take is refused, not dropped", async () => {
  const file = { name: "u.jsonl", data: '{"x":1}\n' };
  // A misspelt purpose or expiry would otherwise store the file under the defaults.
  expect((await expect400(await post(form({ Purpose: "batch" }, file)), "Purpose")).code).toBe("unknown_parameter");
  expect((await expect400(await post(form({ purpose: "batch", "expire_after[anchor]": "created_at" }, file)), "expire_after[anchor]")).code).toBe("unknown_parameter");
  // A second file under another name too, wherever it comes in the body.
  const extra = form({ purpose: "assistants" }, { name: "a.txt", data: "a" });
  extra.append("attachment", new Blob(["b"]), "b.txt");
  expect((await expect400(await post(extra), "attachment")).code).toBe("unknown_parameter");
  // expires_after said twice, two ways: which one is meant cannot be told.
  await expect400(await post(form({ purpose: "assistants", expires_after: '{"anchor":"created_at","seconds":3600}', "expires_after[anchor]": "created_at", "expires_after[seconds]": "7200" }, file)), "expires_after");
  // An upload's part takes only its bytes.
  const up = await ragd.client().uploads.create({ filename: "p.txt", purpose: "assistants", bytes: 1, mime_type: "text/plain" });
  const part = new FormData();
  part.append("data", new Blob(["p"]), "p.bin");
  part.append("note", "hello");
  const res = await fetch(`${ragd.baseURL}/uploads/${up.id}/parts`, { method: "POST", body: part, headers: auth });
  expect((await expect400(res, "note")).code).toBe("unknown_parameter");
  await ragd.client().uploads.cancel(up.id);
});

test("two file parts", async () => {
  const fd = form({ purpose: "assistants" }, { name: "a.txt", data: "a" });
  fd.append("file", new Blob(["b"]), "b.txt");
  await expect400(await post(fd), "file");
});

test("odd file ids are plain 404s, and unknown routes are enveloped", async () => {
  for (const id of ["nope", "file-../../x", "%2e%2e%2fetc%2fpasswd", "file-000000000000000000000000"]) {
    const r = await fetch(`${ragd.baseURL}/files/${id}`, { headers: auth });
    expect(r.status).toBe(404);
    expect((await r.json()).error.type).toBe("invalid_request_error");
  }
  const r = await fetch(`${ragd.baseURL}/nothing-here`, { headers: auth });
  expect(r.status).toBe(404);
  expect((await r.json()).error).toMatchObject({ type: "invalid_request_error", code: "unknown_url" });
  expect(await state()).toBe(snapshot);
});

test("the server still serves after all of that", async () => {
  expect((await fetch(`${ragd.url}/health`)).status).toBe(200);
  expect(await state()).toBe(snapshot);
});
