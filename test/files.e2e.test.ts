import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI, { APIError, toFile } from "openai";
import { apiError, blobFiles, cleanup, createKey, ROOT, startRagd, type Ragd } from "./helpers/ragd";

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

const text = (s: string, name = "note.txt") => toFile(Buffer.from(s), name);
const jsonl = (...rows: object[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
const PNG_1PX = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" + "1f15c4890000000d49444154789c6300010000050001" + "0d0a2db40000000049454e44ae426082",
  "hex",
);

describe("create", () => {
  test("embeddable purposes are accepted and wait for processing", async () => {
    for (const purpose of ["assistants", "user_data"] as const) {
      const f = await client.files.create({ file: await text(`hello ${purpose}`), purpose });
      expect(f).toMatchObject({ object: "file", purpose, status: "uploaded", status_details: null, expires_at: null, filename: "note.txt", bytes: 6 + purpose.length });
      expect(f.id).toMatch(/^file-[0-9A-Za-z]{24}$/);
      expect(Math.abs(f.created_at - Date.now() / 1000)).toBeLessThan(5);
    }
  });

  test("purpose defaults to knowledge_base (curl without purpose)", async () => {
    const form = new FormData();
    form.append("file", new Blob(["default purpose"]), "d.txt");
    const r = await fetch(`${ragd.baseURL}/files`, { method: "POST", body: form, headers: { authorization: `Bearer ${ragd.key}` } });
    expect(r.status).toBe(200);
    expect((await r.json()).purpose).toBe("knowledge_base");
  });

  test("batch, fine-tune and evals take JSONL of objects and are processed at once", async () => {
    for (const purpose of ["batch", "fine-tune", "evals"] as const) {
      const f = await client.files.create({ file: await text(jsonl({ a: 1 }, { b: 2 }), "data.jsonl"), purpose });
      expect(f.status).toBe("processed");
      expect(f.purpose as string).toBe(purpose);
      if (purpose === "batch") expect(f.expires_at).toBe(f.created_at + 30 * 86400);
      else expect(f.expires_at).toBeNull();
    }
  });

  test("JSONL purposes reject other files with the line that is wrong", async () => {
    let e = await apiError(client.files.create({ file: await text(jsonl({ a: 1 }), "data.txt"), purpose: "batch" }));
    expect(e.status).toBe(400);
    expect(e.param).toBe("file");
    expect(e.message).toContain(".jsonl");
    e = await apiError(client.files.create({ file: await text('{"a":1}\n{"b":\n', "data.jsonl"), purpose: "fine-tune" }));
    expect(e.status).toBe(400);
    expect(e.message).toContain("Line 2");
    e = await apiError(client.files.create({ file: await text('{"a":1}\n[1,2]\n', "data.jsonl"), purpose: "evals" }));
    expect(e.message).toContain("Line 2 of the JSONL file is not a JSON object");
    // lines of megabytes, across the pieces the upload arrives in, are counted as lines
    const long = JSON.stringify({ text: "y".repeat(3_000_000) });
    const ok = await client.files.create({ file: await text(`{"a":1}\n${long}\n${long}\n{"b":2}`, "long.jsonl"), purpose: "batch" });
    expect(ok.status).toBe("processed");
    e = await apiError(client.files.create({ file: await text(`{"a":1}\n${long}\n${long}x\n{"b":2}\n`, "long.jsonl"), purpose: "batch" }));
    expect(e.message).toContain("Line 3 of the JSONL file is not valid JSON");
    e = await apiError(client.files.create({ file: await text(`${long}\n\n${long}\n[0]`, "long.jsonl"), purpose: "batch" }));
    expect(e.message).toContain("Line 4 of the JSONL file is not a JSON object");
  });

  test("vision takes images only", async () => {
    const ok = await client.files.create({ file: await toFile(PNG_1PX, "dot.png"), purpose: "vision" });
    expect(ok.status).toBe("processed");
    const e = await apiError(client.files.create({ file: await text("not an image", "dot.png"), purpose: "vision" }));
    expect(e.status).toBe(400);
    expect(e.param).toBe("file");
  });

  test("an unknown purpose is a 400 naming the valid ones", async () => {
    const e = await apiError(client.files.create({ file: await text("x"), purpose: "bogus" as "assistants" }));
    expect(e.status).toBe(400);
    expect(e.param).toBe("purpose");
    expect(e.message).toContain("knowledge_base");
  });

  test("expires_after sets expires_at; out-of-range values are 400", async () => {
    const f = await client.files.create({ file: await text("temp"), purpose: "assistants", expires_after: { anchor: "created_at", seconds: 3600 } });
    expect(f.expires_at).toBe(f.created_at + 3600);
    const e = await apiError(client.files.create({ file: await text("temp"), purpose: "assistants", expires_after: { anchor: "created_at", seconds: 60 } }));
    expect(e.status).toBe(400);
    expect(e.param).toBe("expires_after.seconds");
  });

  test("expires_after as a JSON string field", async () => {
    const form = new FormData();
    form.append("file", new Blob(["json expiry"]), "j.txt");
    form.append("purpose", "user_data");
    form.append("expires_after", JSON.stringify({ anchor: "created_at", seconds: 7200 }));
    const r = await fetch(`${ragd.baseURL}/files`, { method: "POST", body: form, headers: { authorization: `Bearer ${ragd.key}` } });
    const f = await r.json();
    expect(f.expires_at).toBe(f.created_at + 7200);
  });

  test("a path in the filename never reaches the disk", async () => {
    const f = await client.files.create({ file: await text("sneaky", "../../etc/passwd"), purpose: "assistants" });
    expect(f.filename).toBe("passwd");
    for (const p of blobFiles(ragd.dataDir)) expect(p).not.toContain("passwd");
    expect(await (await client.files.content(f.id)).text()).toBe("sneaky");
  });
});

describe("list", () => {
  let ids: string[];
  let c: OpenAI;
  beforeAll(async () => {
    // A project of its own, so the other tests' files do not interfere.
    c = ragd.client(await createKey(ragd.dataDir, "paging"));
    ids = [];
    for (let i = 0; i < 25; i++) ids.push((await c.files.create({ file: await text(`file ${i}`, `f${i}.txt`), purpose: i % 2 ? "assistants" : "user_data" })).id);
  });

  test("auto-pagination terminates and sees each file once, both orders", async () => {
    const desc: string[] = [];
    for await (const f of c.files.list({ limit: 7 })) desc.push(f.id);
    expect(desc).toEqual([...ids].reverse());
    const asc: string[] = [];
    for await (const f of c.files.list({ limit: 4, order: "asc" })) asc.push(f.id);
    expect(asc).toEqual(ids);
  });

  test("a page carries first_id, last_id and an honest has_more", async () => {
    const page = await c.files.list({ limit: 25 });
    expect(page.data.length).toBe(25);
    expect(page.has_more).toBe(false);
    const raw = await (await fetch(`${ragd.baseURL}/files?limit=10&order=asc`, { headers: { authorization: `Bearer ${c.apiKey}` } })).json();
    expect(raw).toMatchObject({ object: "list", first_id: ids[0], last_id: ids[9], has_more: true });
  });

  test("purpose filter, offset, and a cursor on a deleted file", async () => {
    const assistants: string[] = [];
    for await (const f of c.files.list({ purpose: "assistants", limit: 5 })) assistants.push(f.id);
    expect(assistants).toEqual(ids.filter((_, i) => i % 2).reverse());
    const off = await (await fetch(`${ragd.baseURL}/files?order=asc&offset=20`, { headers: { authorization: `Bearer ${c.apiKey}` } })).json();
    expect(off.data.map((f: { id: string }) => f.id)).toEqual(ids.slice(20));
    // Offset listing says how many files match, so a UI can number its pages.
    expect(off.total).toBe(25);
    const offAssistants = await (await fetch(`${ragd.baseURL}/files?purpose=assistants&offset=10&limit=1`, { headers: { authorization: `Bearer ${c.apiKey}` } })).json();
    expect(offAssistants.total).toBe(12);
    expect(offAssistants.data).toHaveLength(1);
    // Purposes OpenAI's own services write are listable (ragd holds none); others are refused.
    for (const purpose of ["batch_output", "assistants_output", "fine-tune-results"]) {
      const page = await c.files.list({ purpose });
      expect(page.data).toEqual([]);
      expect(page.has_more).toBe(false);
    }
    const odd = await fetch(`${ragd.baseURL}/files?purpose=nonsense`, { headers: { authorization: `Bearer ${c.apiKey}` } });
    expect(odd.status).toBe(400);
    expect((await odd.json()).error).toMatchObject({ type: "invalid_request_error", param: "purpose" });
    // An SDK iterating while files are deleted keeps going from where it was.
    const victim = ids[10]!;
    await c.files.delete(victim);
    const after = await c.files.list({ after: victim, order: "asc", limit: 100 });
    expect(after.data.map((f) => f.id)).toEqual(ids.slice(11));
    ids.splice(10, 1);
  });
});

describe("retrieve, content, delete", () => {
  test("binary content round-trips byte for byte; its ETag is the SHA-256 of those bytes", async () => {
    // Past 1 MiB, so the body arrives in many network chunks and reaches the disk in several writes.
    const bytes = new Uint8Array(3_000_000).map((_, i) => (i * 7919 + (i >> 8)) & 0xff);
    const f = await client.files.create({ file: await toFile(bytes, "blob.bin"), purpose: "user_data" });
    expect(f.bytes).toBe(bytes.length);
    expect(await client.files.retrieve(f.id)).toMatchObject({ id: f.id, bytes: bytes.length, filename: "blob.bin" });
    const res = await client.files.content(f.id);
    expect(res.headers.get("content-length")).toBe(String(bytes.length));
    expect(res.headers.get("content-disposition")).toContain('filename="blob.bin"');
    expect(res.headers.get("etag")).toBe(`"${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}"`);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  test("range requests return the exact slice", async () => {
    const f = await client.files.create({ file: await text("0123456789", "digits.txt"), purpose: "user_data" });
    const get = (range: string) => fetch(`${ragd.baseURL}/files/${f.id}/content`, { headers: { authorization: `Bearer ${ragd.key}`, range } });
    let r = await get("bytes=2-5");
    expect(r.status).toBe(206);
    expect(r.headers.get("content-range")).toBe("bytes 2-5/10");
    expect(await r.text()).toBe("2345");
    r = await get("bytes=-3");
    expect(await r.text()).toBe("789");
    r = await get("bytes=7-");
    expect(await r.text()).toBe("789");
    r = await get("bytes=50-60");
    expect(r.status).toBe(416);
    expect((await r.json()).error.type).toBe("invalid_request_error");
  });

  test("unicode filenames survive and download with a safe Content-Disposition", async () => {
    const name = 'Müller "Bericht" 報告.txt';
    const f = await client.files.create({ file: await text("unicode", name), purpose: "assistants" });
    expect(f.filename).toBe(name);
    const res = await client.files.content(f.id);
    const cd = res.headers.get("content-disposition")!;
    expect(cd).toContain(`filename*=UTF-8''${encodeURIComponent(name)}`);
    expect(cd).not.toContain('"Bericht"');
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
  });

  test("a download names what its bytes are: UTF-16 by its mark, else a declared charset; a vision file by its bytes", async () => {
    const upload = async (parts: [string, Blob | string, string?][]) => {
      const form = new FormData();
      for (const [name, value, filename] of parts) typeof value === "string" ? form.append(name, value) : form.append(name, value, filename);
      const r = await fetch(`${ragd.baseURL}/files`, { method: "POST", body: form, headers: { authorization: `Bearer ${ragd.key}` } });
      return { status: r.status, body: (await r.json()) as any };
    };
    const typeOf = async (id: string) => (await client.files.content(id)).headers.get("content-type");
    const utf16 = await client.files.create({ file: await toFile(readFileSync(join(ROOT, "test/fixtures/docs/greeting-utf16.txt")), "greeting-utf16.txt"), purpose: "assistants" });
    expect(await typeOf(utf16.id)).toBe("text/plain; charset=utf-16");
    const latin1 = await upload([["purpose", "assistants"], ["file", new Blob([Buffer.from("name,city\nJos\xe9,M\xe1laga\n", "latin1")], { type: "text/csv; charset=ISO-8859-1" }), "people.csv"]]);
    expect(await typeOf(latin1.body.id)).toBe("text/csv; charset=iso-8859-1");
    const png = await upload([["purpose", "vision"], ["file", new Blob([PNG_1PX], { type: "image/png" }), "photo.txt"]]);
    expect(await typeOf(png.body.id)).toBe("image/png");
    expect(await typeOf((await client.files.create({ file: await text("plain"), purpose: "assistants" })).id)).toBe("text/plain; charset=utf-8");
    // a text file that opens like an image is text (only a vision file is taken for its bytes)
    expect(await typeOf((await client.files.create({ file: await text("GIF89a is the 1989 revision of the format"), purpose: "assistants" })).id)).toBe("text/plain; charset=utf-8");
    // the byte order mark outweighs a declared charset
    const marked = await upload([["purpose", "assistants"], ["file", new Blob([readFileSync(join(ROOT, "test/fixtures/docs/greeting-utf16.txt"))], { type: "text/plain; charset=utf-8" }), "marked.txt"]]);
    expect(await typeOf(marked.body.id)).toBe("text/plain; charset=utf-16");
  });

  test("filenames: filename* decoded once, kept in NFC and well-formed, checked as kept; form fields sent once", async () => {
    const raw = async (disposition: string, fields = "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n") => {
      const body = `${fields}--b\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n`;
      const r = await fetch(`${ragd.baseURL}/files`, { method: "POST", body, headers: { authorization: `Bearer ${ragd.key}`, "content-type": "multipart/form-data; boundary=b" } });
      return { status: r.status, body: (await r.json()) as any };
    };
    // RFC 8187: %25 is a percent sign, not the start of a second escape
    expect((await raw(`filename="x.txt"; filename*=UTF-8''report%250A2024.txt`)).body.filename).toBe("report%0A2024.txt");
    expect((await raw(`filename*=UTF-8''50%2522off.txt`)).body.filename).toBe("50%22off.txt");
    // a plain filename carries the WHATWG escapes browsers send
    expect((await raw(`filename="say %22hi%22.txt"`)).body.filename).toBe('say "hi".txt');
    // NFD as macOS sends it is kept as NFC; the length limit holds for the name as kept
    expect((await client.files.create({ file: await text("x", "re\u0301sume\u0301.txt"), purpose: "assistants" })).filename).toBe("r\u00e9sum\u00e9.txt");
    const e = await raw(`filename*=UTF-8''${encodeURIComponent("\u0958".repeat(83) + ".txt")}`);
    expect([e.status, e.body.error.code]).toEqual([400, "invalid_filename"]);
    // an upload's filename with a lone surrogate: answered as the file will have it
    const up = await client.uploads.create({ filename: "a\ud800b.txt", purpose: "assistants", bytes: 5, mime_type: "text/plain" });
    expect(up.filename).toBe("a\ufffdb.txt");
    // a field sent twice, or an empty purpose, is refused, not guessed
    const twice = await raw(`filename="t.txt"`, "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n");
    expect([twice.status, twice.body.error.param]).toEqual([400, "purpose"]);
    const empty = await raw(`filename="t.txt"`, "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n\r\n");
    expect([empty.status, empty.body.error.code]).toEqual([400, "invalid_purpose"]);
  });

  test("an expired file not swept yet is a 404 to delete too, and is gone after", async () => {
    const f = await client.files.create({ file: await text("short-lived"), purpose: "assistants", expires_after: { anchor: "created_at", seconds: 3600 } });
    const db = new Database(join(ragd.dataDir, "ragd.db"));
    db.exec("PRAGMA busy_timeout = 5000");
    db.query("UPDATE files SET expires_at = unixepoch() - 1 WHERE id = ?").run(f.id);
    const e = await apiError(client.files.delete(f.id));
    expect(e.status).toBe(404);
    expect(db.query("SELECT COUNT(*) AS n FROM files WHERE id = ?").get(f.id)).toEqual({ n: 0 });
    db.close();
  });

  test("delete removes row and bytes; a second delete is 404", async () => {
    const f = await client.files.create({ file: await text("bye"), purpose: "assistants" });
    const before = blobFiles(ragd.dataDir).length;
    expect(await client.files.delete(f.id)).toEqual({ id: f.id, object: "file", deleted: true });
    expect(blobFiles(ragd.dataDir).length).toBe(before - 1);
    // Handlers are attached at once: the three answer in any order.
    for (const e of await Promise.all([client.files.delete(f.id), client.files.retrieve(f.id), client.files.content(f.id)].map(apiError))) {
      expect(e.status).toBe(404);
      expect((e.error as { type: string }).type).toBe("invalid_request_error");
    }
  });
});

describe("isolation and auth", () => {
  test("another project's file is a 404, exactly like a missing one", async () => {
    const mine = await client.files.create({ file: await text("secret"), purpose: "assistants" });
    const other = ragd.client(await createKey(ragd.dataDir, "other-team"));
    const missing = "file-000000000000000000000000";
    for (const [a, b] of [
      [other.files.retrieve(mine.id), other.files.retrieve(missing)],
      [other.files.content(mine.id), other.files.content(missing)],
      [other.files.delete(mine.id), other.files.delete(missing)],
    ] as const) {
      const [ea, eb] = [await apiError(a), await apiError(b)];
      expect(ea.status).toBe(404);
      expect(eb.status).toBe(404);
      expect(ea.message.replace(mine.id, "X")).toBe(eb.message.replace(missing, "X"));
    }
    const ids = (await other.files.list()).data.map((f) => f.id);
    expect(ids).not.toContain(mine.id);
    expect((await client.files.retrieve(mine.id)).id).toBe(mine.id);
  });

  test("missing or wrong key is 401", async () => {
    const e = await apiError(ragd.client("sk-wrong-key-123456").files.list());
    expect(e.status).toBe(401);
    expect((e.error as { type: string }).type).toBe("authentication_error");
    const r = await fetch(`${ragd.baseURL}/files`);
    expect(r.status).toBe(401);
    expect((await r.json()).error).toEqual(expect.objectContaining({ type: "authentication_error", param: null }));
  });
});

describe("limits", () => {
  test("an upload over the file size limit is 413 and leaves nothing", async () => {
    const small = await startRagd({ args: ["--max-file-size", "100KB"] });
    try {
      const c = small.client();
      const e = await apiError(c.files.create({ file: await toFile(new Uint8Array(300_000), "big.bin"), purpose: "assistants" }));
      expect(e.status).toBe(413);
      expect((e.error as { type: string }).type).toBe("invalid_request_error");
      expect(e.message).toContain("100 KB");
      // Exactly at the limit is fine.
      const ok = await c.files.create({ file: await toFile(new Uint8Array(100_000), "edge.bin"), purpose: "assistants" });
      expect(ok.bytes).toBe(100_000);
      expect((await c.files.list()).data.map((f) => f.id)).toEqual([ok.id]);
      expect(blobFiles(small.dataDir).length).toBe(1);
    } finally {
      await small.stop();
      cleanup(small.dataDir);
    }
  });

  test("an endless upload without Content-Length gets its 413, and the server stops reading it", async () => {
    const small = await startRagd({ args: ["--max-file-size", "100KB"] });
    try {
      const boundary = "endless";
      const chunk = new Uint8Array(1 << 20).fill(0x61);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (sent === 0) ctrl.enqueue(new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n`));
          // 1 GB would take long to drain: a server still reading gets that far.
          if (sent >= 1024) return ctrl.close();
          sent++;
          ctrl.enqueue(chunk);
        },
      });
      const r = await fetch(`${small.baseURL}/files`, {
        method: "POST",
        body,
        duplex: "half",
        headers: { authorization: `Bearer ${small.key}`, "content-type": `multipart/form-data; boundary=${boundary}` },
      } as RequestInit).catch((e: Error) => e);
      // The answer arrives, unless the connection closed under a client still writing.
      if (!(r instanceof Error)) {
        expect(r.status).toBe(413);
        expect((await r.json()).error).toMatchObject({ type: "invalid_request_error", code: "file_too_large", param: "file" });
      }
      expect(sent).toBeLessThan(256);
      expect(blobFiles(small.dataDir)).toEqual([]);
      expect((await small.client().files.list()).data).toEqual([]);
    } finally {
      await small.stop();
      cleanup(small.dataDir);
    }
  });

  test("the project quota answers 413 once full", async () => {
    const q = await startRagd({ args: ["--project-quota", "1000"] });
    try {
      const c = q.client();
      await c.files.create({ file: await toFile(new Uint8Array(600), "a.bin"), purpose: "assistants" });
      const e = await apiError(c.files.create({ file: await toFile(new Uint8Array(600), "b.bin"), purpose: "assistants" }));
      expect(e.status).toBe(413);
      expect(e.message).toContain("quota");
      expect((await c.files.list()).data.length).toBe(1);
    } finally {
      await q.stop();
      cleanup(q.dataDir);
    }
  });

  test("rate limits answer 429 with retry-after, per key and per tier", async () => {
    const rl = await startRagd({ args: ["--rate-limit-requests", "3", "--rate-limit-uploads", "2"] });
    try {
      const c = rl.client();
      for (let i = 0; i < 3; i++) await c.files.list();
      const e = await apiError(c.files.list());
      expect(e.status).toBe(429);
      expect((e.error as { type: string }).type).toBe("rate_limit_error");
      expect(Number(e.headers?.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // Uploads have their own budget.
      await c.files.create({ file: await text("u1"), purpose: "assistants" });
      await c.files.create({ file: await text("u2"), purpose: "assistants" });
      expect((await apiError(c.files.create({ file: await text("u3"), purpose: "assistants" }))).status).toBe(429);
      // Another key is not affected.
      const other = rl.client(await createKey(rl.dataDir, "rl-other"));
      expect((await other.files.list()).data).toEqual([]);
    } finally {
      await rl.stop();
      cleanup(rl.dataDir);
    }
  });
});
