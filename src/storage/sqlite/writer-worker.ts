// The writer thread: one connection that makes every write (writes.ts lists them).
//
// Group commit: the connection commits with synchronous=NORMAL (no fsync), and the replies to
// every write that ended since the last sync wait for one fsync of the WAL that covers them
// all. A reply still means "on disk", as under FULL, but writes that arrive together (the
// uploads of one burst, a claim beside a finish) share an fsync: a third of the writer's CPU
// per small file went to three fsyncs of its own.
import { closeSync, fsyncSync, openSync } from "node:fs";
import { openDatabase } from "./db";
import { sqliteRepos } from "./index";
import type { WriteReply, WriteRequest } from "./writes";

declare const self: Worker;

let repos: ReturnType<typeof sqliteRepos> | null = null;
let walPath = "";
/** Replies whose writes are committed but not yet known to be on disk. */
let unsynced: WriteReply[] = [];
let syncQueued = false;
let syncs = 0;

const reply = (m: WriteReply) => self.postMessage(m);

/**
 * fsync the WAL: every frame committed so far reaches the disk, whichever descriptor wrote it.
 * Opened each time, so a WAL that SQLite removed and made again is never missed; a WAL that
 * is gone was checkpointed into the database, which a checkpoint syncs.
 */
function syncWal() {
  let fd: number;
  try {
    fd = openSync(walPath, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncs++;
}

// After the messages already waiting have run, so their writes share this sync.
function queueSync() {
  if (syncQueued) return;
  syncQueued = true;
  setImmediate(() => {
    syncQueued = false;
    const ready = unsynced;
    unsynced = [];
    try {
      syncWal();
    } catch (err) {
      // The commits are visible to readers but may not be on disk, and after a failed fsync
      // the kernel may have dropped the pages: no answer can be trusted, so the server stops
      // (as PostgreSQL does) and the next start recovers from what the disk holds.
      reply({ id: 0, fatal: `the database could not be synced to disk: ${String((err as Error)?.message ?? err)}` });
      return;
    }
    for (const r of ready) reply(r);
  });
}

self.onmessage = async (e: MessageEvent<WriteRequest | { init: string } | { close: true } | { syncs: true }>) => {
  const msg = e.data;
  if ("init" in msg) {
    try {
      const db = openDatabase(msg.init);
      db.exec("PRAGMA synchronous = NORMAL");
      walPath = `${msg.init}-wal`;
      repos = sqliteRepos(db);
      reply({ id: 0, ready: true });
    } catch (err) {
      reply({ id: 0, failed: String((err as Error)?.message ?? err) });
    }
    return;
  }
  if ("close" in msg) {
    repos?.close();
    repos = null;
    process.exit(0);
  }
  if ("syncs" in msg) {
    reply({ id: 0, syncs });
    return;
  }
  let r: WriteReply;
  try {
    const repo = repos![msg.repo] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    r = { id: msg.id, ok: true, value: await repo[msg.method]!(...msg.args) };
  } catch (err) {
    const x = err as { name?: string; message?: string; code?: unknown; errno?: unknown };
    r = {
      id: msg.id,
      ok: false,
      error: {
        name: String(x?.name ?? "Error"),
        message: String(x?.message ?? err),
        ...(typeof x?.code === "string" ? { code: x.code } : {}),
        ...(typeof x?.errno === "number" ? { errno: x.errno } : {}),
      },
    };
  }
  // A failed write may have committed a part (a method of several statements), so its
  // answer waits for the sync too.
  unsynced.push(r);
  queueSync();
};
