// PostgreSQL restarting (a crash, then WAL recovery) under a load of uploads: every upload
// ragd acknowledged is there afterwards, byte for byte, and reaches processed; every other
// one was told to retry (503 database_unavailable), never a 500; the server lives on.
// Uses a PostgreSQL of the test's own, so restarting it disturbs nothing else.
import { afterAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { migrateDatabase } from "../src/storage/postgres";
import { privatePostgresMissing, startPrivatePostgres, type PrivatePostgres } from "./helpers/postgres";
import { cleanup, runCli, startRagd, type Ragd } from "./helpers/ragd";

const missing = privatePostgresMissing();
if (missing) console.warn(`skipping the PostgreSQL restart test: ${missing}`);

let pg: PrivatePostgres | null = null;
let ragd: Ragd | null = null;
afterAll(async () => {
  await ragd?.stop().catch(() => {});
  if (ragd) cleanup(ragd.dataDir);
  await pg?.stop();
});

describe.skipIf(missing !== null)("PostgreSQL restarts", () => {
  test("a crash-restart of the database during uploads loses no acknowledged upload", async () => {
    pg = await startPrivatePostgres();
    const admin = new SQL({ url: pg.url, max: 1 });
    await admin.unsafe("CREATE DATABASE ragd");
    await admin.close();
    const url = pg.url.replace(/\/postgres$/, "/ragd");
    await migrateDatabase(url);
    ragd = await startRagd({ args: ["--database-url", url] });
    const client = ragd.client(undefined, { maxRetries: 0 });
    // a key of the database (the environment's is checked without it), for JSON requests whose
    // key is looked up while the database restarts
    const made = runCli(["keys", "create", "--project", "restart", "--database-url", url]);
    expect(made.code).toBe(0);
    const keyed = ragd.client(made.stdout.trim(), { maxRetries: 0 });
    const jsonRefused: { status: number; code: string | null }[] = [];
    let uploadsDone = false;
    const jsonWorker = async () => {
      while (!uploadsDone) {
        try {
          await keyed.vectorStores.create({ name: "during the restart" });
        } catch (e) {
          const err = e as { status?: number; error?: { code?: string } };
          jsonRefused.push({ status: err.status ?? 0, code: err.error?.code ?? null });
          await Bun.sleep(100);
        }
      }
    };

    const acknowledged = new Map<string, string>();
    const refused: { status: number; code: string | null }[] = [];
    let n = 0;
    let restarted = false;
    const worker = async () => {
      while (n < 240) {
        const i = n++;
        const body = `Upload ${i}: the committee met on day ${i} and agreed on item ${i * 7}.`;
        if (i === 80 && !restarted) {
          restarted = true;
          void pg!.restart("immediate");
        }
        try {
          const f = await client.files.create({ file: new File([body], `u-${i}.txt`), purpose: "assistants" });
          acknowledged.set(f.id, body);
        } catch (e) {
          const err = e as { status?: number; error?: { code?: string } };
          refused.push({ status: err.status ?? 0, code: err.error?.code ?? null });
          await Bun.sleep(100);
        }
      }
    };
    const json = Promise.all([jsonWorker(), jsonWorker()]);
    await Promise.all(Array.from({ length: 6 }, worker));
    uploadsDone = true;
    await json;
    expect(restarted).toBe(true);
    // a JSON request's key checked before its body is read: a database out of reach is a 503 there too
    expect(jsonRefused.length).toBeGreaterThan(0);
    for (const r of jsonRefused) expect(r).toEqual({ status: 503, code: "database_unavailable" });
    // The restart met requests in flight (else this test would prove nothing).
    expect(refused.length).toBeGreaterThan(0);
    // Refusals are the retryable kind, never a fault of the server.
    for (const r of refused) expect(r).toEqual({ status: 503, code: "database_unavailable" });
    expect(acknowledged.size).toBeGreaterThan(100);

    // Every acknowledged upload is listed, reads back exactly, and gets processed.
    const listed = new Set<string>();
    for await (const f of client.files.list({ limit: 100 })) listed.add(f.id);
    for (const [id, body] of acknowledged) {
      expect(listed.has(id)).toBe(true);
      expect(await (await client.files.content(id)).text()).toBe(body);
    }
    for (const id of acknowledged.keys()) expect((await client.files.waitForProcessing(id, { pollInterval: 100, maxWait: 60_000 })).status).toBe("processed");
  });
});
