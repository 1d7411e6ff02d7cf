// The Uploads API (/v1/uploads) through the official SDK: a file sent in parts becomes one
// file, byte for byte, and is ingested as any upload; what cannot be completed says why.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import OpenAI, { APIError, toFile } from "openai";
import { apiError, blobFiles, cleanup, createKey, startRagd, tempDir, type Ragd } from "./helpers/ragd";

let ragd: Ragd;
let client: OpenAI;

beforeAll(async () => {
  ragd = await startRagd();
  client = ragd.client();
});
afterAll(async () => {
  await ragd.stop();
  cleanup(ragd.dataDir);
});

const partsOf = (bytes: Buffer, size: number) => Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));

test("parts sent out of order and listed in order make one file, byte for byte, which is ingested and searchable", async () => {
  const text = Buffer.from(
    Array.from({ length: 400 }, (_, i) => `Line ${i}: the estuary's tidal turbines feed the harbour cranes at night.`).join("\n") + "\nThe lighthouse keeper logs every tanker named Meridian.\n",
  );
  const u = await client.uploads.create({ filename: "harbour.txt", purpose: "assistants", bytes: text.length, mime_type: "text/plain" });
  expect(u).toMatchObject({ object: "upload", status: "pending", filename: "harbour.txt", purpose: "assistants", bytes: text.length, file: null });
  expect(u.id).toMatch(/^upload_[0-9A-Za-z]{24}$/);
  expect(u.expires_at - u.created_at).toBe(3600);
  const chunks = partsOf(text, 10_000);
  // sent at once, in whatever order they arrive: the order is the complete's
  const parts = await Promise.all(chunks.map(async (c, i) => client.uploads.parts.create(u.id, { data: await toFile(c, `part-${i}`) })));
  for (const p of parts) expect(p).toMatchObject({ object: "upload.part", upload_id: u.id });
  expect(parts[0]!.id).toMatch(/^part_[0-9A-Za-z]{24}$/);
  const done = await client.uploads.complete(u.id, { part_ids: parts.map((p) => p.id), md5: createHash("md5").update(text).digest("hex") });
  expect(done).toMatchObject({ id: u.id, status: "completed", file: { object: "file", filename: "harbour.txt", bytes: text.length, purpose: "assistants" } });
  const fileId = done.file!.id;
  expect(Buffer.from(await (await client.files.content(fileId)).arrayBuffer()).equals(text)).toBe(true);
  const f = await client.files.waitForProcessing(fileId, { pollInterval: 100 });
  expect(f.status).toBe("processed");
  const kb = (await client.vectorStores.list()).data[0]!.id;
  const hits = await client.vectorStores.search(kb, { query: "lighthouse keeper tanker Meridian" });
  expect(hits.data[0]?.file_id).toBe(fileId);
  // the parts' blobs went with the upload: what is left is the file's
  expect(blobFiles(ragd.dataDir).filter((p) => parts.some((part) => p.endsWith(part.id)))).toEqual([]);
  // ended: no more parts and no cancel; a complete asked again (a retry whose answer was lost) answers the same file
  expect((await apiError(client.uploads.parts.create(u.id, { data: await toFile(Buffer.from("more"), "x") }))).code).toBe("upload_not_pending");
  const again = await client.uploads.complete(u.id, { part_ids: parts.map((p) => p.id) });
  expect(again).toMatchObject({ id: u.id, status: "completed", file: { id: fileId } });
  const cancel = await apiError(client.uploads.cancel(u.id));
  expect([cancel.status, cancel.code]).toEqual([400, "upload_not_pending"]);
  expect(cancel.message).toContain("already completed");
});

test("a complete whose parts do not add up, repeat a part, name another upload's part or fail the md5 is refused, and the upload can still be completed", async () => {
  const a = Buffer.from("alpha ".repeat(500));
  const b = Buffer.from("beta ".repeat(500));
  const u = await client.uploads.create({ filename: "ab.txt", purpose: "assistants", bytes: a.length + b.length, mime_type: "text/plain" });
  const pa = await client.uploads.parts.create(u.id, { data: await toFile(a, "a") });
  const short = await apiError(client.uploads.complete(u.id, { part_ids: [pa.id] }));
  expect([short.status, short.code, short.param]).toEqual([400, "upload_size_mismatch", "part_ids"]);
  const pb = await client.uploads.parts.create(u.id, { data: await toFile(b, "b") });
  expect((await apiError(client.uploads.complete(u.id, { part_ids: [pa.id, pa.id] }))).message).toContain("twice");
  const other = await client.uploads.create({ filename: "o.txt", purpose: "assistants", bytes: 5, mime_type: "text/plain" });
  const po = await client.uploads.parts.create(other.id, { data: await toFile(Buffer.from("other"), "o") });
  expect((await apiError(client.uploads.complete(u.id, { part_ids: [pa.id, po.id] }))).message).toContain("is not a part of");
  const wrong = await apiError(client.uploads.complete(u.id, { part_ids: [pa.id, pb.id], md5: createHash("md5").update("something else").digest("hex") }));
  expect([wrong.status, wrong.code, wrong.param]).toEqual([400, "checksum_mismatch", "md5"]);
  // (a refused complete leaves no file behind)
  expect((await client.files.list()).data.filter((f) => f.filename === "ab.txt")).toEqual([]);
  // the order listed is the file's
  const done = await client.uploads.complete(u.id, { part_ids: [pb.id, pa.id] });
  expect(Buffer.from(await (await client.files.content(done.file!.id)).arrayBuffer()).toString()).toBe(b.toString() + a.toString());
});

test("a cancelled upload drops its parts and takes no more; bad input says what is wrong; another project's upload is not found", async () => {
  const u = await client.uploads.create({ filename: "c.jsonl", purpose: "batch", bytes: 10, mime_type: "application/jsonl" });
  const part = await client.uploads.parts.create(u.id, { data: await toFile(Buffer.from("0123456789"), "c") });
  expect(blobFiles(ragd.dataDir).filter((p) => p.endsWith(part.id))).toHaveLength(1);
  const c = await client.uploads.cancel(u.id);
  expect(c).toMatchObject({ id: u.id, status: "cancelled", file: null });
  expect(blobFiles(ragd.dataDir).filter((p) => p.endsWith(part.id))).toEqual([]);
  expect((await apiError(client.uploads.parts.create(u.id, { data: await toFile(Buffer.from("x"), "x") }))).message).toContain("was cancelled");

  // a part larger than the upload, an empty one, a part without `data`
  const small = await client.uploads.create({ filename: "s.txt", purpose: "assistants", bytes: 4, mime_type: "text/plain" });
  const big = await apiError(client.uploads.parts.create(small.id, { data: await toFile(Buffer.from("too many bytes"), "s") }));
  expect([big.status, big.code, big.param]).toEqual([413, "file_too_large", "data"]);
  expect((await apiError(client.uploads.parts.create(small.id, { data: await toFile(Buffer.alloc(0), "e") }))).code).toBe("empty_file");
  const form = new FormData();
  form.set("file", new File(["abcd"], "s.txt"));
  const r = await fetch(`${ragd.url}/v1/uploads/${small.id}/parts`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}` }, body: form });
  expect(r.status).toBe(400);
  // (refused as the part begins, saying which field the bytes go in)
  const misnamed = ((await r.json()) as { error: { code: string; param: string; message: string } }).error;
  expect(misnamed).toMatchObject({ code: "unknown_parameter", param: "file" });
  expect(misnamed.message).toContain("form field 'data'");
  // a part sent as a plain field (no filename) is taken
  const plain = new FormData();
  plain.set("data", "abcd");
  const pr = await fetch(`${ragd.url}/v1/uploads/${small.id}/parts`, { method: "POST", headers: { authorization: `Bearer ${ragd.key}` }, body: plain });
  expect(pr.status).toBe(200);
  expect((await client.uploads.complete(small.id, { part_ids: [((await pr.json()) as { id: string }).id] })).file?.bytes).toBe(4);

  // create: purpose, filename, size, body
  expect((await apiError(client.uploads.create({ filename: "x.txt", purpose: "nonsense" as "assistants", bytes: 3, mime_type: "text/plain" }))).status).toBe(400);
  expect((await apiError(client.uploads.create({ filename: "", purpose: "assistants", bytes: 3, mime_type: "text/plain" }))).status).toBe(400);
  expect((await apiError(client.uploads.create({ filename: "x.txt", purpose: "assistants", bytes: 0, mime_type: "text/plain" }))).param).toBe("bytes");
  const huge = await apiError(client.uploads.create({ filename: "x.txt", purpose: "assistants", bytes: 2 ** 50, mime_type: "text/plain" }));
  expect([huge.status, huge.code]).toEqual([413, "file_too_large"]);
  expect((await apiError(client.uploads.complete("upload_nope", { part_ids: [] }))).status).toBe(404);
  // what the purpose needs is checked at create, before any part is sent
  const notJsonl = await apiError(client.uploads.create({ filename: "c.txt", purpose: "batch", bytes: 10, mime_type: "application/jsonl" }));
  expect([notJsonl.status, notJsonl.code, notJsonl.param]).toEqual([400, "invalid_file_format", "filename"]);
  const notImage = await apiError(client.uploads.create({ filename: "v.png", purpose: "vision", bytes: 10, mime_type: "text/plain" }));
  expect([notImage.status, notImage.code, notImage.param]).toEqual([400, "invalid_file_format", "mime_type"]);
  // a path sent as the filename is named as its file will be
  expect((await client.uploads.create({ filename: "dir/sub/n.txt", purpose: "assistants", bytes: 3, mime_type: "text/plain" })).filename).toBe("n.txt");

  // another project sees none of it
  const otherKey = await createKey(ragd.dataDir, "other-uploads");
  const other = new OpenAI({ baseURL: `${ragd.url}/v1`, apiKey: otherKey, maxRetries: 0 });
  const mine = await client.uploads.create({ filename: "m.txt", purpose: "assistants", bytes: 3, mime_type: "text/plain" });
  expect((await apiError(other.uploads.parts.create(mine.id, { data: await toFile(Buffer.from("abc"), "m") }))).status).toBe(404);
  expect((await apiError(other.uploads.cancel(mine.id))).status).toBe(404);
  expect((await apiError(other.uploads.complete(mine.id, { part_ids: [] }))).status).toBe(404);
});

test("a part that does not fit its purpose fails the complete as an upload would, and the upload stays open", async () => {
  const body = Buffer.from("this is not JSON lines\n");
  const u = await client.uploads.create({ filename: "train.jsonl", purpose: "fine-tune", bytes: body.length, mime_type: "application/jsonl" });
  const p = await client.uploads.parts.create(u.id, { data: await toFile(body, "p") });
  const e = await apiError(client.uploads.complete(u.id, { part_ids: [p.id] }));
  expect([e.status, e.code]).toEqual([400, "invalid_file_format"]);
  expect((await client.uploads.cancel(u.id)).status).toBe("cancelled");
});

test("an upload's parts outlast a restart (and the start's sweep for orphan blobs), and it completes after", async () => {
  const dataDir = tempDir();
  let server = await startRagd({ dataDir });
  try {
    const c = server.client();
    const u = await c.uploads.create({ filename: "kept.txt", purpose: "user_data", bytes: 12, mime_type: "text/plain" });
    const p1 = await c.uploads.parts.create(u.id, { data: await toFile(Buffer.from("kept across"), "1") });
    await server.stop();
    server = await startRagd({ dataDir });
    const c2 = server.client();
    // the start's sweep runs beside requests: give it its moment
    await Bun.sleep(300);
    const p2 = await c2.uploads.parts.create(u.id, { data: await toFile(Buffer.from("!"), "2") });
    const done = await c2.uploads.complete(u.id, { part_ids: [p1.id, p2.id] });
    expect(Buffer.from(await (await c2.files.content(done.file!.id)).arrayBuffer()).toString()).toBe("kept across!");
  } finally {
    await server.stop();
    cleanup(dataDir);
  }
});

test("parts hold no more than twice the upload's bytes, so a part sent again completes; they count against the project's quota until completed", async () => {
  // A part stored twice (an SDK's retry of a part whose answer was lost) leaves room for the rest.
  const r = await client.uploads.create({ filename: "r.txt", purpose: "assistants", bytes: 10, mime_type: "text/plain" });
  const big = await apiError(client.uploads.parts.create(r.id, { data: await toFile(Buffer.from("0123456789x"), "0") }));
  expect([big.status, big.code, big.param]).toEqual([413, "file_too_large", "data"]);
  await client.uploads.parts.create(r.id, { data: await toFile(Buffer.from("012345"), "1") });
  const again = await client.uploads.parts.create(r.id, { data: await toFile(Buffer.from("012345"), "1") });
  const rest = await client.uploads.parts.create(r.id, { data: await toFile(Buffer.from("6789"), "2") });
  // 16 of twice 10 held: a 5-byte part is past the 4 left, a 4-byte one fills them, then none
  expect((await apiError(client.uploads.parts.create(r.id, { data: await toFile(Buffer.from("abcde"), "3") }))).code).toBe("file_too_large");
  await client.uploads.parts.create(r.id, { data: await toFile(Buffer.from("abcd"), "3") });
  const full = await apiError(client.uploads.parts.create(r.id, { data: await toFile(Buffer.from("x"), "4") }));
  expect([full.status, full.code, full.param]).toEqual([400, "upload_size_mismatch", "data"]);
  const done = await client.uploads.complete(r.id, { part_ids: [again.id, rest.id] });
  expect(Buffer.from(await (await client.files.content(done.file!.id)).arrayBuffer()).toString()).toBe("0123456789");

  const q = await startRagd({ args: ["--project-quota", "100"] });
  try {
    const c = q.client();
    const u = await c.uploads.create({ filename: "q.txt", purpose: "assistants", bytes: 10, mime_type: "text/plain" });
    const p1 = await c.uploads.parts.create(u.id, { data: await toFile(Buffer.from("012345"), "1") });
    const p2 = await c.uploads.parts.create(u.id, { data: await toFile(Buffer.from("6789"), "2") });
    // 10 bytes of parts held: a second upload's 95-byte part would pass the 100-byte quota
    const v = await c.uploads.create({ filename: "v.txt", purpose: "assistants", bytes: 95, mime_type: "text/plain" });
    const quota = await apiError(c.uploads.parts.create(v.id, { data: await toFile(Buffer.alloc(95, 97), "v") }));
    expect([quota.status, quota.code]).toEqual([413, "quota_exceeded"]);
    expect(quota.message).toBe("413 The part would exceed the project's storage quota of 100 bytes (uploads' parts count until completed; 90 bytes left). Delete files, cancel uploads, or raise --project-quota.");
    await c.uploads.complete(u.id, { part_ids: [p1.id, p2.id] });
    await c.uploads.parts.create(v.id, { data: await toFile(Buffer.alloc(90, 97), "v") });
    // the file's 10 bytes and these 90 fill the quota
    expect((await apiError(c.uploads.parts.create(v.id, { data: await toFile(Buffer.alloc(5, 97), "w") }))).code).toBe("quota_exceeded");
    // a plain upload finds the parts held too
    const file = await apiError(c.files.create({ file: await toFile(Buffer.from("x"), "x.txt"), purpose: "assistants" }));
    expect([file.status, file.code, file.param]).toEqual([413, "quota_exceeded", "file"]);
    expect(file.message).toBe("413 File would exceed the project's storage quota of 100 bytes (uploads' parts count until completed; 0 bytes left). Delete files, cancel uploads, or raise --project-quota.");
    // cancelling the upload hands its 90 bytes back
    await c.uploads.cancel(v.id);
    expect((await c.files.create({ file: await toFile(Buffer.from("x"), "x.txt"), purpose: "assistants" })).bytes).toBe(1);
    // 11 bytes stored: an upload of 60 (more than half the 89 left) completes, its parts counted once
    const w = await c.uploads.create({ filename: "w.txt", purpose: "assistants", bytes: 60, mime_type: "text/plain" });
    const wp = await c.uploads.parts.create(w.id, { data: await toFile(Buffer.alloc(60, 98), "w") });
    expect((await c.uploads.complete(w.id, { part_ids: [wp.id] })).file?.bytes).toBe(60);
  } finally {
    await q.stop();
    cleanup(q.dataDir);
  }
});

test("completes and cancels racing for one upload: one file at most, and never a file for a cancelled upload", async () => {
  for (let round = 0; round < 5; round++) {
    const body = Buffer.from(`round ${round}: `.padEnd(4000, "x"));
    const u = await client.uploads.create({ filename: `race-${round}.txt`, purpose: "assistants", bytes: body.length, mime_type: "text/plain" });
    const p = await client.uploads.parts.create(u.id, { data: await toFile(body, "p") });
    const [a, b, c] = await Promise.allSettled([
      client.uploads.complete(u.id, { part_ids: [p.id] }),
      client.uploads.complete(u.id, { part_ids: [p.id] }),
      client.uploads.cancel(u.id),
    ]);
    const files = (await client.files.list()).data.filter((f) => f.filename === `race-${round}.txt`);
    if (c.status === "fulfilled") {
      // the cancel won: both completes were refused, and no file was made
      expect([a.status, b.status]).toEqual(["rejected", "rejected"]);
      expect(files).toEqual([]);
    } else {
      // refused: held by the complete under way (409, which the SDKs retry), or already completed
      expect(["upload_busy", "upload_not_pending"]).toContain(String((c.reason as APIError).code));
      // a complete asked twice gets one file, the same in both answers
      const done = [a, b].filter((x) => x.status === "fulfilled").map((x) => (x as PromiseFulfilledResult<OpenAI.Uploads.Upload>).value.file!.id);
      expect(files.map((f) => f.id)).toEqual([...new Set(done)]);
      expect(Buffer.from(await (await client.files.content(files[0]!.id)).arrayBuffer()).equals(body)).toBe(true);
    }
  }
});

test("bytes gone from the file store (removed outside ragd) are said so, for a part and for a file; the upload can still be cancelled", async () => {
  const { rmSync } = await import("node:fs");
  const { join } = await import("node:path");
  const removeBlob = (key: string) => rmSync(join(ragd.dataDir, blobFiles(ragd.dataDir).find((p) => p.endsWith(key))!));
  const before = blobFiles(ragd.dataDir).sort();
  const u = await client.uploads.create({ filename: "lost.txt", purpose: "assistants", bytes: 10, mime_type: "text/plain" });
  const a = await client.uploads.parts.create(u.id, { data: await toFile(Buffer.from("first"), "a") });
  const b = await client.uploads.parts.create(u.id, { data: await toFile(Buffer.from("other"), "b") });
  removeBlob(b.id);
  const e = await apiError(client.uploads.complete(u.id, { part_ids: [a.id, b.id] }));
  expect([e.status, e.code, e.param]).toEqual([500, "stored_bytes_missing", "part_ids"]);
  expect(e.message).toContain(b.id);
  // the complete let go of it, made no file, and left no blob of its own
  expect((await client.uploads.cancel(u.id)).status).toBe("cancelled");
  expect(blobFiles(ragd.dataDir).sort()).toEqual(before);
  const f = await client.files.create({ file: await toFile(Buffer.from("a file whose bytes go, read again for a store cut its own way"), "gone.txt"), purpose: "assistants" });
  expect((await client.files.waitForProcessing(f.id, { pollInterval: 50 })).status).toBe("processed");
  removeBlob(f.id);
  const c = await apiError(client.files.content(f.id));
  expect([c.status, c.code]).toEqual([500, "stored_bytes_missing"]);
  expect(c.message).toContain(f.id);
  // a store that cuts it another way reads it again: its attempt ends at once, saying why (no retries that cannot succeed)
  const store = await client.vectorStores.create({ name: "another cut" });
  await client.vectorStores.files.create(store.id, { file_id: f.id, chunking_strategy: { type: "static", static: { max_chunk_size_tokens: 120, chunk_overlap_tokens: 20 } } });
  const sf = await client.vectorStores.files.poll(store.id, f.id, { pollIntervalMs: 50 });
  expect([sf.status, sf.last_error?.code]).toEqual(["failed", "server_error"]);
  expect(sf.last_error?.message).toContain("missing from the file store");
  expect(sf.last_error?.message).not.toContain("attempts"); // (its first attempt's own words)
  await client.files.delete(f.id);
});
