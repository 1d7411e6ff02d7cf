import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { FIXTURES, fixture } from "./helpers/docs";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI, { toFile } from "openai";
import { ROOT, cleanup, listeningUrl, tempDir } from "./helpers/ragd";

// `make build`'s executable, copied alone into an empty directory and run with a bare
// environment: no Bun, no node_modules, no source tree next to it.
const buildDir = tempDir("ragd-build-");
const runDir = tempDir("ragd-bin-");
const bin = join(runDir, "ragd");

beforeAll(() => {
  // The very build users run, so a missing entry point (the parse worker) fails here.
  const b = Bun.spawnSync(["make", "-s", "build", `DIST=${buildDir}`], { cwd: ROOT });
  if (b.exitCode !== 0) throw new Error(`build failed: ${b.stderr}`);
  copyFileSync(join(buildDir, "ragd"), bin);
  cleanup(buildDir);
}, 120_000);
afterAll(() => cleanup(runDir));

async function start() {
  const proc = Bun.spawn([bin, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", join(runDir, "data")], {
    cwd: runDir,
    env: { PATH: "/usr/bin:/bin", RAGD_API_KEY: "sk-binary-smoke-key" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const url = await listeningUrl(proc, () => new Response(proc.stderr as ReadableStream).text());
  return { proc, url, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-binary-smoke-key", maxRetries: 0 }) };
}

test("the single executable serves the API and the offline docs, and keeps state across restarts", async () => {
  expect(Bun.spawnSync([bin, "--version"], { env: { PATH: "/usr/bin:/bin" } }).stdout.toString()).toMatch(/^ragd \d+\.\d+\.\d+/);
  let s = await start();
  const bytes = new Uint8Array(200_000).map((_, i) => (i * 31) & 0xff);
  const f = await s.client.files.create({ file: await toFile(bytes, "b.bin"), purpose: "user_data" });
  expect((await fetch(`${s.url}/docs/assets/swagger-ui-bundle.js`)).status).toBe(200);
  s.proc.kill();
  await s.proc.exited;

  s = await start();
  try {
    expect((await s.client.files.list()).data.map((x) => x.id)).toEqual([f.id]);
    expect(new Uint8Array(await (await s.client.files.content(f.id)).arrayBuffer())).toEqual(bytes);
    expect((await s.client.files.delete(f.id)).deleted).toBe(true);
  } finally {
    s.proc.kill();
    await s.proc.exited;
  }
}, 60_000);

test("the single executable parses every format in its bundled workers (pdf.js, SheetJS, mammoth)", async () => {
  const s = await start();
  try {
    const names = readdirSync(FIXTURES);
    const files = await Promise.all(names.map((n) => s.client.files.create({ file: fixture(n), purpose: "assistants" })));
    for (const f of files) {
      const done = await s.client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 30_000 });
      expect(`${done.filename}: ${done.status} ${done.status_details}`).toBe(`${done.filename}: processed null`);
    }
  } finally {
    s.proc.kill();
    await s.proc.exited;
  }
}, 60_000);
