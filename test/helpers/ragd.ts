import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI, { APIError } from "openai";

export const ROOT = resolve(import.meta.dir, "../..");
const MAIN = join(ROOT, "src/main.ts");

export const tempDir = (prefix = "ragd-test-") => mkdtempSync(join(tmpdir(), prefix));

export interface Ragd {
  url: string;
  baseURL: string;
  dataDir: string;
  key: string;
  proc: ReturnType<typeof Bun.spawn>;
  client(key?: string, opts?: Partial<ConstructorParameters<typeof OpenAI>[0]>): OpenAI;
  stop(): Promise<void>;
  kill9(): Promise<void>;
  stderr(): string;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: Record<string, string>;
  key?: string;
}

/** Runs the real server as a child process on a free port, as a user would. */
export async function startRagd(o: StartOptions = {}): Promise<Ragd> {
  const dataDir = o.dataDir ?? tempDir();
  const key = o.key ?? "sk-test-default-project-key";
  const proc = Bun.spawn(["bun", MAIN, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...(o.args ?? [])], {
    env: { ...process.env, RAGD_API_KEY: key, RAGD_LOG_LEVEL: "warn", ...o.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let errText = "";
  void (async () => {
    for await (const c of proc.stderr as ReadableStream<Uint8Array>) errText += new TextDecoder().decode(c);
  })();
  const url = await listeningUrl(proc, () => errText);
  return {
    url,
    baseURL: `${url}/v1`,
    dataDir,
    key,
    proc,
    stderr: () => errText,
    client: (k = key, opts = {}) => new OpenAI({ baseURL: `${url}/v1`, apiKey: k, maxRetries: 0, ...opts }),
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/**
 * Reads a starting ragd's stdout until it prints "listening on URL" and returns the URL;
 * `stderr` explains a failed start. Shared by the tests and bench/.
 */
export async function listeningUrl(proc: ReturnType<typeof Bun.spawn>, stderr: () => string | Promise<string>): Promise<string> {
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let out = "";
  const deadline = Date.now() + 15000;
  while (!/listening on (\S+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`ragd did not start: ${out}\n${await stderr()}`);
    const { done, value } = await reader.read();
    if (done) throw new Error(`ragd exited before listening (code ${await proc.exited}): ${await stderr()}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return /listening on (\S+)/.exec(out)![1]!;
}

/** `ragd keys create` through the real CLI; returns the printed key. */
export async function createKey(dataDir: string, project: string): Promise<string> {
  const p = Bun.spawnSync(["bun", MAIN, "keys", "create", "--project", project, "--data-dir", dataDir], { env: { ...process.env, RAGD_API_KEY: "" } });
  if (p.exitCode !== 0) throw new Error(`keys create failed: ${p.stderr.toString()}`);
  return p.stdout.toString().trim();
}

/** `timeoutMs`: a command that should exit but serves instead is killed, not waited on forever. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) {
  const p = Bun.spawnSync(["bun", MAIN, ...args], { env: { ...process.env, RAGD_API_KEY: "", ...env }, timeout: timeoutMs });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

export const cleanup = (dir: string) => rmSync(dir, { recursive: true, force: true });

/** Every blob the server holds, committed or half-written (not the store's database-id mark). */
export function blobFiles(dataDir: string): string[] {
  const glob = new Bun.Glob("blobs/{objects,tmp}/**/*");
  return [...glob.scanSync({ cwd: dataDir, onlyFiles: true })];
}

/**
 * Uploads `total` bytes of random-looking data (purpose user_data, filename big.bin) as a
 * streamed multipart body, generated as it is sent: the test itself holds 1 MiB at a time.
 */
export async function uploadLarge(r: Pick<Ragd, "baseURL" | "key">, total: number): Promise<{ status: number; body: { id: string; bytes: number } }> {
  const block = crypto.getRandomValues(new Uint8Array(1 << 16));
  const boundary = "bigboundary";
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (sent === 0) ctrl.enqueue(new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n`));
      if (sent >= total) {
        ctrl.enqueue(new TextEncoder().encode(`\r\n--${boundary}--\r\n`));
        return ctrl.close();
      }
      const n = Math.min(1 << 20, total - sent);
      const c = new Uint8Array(n);
      for (let i = 0; i < n; i += block.length) c.set(block.subarray(0, Math.min(block.length, n - i)), i);
      sent += n;
      ctrl.enqueue(c);
    },
  });
  const res = await fetch(`${r.baseURL}/files`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${r.key}`, "content-type": `multipart/form-data; boundary=${boundary}` },
    duplex: "half",
  } as RequestInit);
  return { status: res.status, body: (await res.json()) as { id: string; bytes: number } };
}

/** The API error a call failed with (an error of another kind is thrown on). */
export async function apiError(p: Promise<unknown>): Promise<APIError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof APIError) return e;
    throw e;
  }
  throw new Error("expected the call to fail");
}
