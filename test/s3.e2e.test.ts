// File bytes in an S3-compatible bucket (s3rver from npm, a real S3-protocol server over HTTP)
// with metadata in PostgreSQL: several ragd processes, the official SDK. Skips, saying why,
// without PostgreSQL or Node.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixture } from "./helpers/docs";
import { createDatabase, dropAllDatabases, postgresMissing } from "./helpers/postgres";
import { cleanup, createKey, runCli, startRagd, tempDir, uploadLarge, type Ragd } from "./helpers/ragd";
import { s3Missing, startS3, type S3Server } from "./helpers/s3";

const running: Ragd[] = [];
const dirs: string[] = [];
let s3: S3Server | null = null;
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop().catch(() => {});
  for (const d of dirs.splice(0)) cleanup(d);
});
afterAll(async () => {
  await s3?.stop();
  await dropAllDatabases();
});

const skip = postgresMissing ?? s3Missing;

async function start(database: string, prefix: string) {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const r = await startRagd({ dataDir, args: ["--database-url", database, ...s3!.args(prefix)] });
  running.push(r);
  return r;
}

const objects = async (prefix: string) => ((await s3!.client().list({ prefix: `${prefix}/` })).contents ?? []).map((o) => o.key.slice(prefix.length + 1)).filter((k) => !k.startsWith("."));

describe.skipIf(skip !== null)("S3 and PostgreSQL", () => {
  test("three processes, one bucket: upload on one, read ranges and search on others, delete on a third; nothing left behind", async () => {
    s3 ??= await startS3();
    const database = await createDatabase();
    const [a, b, c] = [await start(database, "one"), await start(database, "one"), await start(database, "one")];
    // 20 MB crosses several multipart parts.
    const big = new Uint8Array(20 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const stored = await a!.client().files.create({ file: new File([big], "big.bin"), purpose: "batch" }).catch((e) => e);
    // batch files must be JSONL: the refusal leaves no object behind.
    expect(stored.status).toBe(400);
    const report = await a!.client().files.create({ file: fixture("report.pdf"), purpose: "assistants" });
    const note = await a!.client().files.create({ file: new File(["The penguin enclosure closes at noon."], "note.txt"), purpose: "assistants" });
    for (const f of [report, note]) expect((await b!.client().files.waitForProcessing(f.id, { pollInterval: 50 })).status).toBe("processed");
    expect((await objects("one")).sort()).toEqual([report.id, note.id].sort());

    // Exact bytes back, whole and by range, through another process; the ETag is the SHA-256.
    const pdf = new Uint8Array(await fixture("report.pdf").arrayBuffer());
    const whole = await fetch(`${c!.baseURL}/files/${report.id}/content`, { headers: { authorization: `Bearer ${c!.key}` } });
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(pdf);
    expect(whole.headers.get("etag")).toBe(`"${createHash("sha256").update(pdf).digest("hex")}"`);
    const part = await fetch(`${c!.baseURL}/files/${report.id}/content`, { headers: { authorization: `Bearer ${c!.key}`, range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(pdf.subarray(100, 200));

    const kb = (await c!.client().vectorStores.list()).data.find((s) => s.name === "knowledge base")!.id;
    expect((await c!.client().vectorStores.search(kb, { query: "penguin enclosure", max_num_results: 1 })).data[0]?.file_id).toBe(note.id);

    await c!.client().files.delete(note.id);
    expect(await objects("one")).not.toContain(note.id);
    expect(await a!.client().files.retrieve(note.id).then(() => 200, (e) => e.status)).toBe(404);
    // No spool or parser copy stays on any process once files are stored and read.
    for (const r of [a!, b!, c!]) {
      const spool = join(r.dataDir, "blob-spool");
      const left = [...new Bun.Glob("**/*").scanSync({ cwd: spool, onlyFiles: true })].filter((f) => f !== "database-id");
      expect({ dir: r.dataDir, left }).toEqual({ dir: r.dataDir, left: [] });
    }
  });

  test("an upload's parts sent to two processes are completed on a third into one file in the bucket; the parts' objects go", async () => {
    s3 ??= await startS3();
    const database = await createDatabase();
    const [a, b, c] = [await start(database, "parts"), await start(database, "parts"), await start(database, "parts")];
    const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
    const u = await a!.client().uploads.create({ filename: "parts.bin", purpose: "vision", bytes: bytes.length, mime_type: "image/png" });
    const p1 = await a!.client().uploads.parts.create(u.id, { data: new File([bytes.subarray(0, 2 * 1024 * 1024)], "1") });
    const p2 = await b!.client().uploads.parts.create(u.id, { data: new File([bytes.subarray(2 * 1024 * 1024)], "2") });
    expect((await objects("parts")).sort()).toEqual([p1.id, p2.id].sort());
    // (vision wants an image: refused, and the upload stays open with its parts)
    expect((await c!.client().uploads.complete(u.id, { part_ids: [p1.id, p2.id] }).catch((e) => e)).status).toBe(400);
    const v = await a!.client().uploads.create({ filename: "parts.jsonl", purpose: "batch", bytes: 30, mime_type: "application/jsonl" });
    const q1 = await a!.client().uploads.parts.create(v.id, { data: new File(['{"a":1}\n{"b":'], "1") });
    const q2 = await b!.client().uploads.parts.create(v.id, { data: new File(['2}\n{"c":3,"d":4}\n'], "2") });
    // completed on two processes at once: one claims it and makes the file; the other is told to ask again (409), or answers the same file
    const md5 = createHash("md5").update('{"a":1}\n{"b":2}\n{"c":3,"d":4}\n').digest("hex");
    const both = await Promise.allSettled([c!.client().uploads.complete(v.id, { part_ids: [q1.id, q2.id], md5 }), b!.client().uploads.complete(v.id, { part_ids: [q1.id, q2.id], md5 })]);
    const won = both.filter((x) => x.status === "fulfilled").map((x) => (x as PromiseFulfilledResult<{ file: { id: string } | null }>).value);
    expect(won.length).toBeGreaterThan(0);
    for (const x of both) if (x.status === "rejected") expect((x.reason as { code?: string }).code).toBe("upload_busy");
    const done = won[0]!;
    for (const w of won) expect(w.file!.id).toBe(done.file!.id);
    expect(await (await a!.client().files.content(done.file!.id)).text()).toBe('{"a":1}\n{"b":2}\n{"c":3,"d":4}\n');
    expect((await objects("parts")).sort()).toEqual([p1.id, p2.id, done.file!.id].sort());
    await b!.client().uploads.cancel(u.id);
    expect(await objects("parts")).toEqual([done.file!.id]);
  });

  test("a large upload streams to the bucket in parts, byte for byte; a client that leaves mid-upload leaves no object", async () => {
    s3 ??= await startS3();
    const database = await createDatabase();
    const r = await start(database, "two");
    const bytes = new Uint8Array(48 * 1024 * 1024).map((_, i) => (i * 40503) >>> 8);
    const blob = new File([bytes], "raw.bin");
    const ok = await r.client().files.create({ file: blob, purpose: "vision" }).catch((e) => e);
    expect(ok.status).toBe(400); // not an image: refused after streaming, object removed
    const png = new Uint8Array(bytes);
    png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 0);
    const image = await r.client().files.create({ file: new File([png], "big.png"), purpose: "vision" });
    const stat = await s3!.client().file(`two/${image.id}`).stat();
    expect(stat.size).toBe(png.length);
    const back = new Uint8Array(await (await r.client().files.content(image.id)).arrayBuffer());
    expect(back.length).toBe(png.length);
    expect(Buffer.compare(back, png)).toBe(0);

    // A client that stops sending half-way: the upload is aborted, on S3 too.
    const boundary = "----ragd-test";
    const head = new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nvision\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.png"\r\nContent-Type: image/png\r\n\r\n`);
    const controller = new AbortController();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (sent === 0) ctrl.enqueue(head);
        if (sent >= 24 * 1024 * 1024) {
          controller.abort();
          return;
        }
        ctrl.enqueue(png.subarray(sent, sent + 1024 * 1024));
        sent += 1024 * 1024;
        await Bun.sleep(5);
      },
    });
    await fetch(`${r.baseURL}/files`, { method: "POST", body, signal: controller.signal, headers: { authorization: `Bearer ${r.key}`, "content-type": `multipart/form-data; boundary=${boundary}` } }).catch(() => null);
    for (const until = Date.now() + 10_000; Date.now() < until; await Bun.sleep(100)) if ((await objects("two")).length === 1) break;
    await Bun.sleep(500);
    expect(await objects("two")).toEqual([image.id]);
    expect(readdirSync(join(r.dataDir, "blob-spool", "tmp"))).toEqual([]);
  });

  test("`ragd migrate --from-data-dir`: a single-node data directory moves to PostgreSQL and S3, checked file by file, and serves as before", async () => {
    s3 ??= await startS3();
    const oldDir = tempDir();
    dirs.push(oldDir);
    const acme = await createKey(oldDir, "acme");
    let embedded = await startRagd({ dataDir: oldDir });
    const client = embedded.client(acme);
    const report = await client.files.create({ file: fixture("report.pdf"), purpose: "assistants" });
    const note = await client.files.create({ file: new File(["The penguin enclosure closes at noon."], "note.txt"), purpose: "assistants" });
    for (const f of [report, note]) await client.files.waitForProcessing(f.id, { pollInterval: 50 });
    const store = await client.vectorStores.create({ name: "zoo" });
    await client.vectorStores.files.createAndPoll(store.id, { file_id: note.id, attributes: { site: "north" } });
    await embedded.stop();

    const database = await createDatabase({ empty: true });
    const imported = runCli(["migrate", "--database-url", database, ...s3!.args("moved"), "--from-data-dir", oldDir]);
    expect(imported.stderr).not.toContain("ragd:");
    expect(imported).toMatchObject({ code: 0 });
    expect(imported.stdout).toContain("2 files");
    expect(runCli(["migrate", "--database-url", database, ...s3!.args("moved"), "--from-data-dir", oldDir]).stderr).toContain("already holds projects or files");

    const moved = await start(database, "moved");
    const after = moved.client(acme);
    expect((await after.files.list()).data.map((f) => f.id).sort()).toEqual([report.id, note.id].sort());
    expect(new Uint8Array(await (await after.files.content(report.id)).arrayBuffer())).toEqual(new Uint8Array(await fixture("report.pdf").arrayBuffer()));
    const hits = await after.vectorStores.search(store.id, { query: "penguin", filters: { type: "eq", key: "site", value: "north" } });
    expect(hits.data[0]?.file_id).toBe(note.id);
    const kb = (await after.vectorStores.list()).data.find((s) => s.name === "knowledge base")!.id;
    expect((await after.vectorStores.search(kb, { query: "revenue growth in Europe", max_num_results: 1 })).data[0]?.file_id).toBe(report.id);
    // New rows continue after the imported ones.
    const fresh = await after.files.create({ file: new File(["A new note after the move."], "new.txt"), purpose: "assistants" });
    expect((await after.files.list({ limit: 1 })).data[0]?.id).toBe(fresh.id);
  });

  test("a 512 MB upload streams to the bucket under the same memory ceiling as to disk; refused by its first bytes, it is never copied back", async () => {
    s3 ??= await startS3();
    const r = await start(await createDatabase(), "large");
    const pid = r.proc.pid;
    const rss = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    const before = rss("VmRSS");
    const total = 512 * 1024 * 1024;
    const { status: code, body: f } = await uploadLarge(r, total);
    expect(code).toBe(200);
    expect((await s3!.client().file(`large/${f.id}`).stat()).size).toBe(total);
    const done = await r.client().files.waitForProcessing(f.id, { pollInterval: 50, maxWait: 60_000 });
    expect(done.status).toBe("error");
    expect(done.status_details).toContain("unsupported format");
    expect(rss("VmHWM") - before).toBeLessThan(256 * 1024 * 1024);
    // Neither the upload's spool nor a copy for a parser is left on local disk.
    expect([...new Bun.Glob("**/*").scanSync({ cwd: join(r.dataDir, "blob-spool"), onlyFiles: true })].filter((x) => x !== "database-id")).toEqual([]);
  }, 180_000);

  test("a bucket out of reach is a 503 the client can retry, for uploads and downloads; nothing half-stored stays", async () => {
    s3 ??= await startS3();
    const r = await start(await createDatabase(), "outage");
    const client = r.client();
    const kept = await client.files.create({ file: new File(["kept before the outage"], "kept.txt"), purpose: "assistants" });
    await s3.pause();
    try {
      for (const attempt of [
        () => client.files.create({ file: new File(["during the outage"], "lost.txt"), purpose: "assistants" }),
        () => client.files.create({ file: new File([new Uint8Array(12 * 1024 * 1024)], "big.bin"), purpose: "user_data" }),
        () => client.files.content(kept.id),
      ]) {
        const e = await attempt().then((ok) => ({ ok }), (x) => x);
        expect({ status: e?.status, code: e?.error?.code, e: e?.status ? null : JSON.stringify(e?.ok ?? e).slice(0, 300) }).toEqual({ status: 503, code: "file_store_unavailable", e: null });
        expect(e.headers.get("retry-after")).toBe("2");
      }
    } finally {
      await s3.resume();
    }
    // Only the file stored before the outage is listed, and it reads back whole.
    expect((await client.files.list()).data.map((f) => f.id)).toEqual([kept.id]);
    expect(await (await client.files.content(kept.id)).text()).toBe("kept before the outage");
    expect(readdirSync(join(r.dataDir, "blob-spool", "tmp"))).toEqual([]);
    const after = await client.files.create({ file: new File(["after the outage"], "after.txt"), purpose: "assistants" });
    expect(await (await client.files.content(after.id)).text()).toBe("after the outage");
  });
});
