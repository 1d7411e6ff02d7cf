// `make build`'s executable, copied alone into an empty directory and run under `env -i` with
// only PATH and a data directory: no Bun, no node_modules, no source tree, no HOME, no key
// in the environment. It must carry its models and native libraries (onnxruntime, sharp and
// libvips) and write them out only under the data directory.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, realpathSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import OpenAI, { toFile } from "openai";
import { FIXTURES, fixture } from "./helpers/docs";
import { ROOT, cleanup, listeningUrl, tempDir } from "./helpers/ragd";
import { sourceKernelsPath } from "../src/native/assets";

const buildDir = tempDir("ragd-build-");
const runDir = tempDir("ragd-bin-");
const bin = join(runDir, "ragd");
const IMAGES = join(import.meta.dir, "fixtures/images");

beforeAll(() => {
  // The very build users run, so a missing entry point or asset fails here.
  const b = Bun.spawnSync(["make", "-s", "build", `DIST=${buildDir}`], { cwd: ROOT });
  if (b.exitCode !== 0) throw new Error(`build failed: ${b.stderr}`);
  copyFileSync(join(buildDir, "ragd"), bin);
  cleanup(buildDir);
  // A process forked elsewhere in the test run while the copy was open for writing holds it
  // until that process execs: running the file meanwhile fails with "Text file busy".
  for (const deadline = Date.now() + 10_000; ; ) {
    const r = Bun.spawnSync(["env", "-i", "PATH=/usr/bin:/bin", bin, "--version"]);
    if (r.exitCode === 0 || !r.stderr.toString().includes("Text file busy") || Date.now() > deadline) break;
    Bun.sleepSync(50);
  }
}, 180_000);
afterAll(() => cleanup(runDir));

let key = "";

async function start(dataDir = join(runDir, "data"), extraEnv: string[] = []) {
  const proc = Bun.spawn(["env", "-i", "PATH=/usr/bin:/bin", ...extraEnv, bin, "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir], {
    cwd: runDir,
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  void (async () => {
    for await (const c of proc.stderr as ReadableStream<Uint8Array>) err += new TextDecoder().decode(c);
  })();
  const url = await listeningUrl(proc, () => err);
  // A fresh data directory has no keys: the server makes one and shows it once.
  await Bun.sleep(50);
  const shown = /\n\s+(sk-[A-Za-z0-9_-]{20,})\s*\n/.exec(err)?.[1];
  if (shown) key = shown;
  const stop = async () => {
    proc.kill();
    await proc.exited;
  };
  return { proc, url, stop, stderr: () => err, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: shown ?? key, maxRetries: 0 }) };
}

const cacheFiles = (dataDir: string) =>
  readdirSync(join(dataDir, "cache"), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));

test("--version names the version, the models and the commit", () => {
  const out = Bun.spawnSync(["env", "-i", "PATH=/usr/bin:/bin", bin, "--version"]).stdout.toString();
  expect(out).toMatch(/^ragd \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}\)\n/);
  expect(out).toContain("embedding model: use-lite-int8");
  expect(out).toContain("OCR model: PP-OCRv4");
});

test("smoke: a PDF and an image are processed and found, a delete sticks, state survives a restart", async () => {
  const dataDir = join(runDir, "data");
  let s = await start(dataDir);
  let pdfId: string;
  let imageId: string;
  let blobId: string;
  let scanId: string;
  const top = async (client: OpenAI, query: string) => {
    const kb = (await client.vectorStores.list()).data.find((v) => v.name === "knowledge base")!.id;
    return (await client.vectorStores.search(kb, { query, max_num_results: 3 })).data[0]?.file_id;
  };
  try {
    expect(key).toStartWith("sk-");
    const pdf = await s.client.files.create({ file: fixture("report.pdf"), purpose: "assistants" });
    const image = await s.client.files.create({ file: new File([readFileSync(join(IMAGES, "receipt.jpg"))], "receipt.jpg"), purpose: "assistants" });
    const scan = await s.client.files.create({ file: new File([readFileSync(join(IMAGES, "scanned.pdf"))], "scanned.pdf"), purpose: "assistants" });
    const bytes = new Uint8Array(200_000).map((_, i) => (i * 31) & 0xff);
    const blob = await s.client.files.create({ file: await toFile(bytes, "b.bin"), purpose: "user_data" });
    [pdfId, imageId, blobId, scanId] = [pdf.id, image.id, blob.id, scan.id];
    for (const f of [pdf, image, scan]) {
      const done = await s.client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
      expect(`${done.filename}: ${done.status} ${done.status_details}`).toBe(`${done.filename}: processed null`);
    }
    expect(await top(s.client, "widgets in three regions")).toBe(pdf.id);
    expect(await top(s.client, "cinnamon pretzels")).toBe(image.id);
    expect(await top(s.client, "blue heron project")).toBe(scan.id);
    expect((await s.client.files.delete(scan.id)).deleted).toBe(true);
    expect((await fetch(`${s.url}/docs/assets/swagger-ui-bundle.js`)).status).toBe(200);
    // the console and the metrics come with the binary too
    expect(await (await fetch(`${s.url}/`)).text()).toContain("<title>ragd console</title>");
    expect(await (await fetch(`${s.url}/console/console.js`)).text()).toContain("sessionStorage");
    const scraped = await (await fetch(`${s.url}/metrics`)).text();
    expect(scraped).toMatch(/ragd_ingest_documents_total\{outcome="processed"\} 3/);
    expect(scraped).toContain("process_resident_memory_bytes");
    expect((await fetch(`${s.url}/ready`)).status).toBe(200);
    // token ids are read through a table the binary carries ("Hello world" in cl100k_base)
    const [ids, text] = await Promise.all([[9906, 1917], "Hello world"].map((input) => s.client.embeddings.create({ model: "default", input, encoding_format: "float" })));
    expect(ids!.data[0]!.embedding).toEqual(text!.data[0]!.embedding);
  } finally {
    await s.stop();
  }
  // Native libraries went under the data directory only, and are reused as they are.
  const before = new Map(cacheFiles(dataDir).map((p) => [p, statSync(p).mtimeMs]));
  expect([...before.keys()].some((p) => p.endsWith("libonnxruntime.so.1"))).toBe(true);
  expect([...before.keys()].some((p) => /libvips-cpp\.so/.test(p))).toBe(true);

  s = await start(dataDir);
  try {
    expect(new Set((await s.client.files.list()).data.map((x) => x.id))).toEqual(new Set([pdfId!, imageId!, blobId!]));
    expect(await top(s.client, "cinnamon pretzels")).toBe(imageId!);
    // The deleted scan stays gone from search.
    const kb = (await s.client.vectorStores.list()).data.find((v) => v.name === "knowledge base")!.id;
    expect((await s.client.vectorStores.search(kb, { query: "blue heron project" })).data.map((h) => h.file_id)).not.toContain(scanId!);
    const content = new Uint8Array(await (await s.client.files.content(blobId!)).arrayBuffer());
    expect(content.length).toBe(200_000);
    expect(s.stderr()).not.toContain("building the vector index");
  } finally {
    await s.stop();
  }
  for (const [p, mtime] of before) expect(statSync(p).mtimeMs).toBe(mtime);
}, 180_000);

test("a damaged extracted library is replaced; two servers starting at once share one cache", async () => {
  const cache = tempDir("ragd-cache-");
  const env = [`XDG_CACHE_HOME=${cache}`];
  const [a, b] = await Promise.all([start(tempDir("ragd-a-"), env), start(tempDir("ragd-b-"), env)]);
  await Promise.all([a.stop(), b.stop()]);
  const lib = readdirSync(cache, { recursive: true }).map(String).find((p) => p.endsWith("libonnxruntime.so.1"))!;
  expect(lib).toBeDefined();
  const full = join(cache, lib);
  const size = statSync(full).size;
  writeFileSync(full, "damaged");
  const c = await start(tempDir("ragd-c-"), env);
  try {
    const f = await c.client.files.create({ file: fixture("notes.txt"), purpose: "assistants" });
    expect((await c.client.files.waitForProcessing(f.id, { pollInterval: 100 })).status).toBe("processed");
  } finally {
    await c.stop();
  }
  expect(statSync(full).size).toBe(size);
  cleanup(cache);
}, 120_000);

// The layout of a minimal container (distroless/cc): the executable, glibc, libstdc++ and
// libgcc_s, /proc and /dev/null, nothing else: no /tmp, no /etc, no shell. Podman cannot run containers in
// this sandbox (crun is refused cgroups), so the Dockerfile's layout is run with chroot.
const canChroot = process.getuid?.() === 0 && Bun.which("unshare") !== null && Bun.which("chroot") !== null;
test.skipIf(!canChroot)("in an empty root-like directory holding only the C and C++ runtimes", async () => {
  const root = tempDir("ragd-root-");
  try {
    const libs = new Set<string>();
    for (const l of Bun.spawnSync(["ldd", bin]).stdout.toString().matchAll(/(\/\S+\.so[.\d]*)/g)) libs.add(l[1]!);
    // What the embedded libraries need beyond the executable: onnxruntime, libvips, skia.
    for (const name of ["libstdc++.so.6", "libgcc_s.so.1", "libm.so.6", "libc.so.6", "librt.so.1", "libdl.so.2", "libpthread.so.0", "libresolv.so.2"]) {
      const found = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"].map((d) => join(d, name)).find((p) => existsSync(p));
      if (!found) throw new Error(`${name} is not on this machine`);
      libs.add(realpathSync(found));
      libs.add(found);
    }
    for (const lib of libs) {
      mkdirSync(join(root, dirname(lib)), { recursive: true });
      copyFileSync(lib, join(root, lib));
    }
    for (const d of ["proc", "data", "dev"]) mkdirSync(join(root, d));
    // Every container runtime provides /dev/null; Bun needs it to start a parse process.
    Bun.spawnSync(["mknod", "-m", "666", join(root, "dev/null"), "c", "1", "3"]);
    copyFileSync(bin, join(root, "ragd"));
    chmodSync(join(root, "ragd"), 0o755);
    const proc = Bun.spawn(
      ["env", "-i", "PATH=/usr/bin:/bin", Bun.which("unshare")!, "--mount", "--pid", "--fork", "--kill-child", "sh", "-c", `${Bun.which("mount")} -t proc proc ${root}/proc && exec ${Bun.which("chroot")} ${root} /ragd serve --host 127.0.0.1 --port 0 --data-dir /data`],
      { stdout: "pipe", stderr: "pipe" },
    );
    let err = "";
    void (async () => {
      for await (const c of proc.stderr as ReadableStream<Uint8Array>) err += new TextDecoder().decode(c);
    })();
    try {
      const url = await listeningUrl(proc, () => err);
      await Bun.sleep(50);
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: /\n\s+(sk-[A-Za-z0-9_-]{20,})\s*\n/.exec(err)![1]!, maxRetries: 0 });
      const files = await Promise.all(
        [fixture("report.pdf"), fixture("sales.xlsx"), new File([readFileSync(join(IMAGES, "receipt.jpg"))], "receipt.jpg"), new File([readFileSync(join(IMAGES, "scanned.pdf"))], "scanned.pdf")].map((file) =>
          client.files.create({ file, purpose: "assistants" }),
        ),
      );
      for (const f of files) {
        const done = await client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 }).catch((e) => {
          throw new Error(`${String(e)}\n${err}`);
        });
        expect(`${done.filename}: ${done.status} ${done.status_details}`).toBe(`${done.filename}: processed null`);
      }
      expect(readdirSync(join(root, "data/cache")).sort().map((d) => d.replace(/-[0-9a-f]{16}$/, ""))).toEqual([...(sourceKernelsPath() ? ["kernels"] : []), "onnxruntime", "sharp", "usearch"]);
      // ragd's own BM25 kernel loads there too (a failure would leave keyword search on its JavaScript loop).
      expect(err).not.toContain("BM25 kernel did not load");
    } finally {
      // unshare ignores SIGTERM while it waits; --kill-child takes the server down with it.
      proc.kill("SIGKILL");
      await proc.exited;
    }
  } finally {
    Bun.spawnSync(["umount", join(root, "proc")]);
    cleanup(root);
  }
}, 120_000);

test("the single executable parses every format in its parse processes (PDFium, SheetJS, mammoth), without library warnings", async () => {
  // At debug level the parse processes' own output is logged too.
  const s = await start(tempDir("ragd-formats-"), ["RAGD_LOG_LEVEL=debug"]);
  try {
    const names = readdirSync(FIXTURES);
    const files = await Promise.all(names.map((n) => s.client.files.create({ file: fixture(n), purpose: "assistants" })));
    for (const f of files) {
      const done = await s.client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 30_000 });
      expect(`${done.filename}: ${done.status} ${done.status_details}`).toBe(`${done.filename}: processed null`);
    }
    expect(s.stderr()).toContain("ingested");
    expect(s.stderr()).not.toContain("Cannot load");
  } finally {
    await s.stop();
  }
}, 60_000);

test("the single executable lives through files deleted while their parse process starts", async () => {
  // Terminating a Worker inside a native addon aborted the binary; parse processes are killed instead.
  const s = await start(tempDir("ragd-cycles-"));
  try {
    const pdf = readFileSync(join(FIXTURES, "report.pdf"));
    const blob = crypto.getRandomValues(new Uint8Array(256 * 1024));
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: key, maxRetries: 3 });
    for (let i = 0; i < 150; i++) {
      const f = await client.files.create({ file: new File([i % 2 ? pdf : blob], i % 2 ? "c.pdf" : "c.bin"), purpose: "user_data" });
      await Bun.sleep(Math.floor(Math.random() * 90));
      await client.files.delete(f.id).catch(() => {});
    }
    expect(s.proc.exitCode).toBeNull();
    const ok = await client.files.create({ file: fixture("report.pdf"), purpose: "assistants" });
    expect((await client.files.waitForProcessing(ok.id, { pollInterval: 100 })).status).toBe("processed");
  } finally {
    await s.stop();
  }
}, 120_000);
