// What an upload costs the server and what its 200 promises.
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { toFile } from "openai";
import { cleanup, startRagd, tempDir, uploadLarge } from "./helpers/ragd";

const dirs: string[] = [];
afterAll(() => dirs.forEach(cleanup));

const status = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;
/** The server's child processes: parse processes are its only ones. */
const children = (pid: number) =>
  Bun.spawnSync(["ps", "-o", "pid=", "--ppid", String(pid)])
    .stdout.toString()
    .split("\n")
    .filter((l) => l.trim() !== "").length;

test("a 512 MB upload and its ingestion stay under a memory ceiling; a file refused by its first bytes, or plain text small enough to read at once, starts no parse process", async () => {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const ragd = await startRagd({ dataDir });
  try {
    const pid = ragd.proc.pid;
    expect(children(pid)).toBe(0);
    // Reset the kernel's peak mark: VmHWM then covers the upload and the ingestion that follows.
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    const before = status(pid, "VmRSS");
    const total = 512 * 1024 * 1024;
    const { status: code, body: f } = await uploadLarge(ragd, total);
    expect(code).toBe(200);
    expect(f.bytes).toBe(total);
    const done = await ragd.client().files.waitForProcessing(f.id, { pollInterval: 50, maxWait: 60_000 });
    expect(done.status).toBe("error");
    expect(done.status_details).toContain("unsupported format");
    // Generous, so it cannot flake; the whole file in memory would be twice this.
    expect(status(pid, "VmHWM") - before).toBeLessThan(256 * 1024 * 1024);
    expect(children(pid)).toBe(0);

    // A small plain-text file, whole in the first bytes read, is read by the server itself.
    const small = await ragd.client().files.create({ file: await toFile(Buffer.from("a text that is read by the server"), "t.txt"), purpose: "user_data" });
    expect((await ragd.client().files.waitForProcessing(small.id, { pollInterval: 50 })).status).toBe("processed");
    expect(children(pid)).toBe(0);
    // The check can fail: a file that is parsed does start one (and one stays warm).
    const big = await ragd.client().files.create({ file: await toFile(Buffer.from("a longer text that is parsed. ".repeat(1000)), "big.txt"), purpose: "user_data" });
    expect((await ragd.client().files.waitForProcessing(big.id, { pollInterval: 50 })).status).toBe("processed");
    expect(children(pid)).toBeGreaterThan(0);
  } finally {
    await ragd.stop();
  }
}, 120_000);

test("kill -9 right after the 200s: every acknowledged upload is there after restart, byte for byte", async () => {
  const dataDir = tempDir();
  dirs.push(dataDir);
  let ragd = await startRagd({ dataDir });
  const sent = new Map<string, string>();
  try {
    const c = ragd.client(undefined, { maxRetries: 0 });
    const acks = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const bytes = crypto.getRandomValues(new Uint8Array(100_000 + i * 1000));
        // A PNG signature: vision takes it as an image, the knowledge base refuses it when ingesting.
        bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
        const f = await c.files.create({ file: await toFile(bytes, `f${i}.png`), purpose: i % 2 ? "assistants" : "vision" });
        if (f) sent.set(f.id, new Bun.CryptoHasher("sha256").update(bytes).digest("hex"));
        return f;
      }),
    );
    expect(acks.every(Boolean)).toBe(true);
  } finally {
    await ragd.kill9();
  }
  ragd = await startRagd({ dataDir });
  try {
    const c = ragd.client();
    const listed = new Set((await c.files.list({ limit: 100 })).data.map((f) => f.id));
    for (const [id, sha] of sent) {
      expect(listed.has(id)).toBe(true);
      const res = await c.files.content(id);
      expect(new Bun.CryptoHasher("sha256").update(new Uint8Array(await res.arrayBuffer())).digest("hex")).toBe(sha);
      expect(res.headers.get("etag")).toBe(`"${sha}"`);
    }
  } finally {
    await ragd.stop();
  }
});
