import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import OpenAI, { APIError, toFile } from "openai";
import { blobFiles, cleanup, startRagd, type Ragd } from "./helpers/ragd";

let ragd: Ragd;
beforeAll(async () => {
  ragd = await startRagd({ args: ["--expiry-sweep-interval", "1"] });
});
afterAll(async () => {
  await ragd.stop();
  cleanup(ragd.dataDir);
});

/** Moves a file's expiry into the past in the live database, as the passing of time would. */
function expireNow(id: string) {
  const db = new Database(join(ragd.dataDir, "ragd.db"));
  db.exec("PRAGMA busy_timeout = 5000");
  db.query("UPDATE files SET expires_at = unixepoch() - 1 WHERE id = ?").run(id);
  db.close();
}

test("an expired file is a 404 at once, and the sweeper then deletes its bytes", async () => {
  const c = ragd.client();
  const f = await c.files.create({ file: await toFile(Buffer.from("short-lived"), "t.txt"), purpose: "assistants", expires_after: { anchor: "created_at", seconds: 3600 } });
  const keep = await c.files.create({ file: await toFile(Buffer.from("stays"), "k.txt"), purpose: "assistants" });
  expect(blobFiles(ragd.dataDir).length).toBe(2);

  expireNow(f.id);
  for (const e of await Promise.all([c.files.retrieve(f.id), c.files.content(f.id)].map((p) => p.then(() => null, (e) => e as APIError)))) {
    expect(e?.status).toBe(404);
  }
  expect((await c.files.list()).data.map((x) => x.id)).toEqual([keep.id]);

  const deadline = Date.now() + 10_000;
  while (blobFiles(ragd.dataDir).length !== 1) {
    if (Date.now() > deadline) throw new Error("the sweeper did not delete the expired file");
    await Bun.sleep(100);
  }
  expect(await (await c.files.content(keep.id)).text()).toBe("stays");
});

/** Moves the deletion of every tombstone's item `days` days into the past, as the passing of time would. */
function ageTombstones(days: number) {
  const db = new Database(join(ragd.dataDir, "ragd.db"));
  db.exec("PRAGMA busy_timeout = 5000");
  for (const table of ["file_tombstones", "vector_store_tombstones", "store_file_tombstones"]) db.query(`UPDATE ${table} SET deleted_at = unixepoch() - ?`).run(days * 86400);
  db.close();
}

test("a deleted file's or store's id serves as a cursor for a week; then the sweeper forgets it and the cursor is refused", async () => {
  const c = ragd.client();
  const gone = await c.files.create({ file: await toFile(Buffer.from("deleted soon"), "g.txt"), purpose: "assistants" });
  const store = await c.vectorStores.create({ name: "deleted soon" });
  await c.files.delete(gone.id);
  await c.vectorStores.delete(store.id);
  const pages = () => Promise.all([c.files.list({ after: gone.id }), c.vectorStores.list({ after: store.id })].map((p) => p.then(() => null, (e) => e as APIError)));
  expect(await pages()).toEqual([null, null]);
  // six days on, after a few sweeps: still kept
  ageTombstones(6);
  await Bun.sleep(2500);
  expect(await pages()).toEqual([null, null]);
  ageTombstones(8);
  const deadline = Date.now() + 10_000;
  let errors = await pages();
  while (errors.some((e) => e === null)) {
    if (Date.now() > deadline) throw new Error("the sweeper did not forget the tombstones");
    await Bun.sleep(200);
    errors = await pages();
  }
  for (const e of errors) {
    expect(e?.status).toBe(400);
    expect(e?.code).toBe("invalid_cursor");
    expect(e?.param).toBe("after");
  }
});
