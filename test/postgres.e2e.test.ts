// ragd on PostgreSQL, end to end: the real server processes, the official SDK, a real
// database per test (skipped, saying why, when no PostgreSQL answers; .ci/run makes sure one does).
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { bigPdf, fixture } from "./helpers/docs";
import { createDatabase, dropAllDatabases, postgresMissing } from "./helpers/postgres";
import { cleanup, runCli, startRagd, tempDir, type Ragd } from "./helpers/ragd";
import { startUpstream } from "./helpers/upstream";

const running: Ragd[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop().catch(() => {});
  for (const d of dirs.splice(0)) cleanup(d);
});
afterAll(() => dropAllDatabases());

const text = (name: string, body: string) => new File([body], name, { type: "text/plain" });

async function start(database: string, o: { blobDir?: string; dataDir?: string; args?: string[] } = {}) {
  const dataDir = o.dataDir ?? tempDir();
  if (!o.dataDir) dirs.push(dataDir);
  const r = await startRagd({ dataDir, args: ["--database-url", database, ...(o.blobDir ? ["--blob-url", `file://${o.blobDir}`] : []), ...(o.args ?? [])] });
  running.push(r);
  return r;
}

async function knowledgeBase(r: Ragd) {
  return (await r.client().vectorStores.list()).data.find((s) => s.name === "knowledge base")!.id;
}

describe.skipIf(postgresMissing !== null)("PostgreSQL", () => {
  test("`ragd migrate` creates and then keeps the schema; a server refuses a database without it", async () => {
    const database = await createDatabase({ empty: true });
    const dataDir = tempDir();
    dirs.push(dataDir);
    const refused = Bun.spawnSync(["bun", "src/main.ts", "serve", "--port", "0", "--data-dir", dataDir, "--database-url", database], { env: { ...process.env, RAGD_API_KEY: "sk-test-default-project-key" } });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr.toString()).toContain("has no ragd schema; run `ragd migrate");
    const first = runCli(["migrate", "--database-url", database]);
    expect(first).toMatchObject({ code: 0 });
    expect(first.stdout).toMatch(/schema migrated from version 0 to \d+/);
    const again = runCli(["migrate", "--database-url", database]);
    expect(again.stdout).toMatch(/schema already at version \d+/);
    expect(runCli(["migrate", "--data-dir", dataDir]).stderr).toContain("migrate needs --database-url");
    expect(runCli(["serve", "--blob-url", "http://bucket/x"]).stderr).toContain("must be s3://bucket/prefix or file:///absolute/path");
    expect(runCli(["serve", "--blob-url", `file://${dataDir}/shared`]).stderr).toContain("needs --database-url");
  });

  test("a file directory is never swept against another database: a data directory switched to PostgreSQL, or one --blob-url for two databases, is refused", async () => {
    const serveOn = (dataDir: string, args: string[]) =>
      Bun.spawnSync(["bun", "src/main.ts", "serve", "--port", "0", "--data-dir", dataDir, ...args], { env: { ...process.env, RAGD_API_KEY: "sk-test-default-project-key" }, timeout: 30_000 });
    const dataDir = tempDir();
    dirs.push(dataDir);
    let embedded = await startRagd({ dataDir });
    const kept = await embedded.client().files.create({ file: text("keep.txt", "keep me"), purpose: "assistants" });
    await embedded.stop();
    const database = await createDatabase();
    const switched = serveOn(dataDir, ["--database-url", database]);
    expect(switched.exitCode).toBe(1);
    expect(switched.stderr.toString()).toContain("belongs to another database");
    embedded = await startRagd({ dataDir });
    running.push(embedded);
    expect(await (await embedded.client().files.content(kept.id)).text()).toBe("keep me");

    const blobDir = tempDir();
    dirs.push(blobDir);
    await start(database, { blobDir });
    const otherDir = tempDir();
    dirs.push(otherDir);
    // Another database, given its own id by `ragd migrate` (the test template's copies share one).
    const other = await createDatabase({ empty: true });
    expect(runCli(["migrate", "--database-url", other]).code).toBe(0);
    const shared = serveOn(otherDir, ["--database-url", other, "--blob-url", `file://${blobDir}`]);
    expect(shared.exitCode).toBe(1);
    expect(shared.stderr.toString()).toContain("belongs to another database");
  });

  test("one server: upload, ingest, search with filters, page, delete; a restart after kill -9 keeps everything", async () => {
    const database = await createDatabase();
    let r = await start(database);
    const client = r.client();
    const files = {
      leave: await client.files.create({ file: text("leave.txt", "Parental leave lasts sixteen weeks at full pay for every employee."), purpose: "assistants" }),
      berlin: await client.files.create({ file: text("berlin.txt", "The Berlin office opens in March with forty engineers."), purpose: "assistants" }),
      report: await client.files.create({ file: fixture("report.pdf"), purpose: "assistants" }),
    };
    for (const f of Object.values(files)) expect((await client.files.waitForProcessing(f.id, { pollInterval: 50 })).status).toBe("processed");
    const kb = await knowledgeBase(r);
    expect((await client.vectorStores.search(kb, { query: "how long is parental leave" })).data[0]?.file_id).toBe(files.leave.id);
    expect((await client.vectorStores.search(kb, { query: "revenue growth in Europe" })).data[0]?.file_id).toBe(files.report.id);

    const store = await client.vectorStores.create({ name: "hr" });
    await client.vectorStores.files.createAndPoll(store.id, { file_id: files.leave.id, attributes: { team: "hr", year: 2026 } });
    await client.vectorStores.files.createAndPoll(store.id, { file_id: files.berlin.id, attributes: { team: "it", year: 2025 } });
    const found = async (filters: unknown) =>
      (await client.vectorStores.search(store.id, { query: "office leave", filters: filters as never })).data.map((h) => h.filename).sort();
    expect(await found({ type: "eq", key: "team", value: "hr" })).toEqual(["leave.txt"]);
    expect(await found({ type: "gte", key: "year", value: 2025 })).toEqual(["berlin.txt", "leave.txt"]);
    expect(await found({ type: "eq", key: "year", value: "2026" })).toEqual([]);

    const first = await client.files.list({ limit: 2 });
    expect(first.data.map((f) => f.id)).toEqual([files.report.id, files.berlin.id]);
    expect(first.has_more).toBe(true);

    await client.files.delete(files.berlin.id);
    expect(await client.files.retrieve(files.berlin.id).then(() => 200, (e) => e.status)).toBe(404);
    expect((await client.vectorStores.search(kb, { query: "Berlin office engineers" })).data.map((h) => h.file_id)).not.toContain(files.berlin.id);

    await r.kill9();
    r = await start(database, { dataDir: r.dataDir });
    const after = r.client();
    expect((await after.files.list()).data.map((f) => f.id).sort()).toEqual([files.leave.id, files.report.id].sort());
    expect((await after.vectorStores.search(kb, { query: "how long is parental leave" })).data[0]?.file_id).toBe(files.leave.id);
    expect(await (await after.files.content(files.leave.id)).text()).toBe("Parental leave lasts sixteen weeks at full pay for every employee.");

    // The change log is gapless and every chunk of a live file is in it once.
    const sql = new SQL({ url: database, max: 1 });
    try {
      const [log] = await sql.unsafe(`SELECT COUNT(*)::int AS n, MIN(seq)::int AS lo, MAX(seq)::int AS hi FROM chunk_changes`);
      if (log.n > 0) expect(log.hi - log.lo + 1).toBe(log.n);
      const [dup] = await sql.unsafe(`SELECT COUNT(*)::int AS n FROM (SELECT file_id, cut, idx FROM chunks GROUP BY 1, 2, 3 HAVING COUNT(*) > 1) d`);
      expect(dup.n).toBe(0);
    } finally {
      await sql.close();
    }
  });

  test("three processes on one database and one shared blob directory: upload on one, search on another, delete on a third", async () => {
    const database = await createDatabase();
    const blobDir = tempDir();
    dirs.push(blobDir);
    const [a, b, c] = [await start(database, { blobDir }), await start(database, { blobDir }), await start(database, { blobDir })];
    // Uploads go to one process; any of the three may ingest them.
    const uploads = [];
    for (let i = 0; i < 6; i++)
      uploads.push(await a!.client().files.create({ file: text(`note-${i}.txt`, `Note ${i}: the quarterly ${["budget", "roadmap", "hiring", "security", "travel", "pricing"][i]} review is on Friday.`), purpose: "assistants" }));
    for (const f of uploads) expect((await b!.client().files.waitForProcessing(f.id, { pollInterval: 50 })).status).toBe("processed");
    const kb = await knowledgeBase(b!);
    const top = async (r: Ragd, query: string) => (await r.client().vectorStores.search(kb, { query, max_num_results: 1 })).data[0]?.file_id;
    expect(await top(b!, "security review")).toBe(uploads[3]!.id);
    expect(await top(c!, "pricing review")).toBe(uploads[5]!.id);
    expect(await (await c!.client().files.content(uploads[1]!.id)).text()).toContain("roadmap");

    await c!.client().files.delete(uploads[3]!.id);
    for (const r of [a!, b!]) {
      expect(await r.client().files.retrieve(uploads[3]!.id).then(() => 200, (e) => e.status)).toBe(404);
      expect((await r.client().vectorStores.search(kb, { query: "security review" })).data.map((h) => h.file_id)).not.toContain(uploads[3]!.id);
    }
    // A file added through another process is found by one that has not seen it yet.
    const late = await b!.client().files.create({ file: text("late.txt", "The penguin enclosure closes at noon."), purpose: "assistants" });
    await b!.client().files.waitForProcessing(late.id, { pollInterval: 50 });
    expect(await top(a!, "penguin enclosure")).toBe(late.id);
  });

  test("a key's rate limit holds across processes: calls spread over two count as one budget", async () => {
    const database = await createDatabase();
    const limited = ["--rate-limit-requests", "4"];
    const [a, b] = [await start(database, { args: limited }), await start(database, { args: limited })];
    const status = (r: Ragd) => r.client().files.list().then(() => 200, (e) => e.status as number);
    expect([await status(a!), await status(b!), await status(a!), await status(b!)]).toEqual([200, 200, 200, 200]);
    const refused = await b!.client().files.list().then(() => null, (e) => e);
    expect(refused?.status).toBe(429);
    expect(refused?.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect(Number(refused?.headers?.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await status(a!)).toBe(429);
  });

  test("kill -9 the process ingesting a file: another finishes it, with every chunk once", async () => {
    const database = await createDatabase();
    const blobDir = tempDir();
    dirs.push(blobDir);
    const lease = ["--ingest-lease", "2"];
    const procs = [await start(database, { blobDir, args: lease }), await start(database, { blobDir, args: lease })];
    const f = await procs[0]!.client().files.create({ file: new File([await bigPdf(120)], "big.pdf"), purpose: "assistants" });
    const sql = new SQL({ url: database, max: 1 });
    try {
      // Whichever process claimed it: the lease names its pid.
      let owner: string | null = null;
      for (const until = Date.now() + 30_000; !owner && Date.now() < until; await Bun.sleep(20)) {
        const [job] = await sql.unsafe(`SELECT lease_owner FROM jobs WHERE file_id = $1 AND state = 'running'`, [f.id]);
        const details = (await procs[0]!.client().files.retrieve(f.id)).status_details ?? "";
        if (job?.lease_owner && /^(parsing page|embedding chunk) \d+/.test(details)) owner = job.lease_owner;
      }
      expect(owner).not.toBeNull();
      const victim = procs.find((p) => owner!.startsWith(`ragd-${p.proc.pid}-`))!;
      const survivor = procs.find((p) => p !== victim)!;
      await victim.kill9();
      const done = await survivor.client().files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
      expect(done.status).toBe("processed");
      const [job] = await sql.unsafe(`SELECT state, runs, lease_owner FROM jobs WHERE file_id = $1 AND cut = 'auto'`, [f.id]);
      expect(job).toMatchObject({ state: "done", runs: 2, lease_owner: null });
      const chunks = await sql.unsafe(`SELECT idx, char_start FROM chunks WHERE file_id = $1 ORDER BY idx`, [f.id]);
      expect(chunks.map((c: { idx: number }) => c.idx)).toEqual(chunks.map((_: unknown, i: number) => i));
      expect(new Set(chunks.map((c: { char_start: number }) => c.char_start)).size).toBe(chunks.length);
      const kb = await knowledgeBase(survivor);
      expect((await survivor.client().vectorStores.search(kb, { query: "page 120", max_num_results: 3 })).data.length).toBeGreaterThan(0);
    } finally {
      await sql.close();
    }
  });

  test("responses across processes: a cancel or delete sent to another process reaches the run; a process that starts leaves the others' runs alone; a stopped one's background run goes on elsewhere", async () => {
    const database = await createDatabase();
    const up = await startUpstream({ models: ["m"] });
    const until = async (ok: () => boolean | Promise<boolean>, ms = 20_000) => {
      for (const deadline = Date.now() + ms; !(await ok()); await Bun.sleep(50)) if (Date.now() > deadline) throw new Error("timed out");
    };
    try {
      const args = ["--llm-url", up.url, "--llm-model", "m", "--llm-timeout", "120"];
      const [a, b] = [await start(database, { args }), await start(database, { args })];
      // A background response written by a, its model server silent: cancelled through b.
      up.script({ hang: true });
      const bg = await a!.client().responses.create({ input: "think it over", background: true });
      await until(() => up.received.length === 1);
      expect((await b!.client().responses.cancel(bg.id)).status).toBe("cancelled");
      await until(() => up.received[0]!.aborted); // a stopped asking at its next lease renewal
      expect((await a!.client().responses.retrieve(bg.id)).status).toBe("cancelled");

      // A response a is writing for its client, while another process starts: left alone.
      up.script({ hang: true });
      const pending = a!.client().responses.create({ input: "and this one?" }).then((r) => `answered ${r.status}`, (e) => `failed ${e.status}`);
      await until(() => up.received.length === 2);
      const id = await inProgressId(database);
      const c = await start(database, { args });
      await Bun.sleep(300);
      expect(up.received[1]!.aborted).toBe(false);
      expect((await c.client().responses.retrieve(id)).status).toBe("in_progress");
      // ...and deleted through c: a's run stops, its client told (the response as it ended).
      await c.client().responses.delete(id);
      await until(() => up.received[1]!.aborted);
      expect(await pending).toBe("answered cancelled");

      // A background response on a, which stops: b takes it and asks the model again.
      up.script({ hang: true });
      const moved = await a!.client().responses.create({ input: "carry on", background: true });
      await until(() => up.received.length === 3);
      running.splice(running.indexOf(a!), 1);
      await a!.stop();
      up.script({ text: "carried on" });
      await until(async () => (await b!.client().responses.retrieve(moved.id)).status === "completed");
      expect(up.received).toHaveLength(4);
      expect((await c.client().responses.retrieve(moved.id)).output_text).toBe("carried on");
    } finally {
      await up.stop();
    }
  });
});

/** The id of the one response being written, read from the database. */
async function inProgressId(database: string): Promise<string> {
  const sql = new SQL(database);
  try {
    const [row] = await sql.unsafe(`SELECT id FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY seq DESC LIMIT 1`);
    return row.id as string;
  } finally {
    await sql.close();
  }
}
