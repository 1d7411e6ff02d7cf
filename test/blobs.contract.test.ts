// The blob store contract (src/storage/blobs.ts), run against each implementation: the data
// directory's disk store, a disk store shared by processes, and an S3 bucket (s3rver from npm,
// skipped without Node). Only the interface is used, so the rules are stated once.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobMissing, DiskBlobStore, type BlobStore } from "../src/storage/blobs";
import { S3BlobStore } from "../src/storage/s3-blobs";
import { s3Missing, startS3, type S3Server } from "./helpers/s3";

const dirs: string[] = [];
let s3: S3Server | null = null;
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await s3?.stop();
});
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), "ragd-blobs-"));
  dirs.push(d);
  return d;
};

interface Implementation {
  name: string;
  open(): Promise<BlobStore>;
  /** Whether fresh blobs are listed by keys() (a shared store spares an hour of others' work). */
  listsFresh: boolean;
  /** Whether a parser's copy goes when released. */
  copies: boolean;
}

const IMPLEMENTATIONS: Implementation[] = [
  { name: "disk", open: async () => new DiskBlobStore(dir()), listsFresh: true, copies: false },
  { name: "disk, shared", open: async () => new DiskBlobStore(dir(), { shared: true }), listsFresh: false, copies: false },
  ...(s3Missing
    ? []
    : [
        {
          name: "s3",
          open: async () => {
            s3 ??= await startS3();
            const prefix = `c${Math.random().toString(36).slice(2, 8)}`;
            return new S3BlobStore(
              { bucket: s3.bucket, prefix: `${prefix}/`, endpoint: s3.endpoint, region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
              new DiskBlobStore(dir()),
            );
          },
          listsFresh: false,
          copies: true,
        },
      ]),
];

const bytes = (n: number, seed = 1) => new Uint8Array(n).map((_, i) => ((i + seed) * 2654435761) >>> 24);
const body = async (b: Blob | ReadableStream<Uint8Array>) => new Uint8Array(await new Response(b).arrayBuffer());
/** "missing" only when the store says so by its BlobMissing, before any byte (an answer's status is chosen then). */
const gone = (s: BlobStore, key: string, range?: { start: number; end: number }) =>
  s.read(key, range).then(
    () => "read",
    (e) => (e instanceof BlobMissing && e.key === key ? "missing" : `failed: ${e}`),
  );
const keys = async (s: BlobStore) => {
  const out: string[] = [];
  for await (const k of s.keys()) out.push(k);
  return out.sort();
};

describe.each(IMPLEMENTATIONS)("$name", (impl) => {
  test("a blob written in pieces commits whole: its SHA-256, its bytes, any range", async () => {
    const s = await impl.open();
    const data = bytes(9 * 1024 * 1024 + 17);
    const w = await s.create("file-a");
    for (let at = 0; at < data.length; at += 300_000) await w.write(data.subarray(at, at + 300_000));
    expect(w.bytes).toBe(data.length);
    // What was written can be read back before commit (upload checks).
    expect((await body(w.stream())).length).toBe(data.length);
    const { sha256 } = await w.commit();
    expect(sha256).toBe(createHash("sha256").update(data).digest("hex"));
    expect(Buffer.compare(await body(await s.read("file-a")), data)).toBe(0);
    expect(Buffer.compare(await body(await s.read("file-a", { start: 5_000_000, end: 5_000_099 })), data.subarray(5_000_000, 5_000_100))).toBe(0);
    expect(await keys(s)).toEqual(impl.listsFresh ? ["file-a"] : []);
    // Aborting after the commit keeps it: the row naming it may have committed.
    await w.abort();
    expect((await body(await s.read("file-a"))).length).toBe(data.length);
    await s.delete("file-a");
    expect(await gone(s, "file-a")).toBe("missing");
    expect(await gone(s, "file-a", { start: 0, end: 9 })).toBe("missing");
    await s.delete("file-a"); // twice is fine
  });

  test("an aborted write leaves nothing, and the store cleans what a crash left", async () => {
    const s = await impl.open();
    const w = await s.create("file-b");
    await w.write(bytes(6 * 1024 * 1024));
    await w.abort();
    expect(await gone(s, "file-b")).toBe("missing");
    expect(await keys(s)).toEqual([]);
    const cut = await s.create("file-c");
    await cut.write(bytes(1000));
    // A crash here leaves the write incomplete; the next start removes it (a shared store
    // spares what is less than an hour old, which may be another process's upload).
    expect(await s.removeIncomplete()).toBe(impl.listsFresh || impl.copies ? 1 : 0);
    await cut.abort();
  });

  test("a parser's local copy holds the bytes while in use", async () => {
    const s = await impl.open();
    const data = bytes(200_000, 7);
    const w = await s.create("file-d");
    await w.write(data);
    await w.commit();
    const [p1, p2] = await Promise.all([s.localPath("file-d"), s.localPath("file-d")]);
    expect(p1).toBe(p2);
    expect(Buffer.compare(readFileSync(p1), data)).toBe(0);
    await s.release("file-d");
    expect(existsSync(p1)).toBe(true); // the other user still has it
    await s.release("file-d");
    expect(existsSync(p1)).toBe(!impl.copies);
    expect(Buffer.compare(readFileSync(await s.localPath("file-d")), data)).toBe(0);
    await s.release("file-d");
  });

  test("a local copy of a blob that is gone is BlobMissing", async () => {
    const s = await impl.open();
    const w = await s.create("file-g");
    await w.write(bytes(1000));
    await w.commit();
    await s.delete("file-g");
    const outcome = await s.localPath("file-g").then(
      (p) => `a path: ${p}`,
      (e) => (e instanceof BlobMissing && e.key === "file-g" ? "missing" : `failed: ${e}`),
    );
    expect(outcome).toBe("missing");
  });

  test("the store is marked with its database and says whether it holds files", async () => {
    const s = await impl.open();
    expect(await s.owner()).toBeNull();
    expect(await s.isEmpty()).toBe(true);
    await s.setOwner("db-1");
    expect(await s.owner()).toBe("db-1");
    const w = await s.create("file-e");
    await w.write(bytes(10));
    await w.commit();
    expect(await s.isEmpty()).toBe(false);
  });
});

test.skipIf(s3Missing !== null)("s3: a bucket that is gone fails a read as the store's fault, not as missing bytes", async () => {
  s3 ??= await startS3();
  const store = new S3BlobStore(
    { bucket: "no-such-bucket-here", prefix: "p/", endpoint: s3.endpoint, region: "us-east-1", accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    new DiskBlobStore(dir()),
  );
  const outcome = await store.read("file-a").then(
    () => "read",
    (e) => (e instanceof BlobMissing ? "missing" : "failed"),
  );
  expect(outcome).toBe("failed");
});
