import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import OpenAI, { APIError } from "openai";
import { cleanup, runCli, startRagd, tempDir } from "./helpers/ragd";

const dir = tempDir();
afterAll(() => cleanup(dir));

test("keys create prints the key once and stores only a hash", async () => {
  const r = runCli(["keys", "create", "--project", "acme", "--data-dir", dir]);
  expect(r.code).toBe(0);
  const key = r.stdout.trim();
  expect(key).toMatch(/^sk-ragd-[0-9A-Za-z]{40}$/);
  const db = new Database(join(dir, "ragd.db"), { readonly: true });
  const dump = JSON.stringify(db.query("SELECT * FROM api_keys").all());
  db.close();
  expect(dump).not.toContain(key);
  expect(dump).toContain(new Bun.CryptoHasher("sha256").update(key).digest("hex"));

  const list = runCli(["keys", "list", "--data-dir", dir]);
  expect(list.stdout).toContain("acme");
  expect(list.stdout).toContain(key.slice(0, 12));
  expect(list.stdout).not.toContain(key);
});

test("a revoked key is refused with 401", async () => {
  const key = runCli(["keys", "create", "--project", "acme", "--data-dir", dir]).stdout.trim();
  const ragd = await startRagd({ dataDir: dir });
  try {
    const c = ragd.client(key);
    expect((await c.files.list()).data).toEqual([]);
    const id = /(key_\w+)\s+acme\s+sk-ragd-\w{4}\.\.\.\s.*active/.exec(
      runCli(["keys", "list", "--data-dir", dir]).stdout.split("\n").find((l) => l.includes(key.slice(0, 12)))!,
    )![1]!;
    expect(runCli(["keys", "revoke", id, "--data-dir", dir]).code).toBe(0);
    const e = await c.files.list().then(() => null, (e) => e as APIError);
    expect(e?.status).toBe(401);
    expect(runCli(["keys", "revoke", id, "--data-dir", dir]).code).toBe(1);
  } finally {
    await ragd.stop();
  }
});

test("bad project names and bad settings are refused with a clear message", () => {
  const r = runCli(["keys", "create", "--project", "../etc", "--data-dir", dir]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("invalid project name");
  const s = runCli(["serve", "--port", "nope", "--data-dir", dir]);
  expect(s.code).toBe(2);
  expect(s.stderr).toContain("--port: expected a whole number");
  expect(runCli(["frobnicate"]).code).toBe(2);
  const help = runCli(["--help"]);
  for (const flag of ["--port", "--data-dir", "--api-key", "--max-file-size", "--project-quota", "--rate-limit-uploads", "RAGD_PORT"]) expect(help.stdout).toContain(flag);
});

test("a fresh install with no keys makes one for project default and shows it once", async () => {
  const fresh = tempDir();
  const proc = Bun.spawn(["bun", join(import.meta.dir, "../src/main.ts"), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", fresh], {
    env: { ...process.env, RAGD_API_KEY: "" },
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    let err = "";
    let out = "";
    const dec = new TextDecoder();
    const errReader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
    const outReader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    while (!/sk-ragd-\w{40}/.test(err)) err += dec.decode((await errReader.read()).value);
    while (!/listening on (\S+)/.test(out)) out += dec.decode((await outReader.read()).value);
    const key = /sk-ragd-\w{40}/.exec(err)![0];
    const url = /listening on (\S+)/.exec(out)![1]!;
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
    expect((await c.files.list()).data).toEqual([]);
  } finally {
    proc.kill();
    await proc.exited;
    cleanup(fresh);
  }
});
